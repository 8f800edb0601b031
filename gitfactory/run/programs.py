"""The programs factory.yaml runs: is each agent's and gate's command there?

The daemon runs a command line with sh in a task's worktree, so what has to exist
is the program its first word names (after any ``VAR=value`` assignments and an
``env``): a bare name is looked up on PATH; a path like ``./my-agent.sh`` is looked
up in the tree of the dispatch base, which every task worktree is a checkout of,
and must be executable there. What gets printed is the word as written, never the
value of a variable or of an agent's ``env:``.

Used by `gitfactory doctor` and, as warnings, by `gitfactory config check`.
"""

from __future__ import annotations

import difflib
import os
import posixpath
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from gitfactory.config.agents import PRESETS, preset, program
from gitfactory.errors import FactoryError
from gitfactory.store.git import run_git

_VARIABLE = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)|\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
# Words sh runs itself: no program to find (what follows them is not checked).
_BUILTINS = frozenset({
    ".", ":", "[", "[[", "{", "(", "!", "break", "case", "cd", "continue", "eval", "exit",
    "export", "for", "if", "read", "return", "set", "shift", "source", "test", "trap", "true",
    "false", "type", "ulimit", "umask", "unset", "wait", "while", "echo", "printf",
})  # fmt: skip
VERSION_TIMEOUT_S = 5.0
EDIT = "gitfactory config edit"


def own_entry_point() -> Path | None:
    """This install's `gitfactory` script, beside the interpreter running us (a
    virtualenv's bin/), if there is one."""
    here = Path(sys.executable).parent / "gitfactory"
    return here if here.exists() else None


@dataclass(frozen=True)
class Found:
    """Whether a command line's program is there, said as a user would want it."""

    ok: bool
    detail: str
    fix: str | None = None
    program: str | None = None  # the word that names it, as written
    resolved: str | None = None  # where a bare name was found on PATH


@dataclass(frozen=True)
class Place:
    """Where relative programs are looked for: the main checkout and the base branch."""

    top: Path
    common_dir: Path
    base: str | None  # the dispatch base, if it has a commit
    copied: tuple[str, ...] = ()  # files dispatch.setup copies into each worktree


def find(command: str, place: Place | None, env: dict[str, str] | None = None) -> Found:
    """Whether the program of ``command`` exists where the daemon will run it.

    ``env`` is the agent's own ``env:``, laid over this process's environment as the
    daemon does (its PATH counts; no value is ever shown)."""
    try:
        word = program(command)
    except ValueError as exc:
        return Found(False, f"sh cannot read the command line: {exc}", EDIT)
    if word is None or word in _BUILTINS:
        return Found(True, "runs a shell builtin first; not checked further", program=word)
    environ = {**os.environ, **(env or {})}
    path = _expand(word, environ)
    if "$" in path or "`" in path:
        return Found(True, f"`{word}` is found only when sh runs it; not checked", program=word)
    if "/" not in path:
        found = _on_path(word, path, environ)
    elif os.path.isabs(path):
        found = _absolute(word, Path(path))
        found = Found(found.ok, found.detail, found.fix, found.program, resolved=path)
    else:
        return _relative(word, path, place)
    return _module_of(command, found, environ) if found.ok else found


def _expand(word: str, environ: dict[str, str]) -> str:
    expanded = _VARIABLE.sub(lambda m: environ.get(m.group(1) or m.group(2), m.group(0)), word)
    return os.path.expanduser(expanded)


def _on_path(word: str, name: str, environ: dict[str, str]) -> Found:
    resolved = shutil.which(name, path=environ.get("PATH", os.defpath))
    if resolved is not None:
        return Found(True, f"`{word}` is {resolved}", program=word, resolved=resolved)
    installs = {_first(str(preset(p).get("command") or "")): preset(p).get("install")
                for p in PRESETS if p != "command"}  # fmt: skip
    if installs.get(name):
        return Found(False, f"`{word}` is not installed (not found on PATH)",
                     str(installs[name]), program=word)  # fmt: skip
    near = difflib.get_close_matches(name, [n for n in installs if n], n=1, cutoff=0.6)
    guess = f"; did you mean `{near[0]}`?" if near else ""
    return Found(False, f"`{word}` not found on PATH{guess}", EDIT, program=word)


_PYTHON = re.compile(r"^python[0-9.]*$")


def _module_of(command: str, found: Found, environ: dict[str, str]) -> Found:
    """For ``python -m MODULE ...``: whether that python has the module (the shipped
    tests gate is `python -m pytest`; a python without pytest fails every task)."""
    try:
        words = shlex.split(command)
    except ValueError:
        return found
    if len(words) < 3 or not _PYTHON.match(Path(words[0]).name) or words[1] != "-m":
        return found
    module, python = words[2], found.resolved or words[0]
    probe = "import importlib.util, sys; sys.exit(importlib.util.find_spec(sys.argv[1]) is None)"
    try:
        proc = subprocess.run([python, "-c", probe, module], env=environ, capture_output=True,
                              timeout=20, check=False)  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return found
    if proc.returncode == 0:
        return Found(True, f"{found.detail}, with module {module}", program=found.program,
                     resolved=found.resolved)  # fmt: skip
    return Found(False, f"`{python}` has no module {module!r}",
                 f"{python} -m pip install {module} (or name another python in the command)",
                 program=found.program, resolved=found.resolved)  # fmt: skip


def _first(command: str) -> str:
    try:
        return program(command) or ""
    except ValueError:
        return ""


def _absolute(word: str, path: Path) -> Found:
    if not path.is_file():
        return Found(False, f"`{word}` does not exist", EDIT, program=word)
    if not os.access(path, os.X_OK):
        return Found(False, f"`{word}` is not executable", f"chmod +x {shlex.quote(str(path))}",
                     program=word)  # fmt: skip
    return Found(True, f"`{word}` is executable", program=word)


def _relative(word: str, path: str, place: Place | None) -> Found:
    rel = posixpath.normpath(path)
    if place is None:
        return Found(True, f"`{word}`: not checked outside a repository", program=word)
    if rel.startswith("../"):
        return Found(True, f"`{word}` is outside the repository; not checked", program=word)
    q = shlex.quote(rel)
    mode = _mode_in(place, rel) if place.base else None
    if mode == "100755" or mode == "120000":
        return Found(True, f"`{word}` is executable in {place.base}", program=word)
    if mode == "100644":
        return Found(False, f"`{word}` is in {place.base} but not executable",
                     f"chmod +x {q} && git add {q} && git commit -m 'make {rel} executable'",
                     program=word)  # fmt: skip
    if mode is not None:
        return Found(False, f"`{word}` is a directory in {place.base}", EDIT, program=word)
    local = place.top / rel
    if not local.is_file():
        where = f"not in {place.top}"
        if place.base:
            where = f"neither in {place.base} nor in {place.top}"
        return Found(False, f"`{word}` is {where}", EDIT, program=word)
    if not os.access(local, os.X_OK):
        return Found(False, f"`{word}` is not executable", f"chmod +x {q}", program=word)
    if place.base is None or rel in place.copied:
        return Found(True, f"`{word}` is executable in {place.top}", program=word)
    return Found(False, f"`{word}` is in your checkout but not committed on {place.base}, "
                 "so task worktrees will not have it",
                 f"git add {q} && git commit -m 'add {rel}'", program=word)  # fmt: skip


def _mode_in(place: Place, rel: str) -> str | None:
    """The file mode of ``rel`` in the base branch's tree, None if it is not there."""
    try:
        out = run_git([f"--git-dir={place.common_dir}", "ls-tree", "-z",
                       f"refs/heads/{place.base}", "--", rel], place.common_dir).stdout  # fmt: skip
    except FactoryError:
        return None
    for entry in out.split(b"\0"):
        meta, _, name = entry.partition(b"\t")
        if name.decode("utf-8", "replace") == rel:
            return meta.split(b" ")[0].decode()
    return None


def version(
    preset_name: str, found: Found, cwd: Path, env: dict[str, str] | None = None
) -> str | None:
    """What the preset's ``version:`` command prints (its first line), when the agent
    runs the preset's own program; None when there is no such command or no answer."""
    if preset_name not in PRESETS or found.resolved is None:
        return None
    asked = str(preset(preset_name).get("version") or "")
    argv = shlex.split(asked)
    if not argv or argv[0] != found.program:
        return None  # the agent runs a program of its own under the preset's name
    try:
        proc = subprocess.run(
            [found.resolved, *argv[1:]], cwd=cwd, env={**os.environ, **(env or {})},
            stdin=subprocess.DEVNULL, capture_output=True, timeout=VERSION_TIMEOUT_S,
            check=False,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        return f"no answer to `{asked}` within {VERSION_TIMEOUT_S:g}s"
    except OSError as exc:
        return f"`{asked}` failed: {exc.strerror or exc}"
    lines = (proc.stdout or proc.stderr).decode("utf-8", "replace").strip().splitlines()
    said = lines[0][:80] if lines else ""
    return said if proc.returncode == 0 else f"`{asked}` exited {proc.returncode}: {said}"
