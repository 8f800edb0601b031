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
SERVER_HOOK = "pre-receive"  # a shared bare remote: checks every push


def _marker(hook: str) -> str:
    return f"# gitfactory {hook} hook"


MARKER = _marker(HOOK)
WAKE_FILE = "wake"

# What both hooks share: refuse to move the factory branch to a tree that deletes or
# changes a record. Plain sh and git: fast, no fork unless the factory branch moves,
# no dependency on the Python that installed it (a server may not keep it).
_GUARD = """zero_or_empty() {{ case "$1" in *[!0]*) return 1;; esac; return 0; }}
guard() {{  # stdin: "old new ref" lines; fails when the factory branch would lose records
    while read -r old new ref; do
        [ "$ref" = {ref} ] || continue
        # An update that names no old value (git branch -f, update-ref without one)
        # gets zeros here: what it replaces is the branch's current tip.
        zero_or_empty "$old" && old=$(git rev-parse -q --verify "$ref^{{commit}}" 2>/dev/null)
        zero_or_empty "$old" && continue  # created
        if zero_or_empty "$new"; then
            echo "gitfactory: refusing to delete {ref}: every record of the factory is on it." >&2
            echo "If you mean it, run \\`gitfactory hooks uninstall\\` first" >&2
            echo "(with --server on a shared remote)." >&2
            return 1
        fi
        lost=$(git diff-tree -r --no-renames --diff-filter=DMT --name-status "$old" "$new" \\
               -- {paths} 2>/dev/null) || continue
        [ -n "$lost" ] || continue
        n=$(printf '%s\\n' "$lost" | wc -l | tr -d ' ')
        echo "gitfactory: refusing to move {ref}: the new commit deletes or changes" >&2
        echo "$n record(s) written earlier (records are append-only; D deleted, M changed):" >&2
        printf '%s\\n' "$lost" | head -n 20 | sed 's/^/    /' >&2
        [ "$n" -gt 20 ] && echo "    ... and $((n - 20)) more" >&2
        echo "A commit from a stale checkout of the branch, or moving it back, does this;" >&2
        echo "build on its current tip instead. Between clones, \\`gitfactory sync\\`" >&2
        echo "merges both sides' records and pushes (never fetch over the branch or" >&2
        echo "force-push it)." >&2
        echo "Change factory.yaml, documents and scenarios with \\`gitfactory config edit\\`" >&2
        echo "(or \\`docs edit\\`, \\`scenario edit\\`): they commit on the current tip." >&2
        return 1
    done
    return 0
}}
"""

_SCRIPT = """#!/bin/sh
{marker} (installed by `gitfactory hooks install`; remove it with
# `gitfactory hooks uninstall`, which puts back any hook that was here before).
# Runs the hook that was here before; refuses, before it happens, an update of the
# factory branch that would delete or change a record; and, once a ref update is
# committed, touches a file the gitfactory daemon watches, so it reacts within
# milliseconds. It runs on every ref update, so it forks nothing unless the factory
# branch moves (git ignores input a hook does not read).
{guard}status=0
chained="${{0%/*}}/{chained}"
input=
if [ "$1" = prepared ]; then
    while IFS= read -r line; do input="$input$line
"; done
fi
if [ -x "$chained" ]; then
    if [ "$1" = prepared ]; then
        printf '%s' "$input" | "$chained" "$@" || status=$?
    else
        "$chained" "$@" || status=$?  # it reads git's input itself, as it would alone
    fi
fi
if [ "$1" = prepared ] && [ "$status" = 0 ]; then
    case "$input" in
        *" "{ref}"
"*) printf '%s' "$input" | guard || status=1 ;;
    esac
fi
if [ "$1" = committed ]; then
    wake={wake}
    [ -d "${{wake%/*}}" ] || wake="$(git rev-parse --git-common-dir)/gitfactory/{wake_name}"
    [ -d "${{wake%/*}}" ] && : > "$wake"
fi
exit $status
"""

_SERVER_SCRIPT = """#!/bin/sh
{marker} (installed by `gitfactory hooks install --server`; remove it
# with `gitfactory hooks uninstall --server`, which puts back any hook that was here).
# Runs the hook that was here before, then refuses a push that would move the factory
# branch to a tree that deletes or changes a record.
{guard}input=$(cat; echo .)
input=${{input%.}}
chained="${{0%/*}}/{chained}"
if [ -x "$chained" ]; then
    printf '%s' "$input" | "$chained" "$@" || exit $?
fi
printf '%s' "$input" | guard || exit 1
exit 0
"""


def _chained(hook: str) -> str:
    return f"{hook}.before-gitfactory"


CHAINED = _chained(HOOK)


def _render(paths: RepoPaths, hook: str, branch: str) -> str:
    from gitfactory.store.records import FACTORY_DIR, RECORD_DIRS

    ref = f"refs/heads/{branch}"
    dirs = [f"{FACTORY_DIR}/{d}" for d in RECORD_DIRS]
    guard = _GUARD.format(ref=_shell_quote(ref), paths=" ".join(_shell_quote(d) for d in dirs))
    if hook == SERVER_HOOK:
        return _SERVER_SCRIPT.format(marker=_marker(hook), guard=guard,
                                     chained=_chained(hook))  # fmt: skip
    wake = paths.factory_dir / WAKE_FILE
    return _SCRIPT.format(marker=MARKER, chained=_chained(hook), wake=_shell_quote(str(wake)),
                          wake_name=WAKE_FILE, guard=guard, ref=_shell_quote(ref))  # fmt: skip


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


def state(paths: RepoPaths, hook: str = HOOK) -> HookState:
    path = hooks_dir(paths) / hook
    chained = path.with_name(_chained(hook))
    return HookState(path, _is_ours(path), chained if chained.exists() else None)


def current(paths: RepoPaths, branch: str = "factory", hook: str = HOOK) -> bool:
    """Whether the installed hook is the one `install` would write now (same branch,
    same repository location) and git can run it."""
    path = hooks_dir(paths) / hook
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return False
    return text == _render(paths, hook, branch) and os.access(path, os.X_OK)


def foreign(paths: RepoPaths) -> Path | None:
    """The hooks directory if it is not this repository's own: a core.hooksPath
    outside its git dir is shared with other repositories or tracked in a work tree
    (husky, pre-commit), and gitfactory does not write there."""
    directory = hooks_dir(paths)
    return directory if _outside(paths, directory) else None


def _outside(paths: RepoPaths, directory: Path) -> bool:
    return not directory.resolve().is_relative_to(paths.common_dir.resolve())


def _own_hooks_dir(paths: RepoPaths) -> Path:
    """The hooks directory, if it is this repository's own (see :func:`foreign`)."""
    directory = hooks_dir(paths)
    if _outside(paths, directory):
        raise FactoryError(
            f"core.hooksPath points at {directory}, outside this repository's git dir: "
            "a hook there would run for other repositories too, or change tracked files",
            hint="the daemon works without the hook (it watches the ref files and "
            'reconciles); to use it, add the line `[ "$1" = committed ] && : > '
            f"{_shell_quote(str(paths.factory_dir / WAKE_FILE))}` to your own hook",
        )
    return directory


def install(paths: RepoPaths, branch: str = "factory", hook: str = HOOK) -> HookState:
    """Install the hook (idempotent), keeping any hook already there. Our hook is
    written first and put in place last: if anything fails, the user's hook is where
    it was. ``hook`` is :data:`HOOK`, or :data:`SERVER_HOOK` for a bare remote."""
    path = _own_hooks_dir(paths) / hook
    chained = path.with_name(_chained(hook))
    tmp = path.with_name(f".{hook}.gitfactory.tmp")
    script = _render(paths, hook, branch)
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
    return state(paths, hook)


def uninstall(paths: RepoPaths, hook: str = HOOK) -> HookState:
    """Remove our hook and put back the one it chained to, if any."""
    path = hooks_dir(paths) / hook
    try:
        if _is_ours(path):
            chained = path.with_name(_chained(hook))
            if chained.exists() or chained.is_symlink():
                os.replace(chained, path)  # theirs takes our place in one step
            else:
                path.unlink()
    except OSError as exc:
        raise FactoryError(
            f"cannot uninstall the hook in {path.parent}: {exc.strerror or exc}"
        ) from None
    return state(paths, hook)


def _is_ours(path: Path) -> bool:
    try:
        with path.open("r", encoding="utf-8", errors="replace") as fh:
            head = fh.read(4096)
    except OSError:
        return False
    return any(_marker(hook) in head for hook in (HOOK, SERVER_HOOK))


def _shell_quote(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"
