"""The merge action of a workflow: claim the task, integrate its branch into the
target (:mod:`gitfactory.qa.merge`), record the result and move the task on. It
takes milliseconds, so the daemon does it in its tick instead of starting a run.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from gitfactory.errors import FactoryError
from gitfactory.run import worktrees
from gitfactory.run.runs import ACTOR, MERGE_AGENT

if TYPE_CHECKING:
    from gitfactory.config.workflows import Step, Workflow
    from gitfactory.run.dispatch import Dispatcher

MERGE_LEASE_MS = 600_000
MERGE_RETRY_S = 60  # a merge that waited after its claim is tried again this soon at most


def merge_step(d: Dispatcher, task_id: str, wf: Workflow, step: Step) -> None:
    """The merge action, done here and now (it takes milliseconds): claim the task,
    integrate its branch, record the result, move the task along its workflow."""
    import pygit2

    from gitfactory.knowledge import artifacts
    from gitfactory.plan import decisions, steps
    from gitfactory.qa import merge

    config = d._config()
    try:
        target = step.into or worktrees.base(d.factory.paths, config.dispatch)
    except FactoryError as exc:  # no base branch: nothing to merge into until one is set
        d._waiting(task_id, step, exc.message)
        return
    if not d.factory.store.repo.references.get(f"refs/heads/{target}"):
        d._waiting(task_id, step, f"there is no branch {target!r} to merge into")
        return
    why = merge.blocked(d.factory, target)
    if why is not None:  # checked before claiming: a claim counts as an attempt
        d._waiting(task_id, step, why)
        return
    task = decisions.load(d.factory, task_id).task
    stem, branch = worktrees.names(config.dispatch, task)
    tips = (tip_of(d, target), tip_of(d, branch))
    seen = d.merge_waits.get(task_id)
    if seen is not None and seen[0] == tips and time.monotonic() - seen[1] < MERGE_RETRY_S:
        return  # it waits for the same reason as last time; said already
    try:
        st = steps.claim(d.factory, task_id, MERGE_AGENT, MERGE_LEASE_MS, clone=d.clone)
    except FactoryError:
        return
    result = None
    for _ in range(3):  # the target moved meanwhile: merge again onto its new tip
        try:
            result = merge.integrate(d.factory, st.task, branch, target, step.strategy,
                                     start=_started_at(d, task_id))  # fmt: skip
            break
        except merge.MergeWaits as exc:
            why = exc.message
        except (FactoryError, OSError, ValueError, RuntimeError, pygit2.GitError) as exc:
            why = f"the merge could not be done: {type(exc).__name__}: {exc}"
            break
    if result is None:  # nothing was changed: give the task back, say why, retry later
        d.merge_waits[task_id] = (tips, time.monotonic())
        d._holder_move(task_id, MERGE_AGENT, "task.released", why or "")
        d._waiting(task_id, step, why or "")
        return
    d.merge_waits.pop(task_id, None)
    d.waits.pop(task_id, None)
    report = None
    if result.report:
        report = artifacts.put(
            d.factory, task_id, result.report.encode(), producer=ACTOR, step=step.name,
            name=f"merge-report-{step.name}-{st.attempts.get(step.name, 1)}.md",
        ).id  # fmt: skip
    d.note(d._event("merge.result", task_id, result.why, {
        "step": step.name, "attempt": st.attempts.get(step.name, 1), "pass": result.passed,
        "status": result.status, "strategy": result.strategy, "done_as": result.done_as,
        "target": result.target, "branch": result.branch, "before": result.before,
        "commit": result.commit, "conflicts": result.conflicts, "report": report,
    }))  # fmt: skip
    d.merged.append({"task": task_id, "target": target, "status": result.status,
                        "commit": result.commit, "why": result.why})  # fmt: skip
    outcome = "success" if result.passed else "failure"
    try:
        steps.step_done(d.factory, task_id, MERGE_AGENT, outcome, result.why)
    except FactoryError as exc:
        d.note(d._event("dispatch.stale", task_id, exc.message, {"agent": MERGE_AGENT}))
    if not any(r.task == task_id for r in d.active.values()):  # else: at its end
        d._tidy(task_id, worktrees.root(d.factory.paths, config.dispatch) / stem)


def _started_at(d: Dispatcher, task_id: str) -> str | None:
    """The commit the task's branch started from: the head its first run found."""
    for event in d.factory.index.task_events(task_id):
        head = event.data.get("head")
        if event.kind == "dispatch.started" and event.actor == ACTOR and isinstance(head, str):
            return head
    return None


def tip_of(d: Dispatcher, branch: str) -> str | None:
    return d.factory.store.branch_tip(branch)
