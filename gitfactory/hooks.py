"""The reference-transaction hook: git's own signal that a ref moved, in any worktree.

Git runs ``hooks/reference-transaction`` of the common hooks directory for every ref
update made by the git CLI in any worktree of the repository (not skipped by
``--no-verify``). gitfactory's hook touches ``.git/gitfactory/wake``, which the daemon
watches: the fastest way to learn of a commit. It is only the fast path: libgit2
writers run no hooks, so the daemon also watches the ref files and reconciles
against a full ref listing.

A hook that was already there is kept: installing renames it to
``reference-transaction.before-gitfactory`` and our hook runs it first, with the same
arguments and input, and exits with its status (a user's hook may veto a
transaction in the ``prepared`` state). Uninstalling puts it back.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from gitfactory.errors import FactoryError
from gitfactory.git import RepoPaths, run_git

HOOK = "reference-transaction"
CHAINED = f"{HOOK}.before-gitfactory"
MARKER = "# gitfactory reference-transaction hook"
WAKE_FILE = "wake"

_SCRIPT = """#!/bin/sh
{marker} (installed by `gitfactory hooks install`; remove it with
# `gitfactory hooks uninstall`, which puts back any hook that was here before).
# Runs the hook that was here before, then, once a ref update is committed, touches
# a file the gitfactory daemon watches, so it reacts within milliseconds. It runs on
# every ref update, so it forks nothing of its own (git ignores input a hook does
# not read).
status=0
chained="${{0%/*}}/{chained}"
if [ -x "$chained" ]; then
    input=$(cat)
    printf '%s\\n' "$input" | "$chained" "$@" || status=$?
fi
if [ "$1" = committed ]; then
    wake={wake}
    [ -d "${{wake%/*}}" ] || wake="$(git rev-parse --git-common-dir)/gitfactory/{wake_name}"
    [ -d "${{wake%/*}}" ] && : > "$wake"
fi
exit $status
"""


@dataclass(frozen=True)
class HookState:
    path: Path
    installed: bool
    chained: Path | None  # the user's own hook, run before ours


def hooks_dir(paths: RepoPaths) -> Path:
    """The directory git takes hooks from (core.hooksPath, else the common hooks dir)."""
    cwd = paths.work_tree or paths.git_dir
    out = run_git(["rev-parse", "--path-format=absolute", "--git-path", "hooks"], cwd)
    return Path(out.stdout.decode().strip())


def state(paths: RepoPaths) -> HookState:
    path = hooks_dir(paths) / HOOK
    chained = path.with_name(CHAINED)
    return HookState(path, _is_ours(path), chained if chained.exists() else None)


def install(paths: RepoPaths) -> HookState:
    """Install the hook (idempotent), keeping any hook already there."""
    path = hooks_dir(paths) / HOOK
    path.parent.mkdir(parents=True, exist_ok=True)
    paths.factory_dir.mkdir(exist_ok=True)
    chained = path.with_name(CHAINED)
    if (path.exists() or path.is_symlink()) and not _is_ours(path):
        if chained.exists() or chained.is_symlink():
            raise FactoryError(
                f"both {path} and {chained} exist and neither is gitfactory's",
                hint=f"merge them into one hook at {path}, then install again",
            )
        os.rename(path, chained)
    wake = paths.factory_dir / WAKE_FILE
    script = _SCRIPT.format(
        marker=MARKER, chained=CHAINED, wake=_shell_quote(str(wake)), wake_name=WAKE_FILE
    )
    tmp = path.with_name(f".{HOOK}.gitfactory.tmp")
    tmp.write_text(script, encoding="utf-8")
    tmp.chmod(tmp.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    os.replace(tmp, path)
    return state(paths)


def uninstall(paths: RepoPaths) -> HookState:
    """Remove our hook and put back the one it chained to, if any."""
    path = hooks_dir(paths) / HOOK
    if _is_ours(path):
        path.unlink()
        chained = path.with_name(CHAINED)
        if chained.exists() or chained.is_symlink():
            os.rename(chained, path)
    return state(paths)


def _is_ours(path: Path) -> bool:
    try:
        with path.open("r", encoding="utf-8", errors="replace") as fh:
            return MARKER in fh.read(4096)
    except OSError:
        return False


def _shell_quote(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"
