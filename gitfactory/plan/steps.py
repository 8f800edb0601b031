"""What is next for an agent, and ending the step it holds: the pull side of the
workflows (`gitfactory next`, `gitfactory step done`).

The workflow graphs themselves are configuration (:mod:`gitfactory.config.workflows`);
here they meet the plan: the ready queue in the index, claims and holder moves
under the store's compare-and-swap (:mod:`gitfactory.plan.decisions`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from gitfactory.config import factory_yaml
from gitfactory.config.gates import Gate
from gitfactory.config.workflows import OUTCOMES, Step, Workflow, plays, role_of
from gitfactory.errors import ConfigError, FactoryError, NoWorkError
from gitfactory.plan import decisions, states, tasks
from gitfactory.plan.tasks import TaskState
from gitfactory.store import clock

if TYPE_CHECKING:
    from gitfactory.store.factory import Factory


@dataclass(frozen=True)
class Assignment:
    """What `gitfactory next` hands an agent: a task, the step it holds, the rules."""

    state: TaskState
    workflow: Workflow
    step: Step
    attempt: int
    claimed_now: bool
    gate: Gate | None = None  # the gate a gate step runs


def _assignment(factory: Factory, st: TaskState, claimed_now: bool) -> Assignment:
    wf = factory_yaml.load(factory).workflow(st.task.workflow)
    step = wf.step(st.step)
    gate = factory_yaml.load(factory).gate(step) if step.gate else None
    return Assignment(st, wf, step, st.attempts.get(step.name, 0), claimed_now, gate)


def _step_namer(wf: Workflow) -> Callable[[TaskState], str]:
    return lambda st: wf.step(st.step).name


def next_for(
    factory: Factory, agent: str, role: str | None = None, lease_ms: int | None = None
) -> Assignment:
    """The step ``agent`` holds, or the top ready step for its role, claimed atomically.

    Raises NoWorkError (exit 3) when nothing is ready; any failure to read the
    factory is an error of its own, never "no work".
    """
    role = role or role_of(agent)
    config = factory_yaml.load(factory)
    factory.index.refresh()
    now = clock.now_ms()
    for task_id in states.held_by(factory, agent, now):
        return _assignment(factory, decisions.load(factory, task_id), claimed_now=False)
    for text, _, _ in states.summaries(factory, now, ready=True):
        row = json.loads(text)
        wf = config.workflow(row["workflow"])
        if not plays(role, wf.step(row["step"])):
            continue
        try:
            claimed = decisions.claim(
                factory,
                row["id"],
                agent,
                lease_ms if lease_ms is not None else tasks.DEFAULT_LEASE_MS,
                step_of=_step_namer(wf),
            )
        except FactoryError:
            continue  # another agent was faster, or it stopped being ready: try the next
        return _assignment(factory, claimed, claimed_now=True)
    raise NoWorkError(
        f"no work for role {role!r} right now",
        hint="exit code 3 means no work, not an error; try again later",
    )


def step_done(
    factory: Factory, task_id: str, agent: str, outcome: str, note: str = ""
) -> TaskState:
    """End the step ``agent`` holds with ``outcome`` and move the task along its workflow."""
    if outcome not in OUTCOMES:
        raise ConfigError(f"outcome must be one of {', '.join(OUTCOMES)}, not {outcome!r}")
    config = factory_yaml.load(factory)

    def data_of(st: TaskState) -> dict[str, Any]:
        wf = config.workflow(st.task.workflow)
        current = wf.step(st.step).name
        nxt, why = wf.next_step(current, outcome, st.attempts)
        return {"step": current, "outcome": outcome, "next": nxt, "why": why}

    return decisions.holder_move(
        factory, task_id, agent, "task.step_done", text=note, data_of=data_of
    )
