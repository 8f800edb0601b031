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

from gitfactory.errors import ConfigError, UsageError

PRESETS = ("claude-code", "codex", "gemini", "aider", "opencode", "command")
TOOLS = PRESETS[:-1]  # the presets that are a tool of their own
DEFAULT_ROLE = "coder"
RESERVED_ROLES = frozenset({"human", "factory"})  # people, and the factory itself
# Words that start a compound command: sh decides what it runs.
_COMPOUND = frozenset({"{", "!", "if", "while", "until", "for", "case", "select"})
_COMMAND = "command:"
_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
_SPEC_ADDRESS = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}/[a-z0-9][a-z0-9._-]{0,63}$")
_SPEC_HINT = (
    f"give a preset ({', '.join(TOOLS)}), or command:CMD for any command line; for "
    "another role than coder, ROLE/NAME=PRESET or ROLE/NAME=command:CMD "
    "(e.g. reviewer/rex=command:./review.sh)"
)
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
        if str(spec["role"]) in RESERVED_ROLES:
            where = yaml.location(doc, ["agents", name, "role"], source)
            raise ConfigError(
                f"{where}: agent {name!r} cannot have the role {spec['role']!r}: human/* "
                "are people (they override steps, retry tasks) and factory/* the factory itself",
                hint="give it the role of the steps it takes, e.g. role: coder",
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


def from_specs(specs: list[str] | tuple[str, ...]) -> dict[str, dict[str, str]]:
    """The agents of several `init --agent` values, by name; two of one name are refused."""
    out: dict[str, dict[str, str]] = {}
    for spec in specs:
        name, entry = from_spec(spec)
        if name in out:
            raise UsageError(
                f"--agent {spec!r}: there is already an agent named {name!r}",
                hint=f"give each its own name: ROLE/NAME=..., e.g. {entry['role']}/{name}-2=...",
            )
        out[name] = entry
    return out


def from_spec(spec: str) -> tuple[str, dict[str, str]]:
    """An agent as `init --agent` gives it: its name and its factory.yaml entry.

    ``PRESET`` is a coder named after its tool (claude-code: coder/claude),
    ``command:CMD`` a coder running CMD (named after its program), and
    ``ROLE/NAME=PRESET`` or ``ROLE/NAME=command:CMD`` any other agent."""
    address, how = "", spec
    if not spec.startswith(_COMMAND) and "=" in spec:
        address, _, how = spec.partition("=")
    if how.startswith(_COMMAND):
        command = how[len(_COMMAND) :].strip()
        if not command:
            raise UsageError(f"--agent {spec!r}: command: needs a command line", hint=_SPEC_HINT)
        entry, name = {"command": command}, _named_after(command)
    elif how in TOOLS:
        entry, name = {"preset": how}, _named_after(str(preset(how)["command"]))
    elif how == "command":
        raise UsageError(f"--agent {spec!r}: give the command line after it: command:CMD",
                         hint=_SPEC_HINT)  # fmt: skip
    else:
        raise UsageError(f"--agent {spec!r}: {how!r} is not a preset", hint=_SPEC_HINT)
    role = DEFAULT_ROLE
    if address:
        if not _SPEC_ADDRESS.match(address) or address.split("/")[0] in RESERVED_ROLES:
            raise UsageError(
                f"--agent {spec!r}: {address!r} is not ROLE/NAME of an agent "
                "(human/* are people, factory/* the factory)",
                hint=_SPEC_HINT,
            )
        role, name = address.split("/")
    return name, {"role": role, **entry}


def _named_after(command: str) -> str:
    """An agent name from the program a command line runs (./bin/my-agent.sh: my-agent)."""
    from pathlib import PurePosixPath

    from gitfactory.store.actors import slug

    try:
        word = program(command)
    except ValueError:
        word = None
    stem = PurePosixPath(word).stem if word else ""
    return slug(stem) if stem else "agent"


def program(command: str) -> str | None:
    """The word of a command line that names its program: the first one after any
    ``VAR=value`` and ``env`` (with its options). None if there is none. Raises
    ValueError for a line shlex cannot split (an unclosed quote)."""
    import shlex

    lexer = shlex.shlex(command, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    words = list(lexer)  # `./a.sh; b`: "./a.sh", ";", "b"
    if words and (words[0] in _COMPOUND or set(words[0]) <= set("();<>|&")):
        return None  # a subshell, a group, an if or a loop: sh decides what runs
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
