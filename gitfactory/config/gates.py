"""The ``gates:`` section of factory.yaml: which checks the factory runs, and how.

What a gate *is* lives here, with the rest of the configuration; running one and
judging its result is :mod:`gitfactory.qa.gates`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gitfactory.config.workflows import duration_s
from gitfactory.errors import ConfigError

COMMAND, JUDGE, SCENARIO = "command", "judge", "scenario"
TYPES = (COMMAND, JUDGE, SCENARIO)
_GATE_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")


@dataclass(frozen=True)
class Gate:
    name: str
    type: str = COMMAND
    command: str = ""  # command and judge: what runs
    timeout_s: int | None = None
    criteria: str = ""  # judge: what the verdict is about
    threshold: float = 0.0  # judge: the lowest passing score
    role: str = ""  # scenario: the role of the agents that play the scenarios
    scenarios: tuple[str, ...] = ("*",)  # scenario: file name patterns
    keep: tuple[str, ...] = ()  # files of the worktree kept as artifacts after the run


def parse_gates(doc: Any, source: str) -> dict[str, Gate]:
    """The ``gates:`` section of a factory.yaml that passed its schema."""
    from gitfactory.store import yaml

    out = {}
    for name, spec in (doc.get("gates") or {}).items():
        where = yaml.location(doc, ["gates", name], source)
        if not _GATE_NAME.match(str(name)):
            raise ConfigError(
                f"{where}: {name!r} is not a valid gate name",
                hint="lowercase letters, digits, '.', '_', '-'",
            )
        kind = str(spec.get("type", COMMAND))
        if kind in (COMMAND, JUDGE) and not spec.get("command"):
            raise ConfigError(f"{where}: the {kind} gate {name!r} needs a command")
        if kind == SCENARIO and not spec.get("role"):
            raise ConfigError(
                f"{where}: the scenario gate {name!r} needs the role of the agents that "
                "play the scenarios (role: qa)"
            )
        for path in spec.get("keep") or ():
            if Path(str(path)).is_absolute() or ".." in Path(str(path)).parts:
                raise ConfigError(f"{where}: keep: {path!r} must be a path inside the worktree")
        out[str(name)] = Gate(
            name=str(name), type=kind, command=str(spec.get("command", "")),
            timeout_s=duration_s(spec.get("timeout"), where),
            criteria=str(spec.get("criteria", "")),
            threshold=float(spec.get("threshold", 0.0)), role=str(spec.get("role", "")),
            scenarios=tuple(str(p) for p in spec.get("scenarios") or ("*",)),
            keep=tuple(str(p) for p in spec.get("keep") or ()),
        )  # fmt: skip
    return out
