"""The prompt an agent starts with, rendered from ``templates/prompts/step.md``.

Placeholders are ``{{name}}``; every value is inserted as plain text. Task titles,
bodies and messages come from people and other agents: they are data in the prompt
and never reach a shell (the agent's command line comes from factory.yaml only).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

from gitfactory.errors import FactoryError
from gitfactory.plan.tasks import STEP_ENDS
from gitfactory.resources import template_file

if TYPE_CHECKING:
    from gitfactory.store.factory import Factory
    from gitfactory.store.log import Event

_PLACEHOLDER = re.compile(r"\{\{([a-z_]+)\}\}")


def render(values: dict[str, str], template: str = "step.md") -> str:
    text = template_file("prompts", template).read_text("utf-8")
    return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), text)


REPORT_BUDGET = 8000  # characters of a failed gate's report that go into the next prompt


def previous(factory: Factory, task_id: str) -> str:
    """What an agent is told about the step before: how it ended, its note, and when a
    gate or the merge failed, its report (the verdict at the top and the end of the
    output within the budget), so the agent knows what to fix."""
    from gitfactory.knowledge import artifacts
    from gitfactory.plan import decisions

    st = decisions.load(factory, task_id, history=True)
    last = st.last_step
    if not last:
        return "This is the first step."
    text = f"The previous step ended: {last.get('why', '')}."
    ends = [e for e in st.history if e.kind in STEP_ENDS]
    if ends and ends[-1].kind == "task.overridden":
        text += f" A person ({ends[-1].actor}) ended it in its doer's place: {ends[-1].text}"
    notes = [e.text for e in ends if e.kind == "task.step_done" and e.text]
    if notes:
        text += f" Its note: {notes[-1]}"
    failed = failed_result(st.history)
    if failed is None:
        return text
    try:
        _, report = artifacts.get(factory, str(failed.data.get("report")))
    except FactoryError:
        return text
    body = report.decode("utf-8", "replace")
    if len(body) > REPORT_BUDGET:
        head, tail = REPORT_BUDGET // 4, REPORT_BUDGET * 3 // 4
        cut = len(body) - head - tail
        body = f"{body[:head]}\n[... {cut:,} characters ...]\n{body[-tail:]}"
    what = "merge" if failed.kind == "merge.result" else f"gate `{failed.data.get('step')}`"
    return text + (
        f"\n\nThe {what} failed. Its report (artifact {failed.data.get('report')}; "
        f"`gitfactory artifact get {failed.data.get('report')}`):\n\n{body.rstrip()}\n"
    )


def failed_result(history: Sequence[Event]) -> Event | None:
    """The failed gate or merge result that ended the latest step, if that is how it ended."""
    ended = None
    for event in reversed(history):
        if event.kind in STEP_ENDS:
            if ended is not None:
                return None  # an earlier step: the latest one was not a gate or merge
            ended = event.data.get("step")
        elif event.kind in ("gate.result", "merge.result") and ended is not None:
            if event.data.get("step") == ended and not event.data.get("pass"):
                return event
            return None
    return None
