"""Workflows: named state machines of steps from factory.yaml.

A step is done by an agent role (``role: coder``), by a gate (``gate: COMMAND``) or by an
action (``action: merge``). Gates and actions belong to the factory itself: the daemon
takes them with the role ``factory``. Each step says where the task goes on success,
failure and timeout: another step, ``done`` (the task is completed) or ``failed``.
A step entered more than ``max_attempts`` times fails the task.

Walking a task through them ("what is next, may I go on") is
:mod:`gitfactory.plan.steps`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from gitfactory.errors import ConfigError

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
    requires_change: bool = False  # an agent step that must commit a change to the project

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
        key = name or self.start
        if key not in self.steps:  # factory.yaml lost a step while a task was at it
            raise ConfigError(
                f"workflow {self.name!r} has no step {key!r} (factory.yaml no longer "
                "defines it, but a task is at it)",
                hint="put the step back with `gitfactory config edit`, or move the task: "
                "gitfactory task cancel ID, then gitfactory task retry ID --from STEP",
            )
        return self.steps[key]

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
    from gitfactory.store.clock import parse_duration

    try:
        return parse_duration(str(value)) // 1000
    except Exception:
        raise ConfigError(f"{where}: cannot read {value!r} as a duration (90s, 30m, 2h)") from None


def parse_workflows(doc: Any, source: str) -> dict[str, Workflow]:
    """Workflows from a factory.yaml that passed its schema; checks the graph itself."""
    from gitfactory.store import yaml

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
                requires_change=bool(s.get("requires_change", False)),
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


def plays(role: str, step: Step) -> bool:
    return step.role == ANY_ROLE or step.role == role


def role_of(agent: str) -> str:
    from gitfactory.store.actors import role

    return role(agent)
