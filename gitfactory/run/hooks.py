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

import contextlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from gitfactory.errors import FactoryError
from gitfactory.store.git import RepoPaths, run_git

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
    "$chained" "$@" || status=$?  # it reads git's input itself, as it would alone
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


def _own_hooks_dir(paths: RepoPaths) -> Path:
    """The hooks directory, if it is this repository's own (inside its git dir); a
    core.hooksPath elsewhere is shared with other repositories or tracked in a work
    tree (husky, pre-commit), and gitfactory does not write there."""
    directory = hooks_dir(paths)
    if not directory.resolve().is_relative_to(paths.common_dir.resolve()):
        raise FactoryError(
            f"core.hooksPath points at {directory}, outside this repository's git dir: "
            "a hook there would run for other repositories too, or change tracked files",
            hint="the daemon works without the hook (it watches the ref files and "
            'reconciles); to use it, add the line `[ "$1" = committed ] && : > '
            f"{_shell_quote(str(paths.factory_dir / WAKE_FILE))}` to your own hook",
        )
    return directory


def install(paths: RepoPaths) -> HookState:
    """Install the hook (idempotent), keeping any hook already there. Our hook is
    written first and put in place last: if anything fails, the user's hook is where
    it was."""
    path = _own_hooks_dir(paths) / HOOK
    chained = path.with_name(CHAINED)
    tmp = path.with_name(f".{HOOK}.gitfactory.tmp")
    wake = paths.factory_dir / WAKE_FILE
    script = _SCRIPT.format(
        marker=MARKER, chained=CHAINED, wake=_shell_quote(str(wake)), wake_name=WAKE_FILE
    )
    moved = False
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        paths.factory_dir.mkdir(exist_ok=True)
        theirs = (path.exists() or path.is_symlink()) and not _is_ours(path)
        if theirs and (chained.exists() or chained.is_symlink()):
            raise FactoryError(
                f"both {path} and {chained} exist and neither is gitfactory's",
                hint=f"merge them into one hook at {path}, then install again",
            )
        tmp.write_text(script, encoding="utf-8")
        tmp.chmod(tmp.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
        if theirs:
            os.rename(path, chained)
            moved = True
        os.replace(tmp, path)
    except OSError as exc:
        if moved and not (path.exists() or path.is_symlink()):
            os.rename(chained, path)  # put the user's hook back
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise FactoryError(
            f"cannot install the hook in {path.parent}: {exc.strerror or exc}; nothing changed"
        ) from None
    return state(paths)


def uninstall(paths: RepoPaths) -> HookState:
    """Remove our hook and put back the one it chained to, if any."""
    path = hooks_dir(paths) / HOOK
    try:
        if _is_ours(path):
            chained = path.with_name(CHAINED)
            if chained.exists() or chained.is_symlink():
                os.replace(chained, path)  # theirs takes our place in one step
            else:
                path.unlink()
    except OSError as exc:
        raise FactoryError(
            f"cannot uninstall the hook in {path.parent}: {exc.strerror or exc}"
        ) from None
    return state(paths)


def _is_ours(path: Path) -> bool:
    try:
        with path.open("r", encoding="utf-8", errors="replace") as fh:
            return MARKER in fh.read(4096)
    except OSError:
        return False


def _shell_quote(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"
