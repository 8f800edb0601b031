"""Workflows: named state machines of steps from factory.yaml ("what is next, may I go on").

A step is done by an agent role (``role: coder``), by a gate (``gate: COMMAND``) or by an
action (``action: merge``). Gates and actions belong to the factory itself: the daemon
takes them with the role ``factory``. Each step says where the task goes on success,
failure and timeout: another step, ``done`` (the task is completed) or ``failed``.
A step entered more than ``max_attempts`` times fails the task.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from gitfactory.errors import ConfigError, FactoryError, NoWorkError

if TYPE_CHECKING:
    from gitfactory.factory import Factory
    from gitfactory.gates import Gate
    from gitfactory.tasks import TaskState

DONE, FAILED = "done", "failed"
OUTCOMES = ("success", "failure", "timeout")
FACTORY_ROLE = "factory"
DEFAULT_WORKFLOW = "default"
ANY_ROLE = "*"
_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")


@dataclass(frozen=True)
class Step:
    name: str
    role: str  # an agent role, FACTORY_ROLE for gates and actions, or ANY_ROLE
    gate: str | None = None
    action: str | None = None
    instructions: str = ""
    done_when: str = ""
    timeout_s: int | None = None
    max_attempts: int = 3
    on_success: str = DONE
    on_failure: str = FAILED
    on_timeout: str = FAILED
    strategy: str = "merge"  # merge action: ff, squash or merge (a merge commit)
    into: str | None = None  # merge action: the target branch (default: dispatch.base)

    @property
    def kind(self) -> str:
        return "gate" if self.gate else "action" if self.action else "agent"

    def target(self, outcome: str) -> str:
        return {"success": self.on_success, "failure": self.on_failure,
                "timeout": self.on_timeout}[outcome]  # fmt: skip


@dataclass(frozen=True)
class Workflow:
    name: str
    start: str
    steps: dict[str, Step]

    def step(self, name: str | None) -> Step:
        return self.steps[name or self.start]

    def next_step(self, current: str, outcome: str, entered: dict[str, int]) -> tuple[str, str]:
        """Where the task goes after ``current`` ends with ``outcome``, and why.

        ``entered`` counts how often each step was entered so far; going into a step
        that has used up its attempts fails the task instead.
        """
        target = self.steps[current].target(outcome)
        if target in (DONE, FAILED):
            return target, f"{current}: {outcome} -> {target}"
        limit = self.steps[target].max_attempts
        if entered.get(target, 0) >= limit:
            return FAILED, f"{target}: attempt limit of {limit} reached"
        return target, f"{current}: {outcome} -> {target}"

    def mermaid(self) -> str:
        lines = ["stateDiagram-v2", f"    [*] --> {self.start}"]
        for step in self.steps.values():
            for outcome in OUTCOMES:
                target = step.target(outcome)
                if outcome == "timeout" and target == step.on_failure:
                    continue
                end = "[*]" if target in (DONE, FAILED) else target
                label = outcome if target != FAILED else f"{outcome} (failed)"
                lines.append(f"    {step.name} --> {end}: {label}")
        return "\n".join(lines)


# The workflow of a factory whose factory.yaml defines none: one step, any agent.
SIMPLE = Workflow(
    DEFAULT_WORKFLOW, "work",
    {"work": Step("work", ANY_ROLE, instructions="Do the task.", on_failure=FAILED)},
)  # fmt: skip


def duration_s(value: Any, where: str) -> int | None:
    if value is None:
        return None
    from gitfactory.clock import parse_duration

    try:
        return parse_duration(str(value)) // 1000
    except Exception:
        raise ConfigError(f"{where}: cannot read {value!r} as a duration (90s, 30m, 2h)") from None


def parse_workflows(doc: Any, source: str) -> dict[str, Workflow]:
    """Workflows from a factory.yaml that passed its schema; checks the graph itself."""
    from gitfactory import yaml

    out = {}
    for name, spec in (doc.get("workflows") or {}).items():
        steps = {}
        for step_name, s in spec["steps"].items():
            where = yaml.location(doc, ["workflows", name, "steps", step_name], source)
            doers = [k for k in ("role", "gate", "action") if s.get(k)]
            if len(doers) != 1:
                raise ConfigError(
                    f"{where}: step {step_name!r} needs exactly one of role, gate or action"
                    + (f" (it has {', '.join(doers)})" if doers else "")
                )
            for label in (name, step_name):
                if not _NAME.match(str(label)) or label in (DONE, FAILED):
                    raise ConfigError(
                        f"{where}: {label!r} is not a valid workflow or step name",
                        hint="lowercase letters, digits, '.', '_', '-'; not 'done' or 'failed'",
                    )
            role = s.get("role") or FACTORY_ROLE
            steps[str(step_name)] = Step(
                name=str(step_name), role=str(role), gate=s.get("gate"), action=s.get("action"),
                instructions=str(s.get("instructions", "")), done_when=str(s.get("done_when", "")),
                timeout_s=duration_s(s.get("timeout"), where),
                max_attempts=int(s.get("max_attempts", 3)),
                on_success=str(s.get("on_success", DONE)),
                on_failure=str(s.get("on_failure", FAILED)),
                on_timeout=str(s.get("on_timeout", s.get("on_failure", FAILED))),
                strategy=str(s.get("strategy", "merge")),
                into=str(s["into"]) if s.get("into") else None,
            )  # fmt: skip
        start = str(spec.get("start") or next(iter(steps)))
        for step_name, step in steps.items():
            for key in ("on_success", "on_failure", "on_timeout"):
                target = getattr(step, key)
                if target not in steps and target not in (DONE, FAILED):
                    path = ["workflows", name, "steps", step_name, key]
                    raise ConfigError(
                        f"{yaml.location(doc, path, source)}: {key} names no step: {target!r}",
                        hint=f"use one of {', '.join(steps)}, {DONE} or {FAILED}",
                    )
        if start not in steps:
            where = yaml.location(doc, ["workflows", name, "start"], source)
            raise ConfigError(f"{where}: start names no step: {start!r}")
        out[str(name)] = Workflow(str(name), start, steps)
    return out


# -- what is next, may I go on -------------------------------------------------


@dataclass(frozen=True)
class Assignment:
    """What `gitfactory next` hands an agent: a task, the step it holds, the rules."""

    state: TaskState
    workflow: Workflow
    step: Step
    attempt: int
    claimed_now: bool
    gate: Gate | None = None  # the gate a gate step runs


def plays(role: str, step: Step) -> bool:
    return step.role == ANY_ROLE or step.role == role


def role_of(agent: str) -> str:
    return agent.split(":")[-1].split("/")[0]


def _assignment(factory: Factory, st: TaskState, claimed_now: bool) -> Assignment:
    wf = factory.config().workflow(st.task.workflow)
    step = wf.step(st.step)
    gate = factory.config().gate(step) if step.gate else None
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
    from gitfactory import clock, plan, tasks

    role = role or role_of(agent)
    config = factory.config()
    factory.index.refresh()
    now = clock.now_ms()
    for task_id in factory.index.held_by(agent, now):
        return _assignment(factory, plan.load(factory, task_id), claimed_now=False)
    for text, _, _ in factory.index.summaries(now, ready=True):
        row = json.loads(text)
        wf = config.workflow(row["workflow"])
        if not plays(role, wf.step(row["step"])):
            continue
        try:
            claimed = plan.claim(
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
    from gitfactory import plan

    if outcome not in OUTCOMES:
        raise ConfigError(f"outcome must be one of {', '.join(OUTCOMES)}, not {outcome!r}")
    config = factory.config()

    def data_of(st: TaskState) -> dict[str, Any]:
        wf = config.workflow(st.task.workflow)
        current = wf.step(st.step).name
        nxt, why = wf.next_step(current, outcome, st.attempts)
        return {"step": current, "outcome": outcome, "next": nxt, "why": why}

    return plan.holder_move(factory, task_id, agent, "task.step_done", text=note, data_of=data_of)
