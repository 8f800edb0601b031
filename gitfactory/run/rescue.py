"""What an agent's run really did: work it left uncommitted is committed on the task
branch (never lost, never claimed by anyone else), and a step that had to change the
project and did not is a failure, whatever the agent said.

Everything in the worktree is the agent's data: git runs there with no hooks and no
filesystem monitor, so nothing the agent wrote is executed by the daemon.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from gitfactory.errors import FactoryError, GitCommandError
from gitfactory.store.git import run_git

if TYPE_CHECKING:
    from gitfactory.run.runs import Run

TRAILER = "Factory-Rescued"
# No hook, no fsmonitor, no pager: what the agent left in the worktree stays data.
_SAFE = ["-c", "core.hooksPath=/dev/null", "-c", "core.fsmonitor=false", "-c",
         "core.pager=cat", "-c", "commit.gpgSign=false"]  # fmt: skip
COMMITTER = ("gitfactory", "gitfactory@gitfactory.invalid")
_SHOWN = 10  # paths named in a reason


@dataclass(frozen=True)
class Rescue:
    """What was found uncommitted, and the commit that keeps it (None: not committed)."""

    paths: list[str]
    commit: str | None = None
    why_not: str = ""  # why it was not committed


def _git(
    args: list[str], worktree: Path, input: bytes | None = None, env: dict[str, str] | None = None
) -> str:
    return run_git([*_SAFE, *args], worktree, input=input, env=env).stdout.decode(
        "utf-8", "replace"
    )


def uncommitted(worktree: Path, keep_out: tuple[str, ...] = ()) -> list[str]:
    """The paths with changes not committed in ``worktree`` (untracked files included,
    ignored ones and ``keep_out`` not)."""
    out = _git(["status", "--porcelain=v1", "-z", "--untracked-files=all", "--no-renames",
                "--", ".", *_excluded(keep_out)], worktree)  # fmt: skip
    return [entry[3:] for entry in out.split("\0") if len(entry) > 3]


def _excluded(paths: tuple[str, ...]) -> list[str]:
    return [f":(top,exclude,literal){p}" for p in paths if p]


def on_branch(worktree: Path, branch: str) -> bool:
    proc = run_git([*_SAFE, "symbolic-ref", "-q", "HEAD"], worktree, check=False)
    return proc.stdout.decode().strip() == f"refs/heads/{branch}"


def rescue(run: Run, keep_out: tuple[str, ...], commit: bool) -> Rescue | None:
    """Commit what ``run``'s agent left uncommitted on its task branch, as the agent
    (``commit``), or only say what it left. None: nothing was left."""
    worktree = Path(run.worktree)
    if not worktree.is_dir():
        return None
    try:
        paths = uncommitted(worktree, keep_out)
    except GitCommandError as exc:
        return Rescue([], why_not=f"cannot read the worktree's status: {exc}")
    if not paths:
        return None
    if not commit:
        return Rescue(paths, why_not="on_uncommitted: fail")
    if not on_branch(worktree, run.branch):
        return Rescue(paths, why_not=f"the worktree is not on {run.branch} any more")
    role, _, name = run.agent.partition("/")
    env = {"GIT_AUTHOR_NAME": run.agent, "GIT_AUTHOR_EMAIL": f"{name}.{role}@gitfactory.invalid",
           "GIT_COMMITTER_NAME": COMMITTER[0], "GIT_COMMITTER_EMAIL": COMMITTER[1]}  # fmt: skip
    message = (
        f"Work {run.agent} left uncommitted ({run.step}, attempt {run.attempt})\n\n"
        "The agent's run ended with these changes in its worktree and no commit of\n"
        "them; gitfactory committed them on the task branch so that nothing is lost.\n\n"
        f"Factory-Task: {run.task}\nFactory-Run: {run.id}\n{TRAILER}: true\n"
    )
    try:
        _git(["add", "-A", "--", ".", *_excluded(keep_out)], worktree)
        _git(["commit", "--no-verify", "-q", "-F", "-"], worktree, input=message.encode(),
             env=env)  # fmt: skip
        head = _git(["rev-parse", "HEAD"], worktree).strip()
    except (GitCommandError, FactoryError) as exc:
        return Rescue(paths, why_not=f"the commit failed: {exc}")
    return Rescue(paths, commit=head)


def named(paths: list[str]) -> str:
    more = f" and {len(paths) - _SHOWN} more" if len(paths) > _SHOWN else ""
    return ", ".join(paths[:_SHOWN]) + more
