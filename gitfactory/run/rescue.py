"""What an agent's run really did: work it left uncommitted is committed on the task
branch (never lost, never claimed by anyone else), and a step that had to change the
project and did not is a failure, whatever the agent said.

Everything in the worktree is the agent's data, and so is the repository's
configuration, which the agent can write: this is done with libgit2, which runs no
hook, filesystem monitor or filter program.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gitfactory.run.runs import Run

TRAILER = "Factory-Rescued"
COMMITTER = ("gitfactory", "gitfactory@gitfactory.invalid")
_SHOWN = 10  # paths named in a reason


@dataclass(frozen=True)
class Rescue:
    """What was found uncommitted, and the commit that keeps it (None: not committed)."""

    paths: list[str]
    commit: str | None = None
    why_not: str = ""  # why it was not committed


def _kept_out(path: str, keep_out: tuple[str, ...]) -> bool:
    return any(path == k or path.startswith(k.rstrip("/") + "/") for k in keep_out if k)


def rescue(run: Run, keep_out: tuple[str, ...], commit: bool) -> Rescue | None:
    """Commit what ``run``'s agent left uncommitted on its task branch, as the agent
    (``commit``), or only say what it left. None: nothing was left.

    All of it through libgit2, which runs no hook, no filesystem monitor and no filter
    program: the repository's configuration is writable by the agent, and nothing it
    wrote may run in the daemon.
    """
    import pygit2

    worktree = Path(run.worktree)
    if not worktree.is_dir():
        return None
    try:
        repo = pygit2.Repository(str(worktree))
        found = repo.status(untracked_files="all", ignored=False)
    except (pygit2.GitError, KeyError, ValueError) as exc:
        return Rescue([], why_not=f"cannot read the worktree's status: {exc}")
    current = pygit2.enums.FileStatus.CURRENT
    paths = sorted(p for p, f in found.items() if f != current and not _kept_out(p, keep_out))
    if not paths:
        return None
    if not commit:
        return Rescue(paths, why_not="on_uncommitted: fail")
    if repo.index.conflicts is not None or repo.state() != pygit2.enums.RepositoryState.NONE:
        return Rescue(paths, why_not="a merge, rebase or cherry-pick is in progress")
    if repo.head_is_detached or repo.head.name != f"refs/heads/{run.branch}":
        return Rescue(paths, why_not=f"the worktree is not on {run.branch} any more")
    role, _, name = run.agent.partition("/")
    message = (
        f"Work {run.agent} left uncommitted ({run.step}, attempt {run.attempt})\n\n"
        "The agent's run ended with these changes in its worktree and no commit of\n"
        "them; gitfactory committed them on the task branch so that nothing is lost.\n\n"
        f"Factory-Task: {run.task}\nFactory-Run: {run.id}\n{TRAILER}: true\n"
    )
    try:
        index = repo.index
        for path in paths:
            if (worktree / path).is_symlink() or (worktree / path).is_file():
                index.add(path)
            elif not (worktree / path).exists():
                index.remove(path)
            # (a directory here is a nested repository: not ours to take in)
        index.write()
        head = repo.create_commit(
            "HEAD",
            pygit2.Signature(run.agent, f"{name}.{role}@gitfactory.invalid"),
            pygit2.Signature(*COMMITTER),
            message,
            index.write_tree(),
            [repo.head.target],
        )
    except (pygit2.GitError, OSError, KeyError, ValueError) as exc:
        return Rescue(paths, why_not=f"the commit failed: {exc}")
    return Rescue(paths, commit=str(head))


def named(paths: list[str]) -> str:
    more = f" and {len(paths) - _SHOWN} more" if len(paths) > _SHOWN else ""
    return ", ".join(paths[:_SHOWN]) + more
