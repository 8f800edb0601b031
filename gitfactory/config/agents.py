"""The agents a factory runs and how the daemon runs them, from factory.yaml.

An agent is a name, a role and a way to start it: a preset from
``templates/agents/`` (Claude Code, Codex CLI, Gemini CLI, Aider, OpenCode) or any
command line. Its address is ``ROLE/NAME``; it takes the workflow steps of its role.
Only factory.yaml on the factory branch says what runs (DESIGN I5).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from gitfactory.errors import ConfigError

PRESETS = ("claude-code", "codex", "gemini", "aider", "opencode", "command")
_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
DEFAULT_TIMEOUT_MS = 30 * 60_000
DEFAULT_KILL_GRACE_MS = 10_000


@dataclass(frozen=True)
class AgentSpec:
    name: str
    role: str
    command: str  # run with sh in the task's worktree
    preset: str = "command"
    env: dict[str, str] = field(default_factory=dict)
    description: str = ""
    on_uncommitted: str = "commit"  # or "fail": what to do with work left uncommitted

    @property
    def address(self) -> str:
        return f"{self.role}/{self.name}"


@dataclass(frozen=True)
class DispatchConfig:
    worktrees: str | None = None  # relative to the repository's top; None: ../<repo>.worktrees
    base: str | None = None  # None: the branch the main worktree has checked out
    branch_prefix: str = "task/"
    max_concurrent: int = 4
    max_per_role: dict[str, int] = field(default_factory=dict)
    pool: int = 0
    setup_copy: tuple[str, ...] = ()
    setup_command: str | None = None
    default_timeout_ms: int = DEFAULT_TIMEOUT_MS
    kill_grace_ms: int = DEFAULT_KILL_GRACE_MS

    def task_names(self, task_id: str, title: str) -> tuple[str, str]:
        """The directory name and the branch of a task's worktree."""
        from gitfactory.store.actors import slug

        stem = f"{task_id[:8]}-{slug(title)[:40]}".rstrip("-._")
        return stem, f"{self.branch_prefix}{stem}"


@cache
def preset(name: str) -> dict[str, Any]:
    """A preset's description, command and documentation link."""
    from ruamel.yaml import YAML

    from gitfactory.resources import template_file

    loaded: dict[str, Any] = YAML(typ="safe", pure=True).load(
        template_file("agents", f"{name}.yaml").read_text("utf-8")
    )
    return loaded


def parse_agents(doc: Any, source: str) -> dict[str, AgentSpec]:
    """The agents of a factory.yaml that passed its schema."""
    from gitfactory.store import yaml

    agents = {}
    for name, spec in (doc.get("agents") or {}).items():
        kind = str(spec.get("preset", "command"))
        command = spec.get("command") or preset(kind).get("command")
        if not command:
            where = yaml.location(doc, ["agents", name], source)
            raise ConfigError(
                f"{where}: agent {name!r} has no command",
                hint="give `command:` (any command line) or a `preset:` such as claude-code",
            )
        agents[str(name)] = AgentSpec(
            name=str(name), role=str(spec["role"]), command=str(command), preset=kind,
            env={str(k): str(v) for k, v in (spec.get("env") or {}).items()},
            description=str(spec.get("description", "")),
            on_uncommitted=str(spec.get("on_uncommitted", "commit")),
        )  # fmt: skip
    return agents


def parse_dispatch(doc: Any, source: str) -> DispatchConfig:
    from gitfactory.store.clock import parse_duration

    spec = doc.get("dispatch") or {}
    setup = spec.get("setup") or {}
    defaults = DispatchConfig()
    return DispatchConfig(
        worktrees=spec.get("worktrees"),
        base=spec.get("base"),
        branch_prefix=str(spec.get("branch_prefix", defaults.branch_prefix)),
        max_concurrent=int(spec.get("max_concurrent", defaults.max_concurrent)),
        max_per_role={str(k): int(v) for k, v in (spec.get("max_per_role") or {}).items()},
        pool=int(spec.get("pool", 0)),
        setup_copy=tuple(str(p) for p in setup.get("copy", ())),
        setup_command=setup.get("command"),
        default_timeout_ms=parse_duration(str(spec["default_timeout"]))
        if "default_timeout" in spec
        else defaults.default_timeout_ms,
        kill_grace_ms=parse_duration(str(spec["kill_grace"]))
        if "kill_grace" in spec
        else defaults.kill_grace_ms,
    )


def program(command: str) -> str | None:
    """The word of a command line that names its program: the first one after any
    ``VAR=value`` and ``env`` (with its options). None if there is none. Raises
    ValueError for a line shlex cannot split (an unclosed quote)."""
    import shlex

    words = shlex.split(command, comments=True)
    i = 0
    while i < len(words):
        word = words[i]
        if _ASSIGNMENT.match(word) or word in ("exec", "command", "nohup"):
            i += 1
        elif word == "env":
            i += 1
            while i < len(words) and (words[i].startswith("-") or _ASSIGNMENT.match(words[i])):
                i += 2 if words[i] in ("-u", "--unset", "-C", "--chdir") else 1
        else:
            return word
    return None
