"""Task branches travel with the factory (SPEC §19): the daemon of one clone may run
a task's implement step and another clone's daemon its gate or its review, so with
``sync.remote`` set the work itself goes through the remote too.

After a run, its task branch is pushed (a fast-forward only: one holder at a time
works on it). Before a run, the task branch is fetched, and the local one is created
from it or moved forward to it (in its worktree, if it has one). A local branch that
holds commits the remote's lacks is left as it is: it is pushed after its run.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

from gitfactory.errors import FactoryError, GitCommandError
from gitfactory.store import remote
from gitfactory.store.git import run_git

if TYPE_CHECKING:
    from pathlib import Path

    from gitfactory.store.factory import Factory


def take(factory: Factory, where: remote.Remote, branch: str, worktree: Path) -> str | None:
    """Bring the local ``branch`` up to the remote's; what happened, for the log (None:
    nothing to do). Never fails the run: a remote that is away leaves the local one."""
    try:
        theirs = remote.fetch_branch(factory, where, branch)
    except FactoryError:
        return None
    if theirs is None:
        return None
    store = factory.store
    ours = store.branch_tip(branch)
    if ours == theirs or (ours is not None and store.repo.descendant_of(ours, theirs)):
        return None
    if ours is not None and not store.repo.descendant_of(theirs, ours):
        return f"{branch} here and on {where.name} have both moved; the local one is kept"
    top = factory.paths.work_tree or factory.paths.git_dir
    try:
        if ours is None:
            run_git(["branch", "--no-track", "--", branch, theirs], top)
        elif (worktree / ".git").exists():
            run_git(["merge", "-q", "--ff-only", theirs], worktree)
        else:
            run_git(["update-ref", f"refs/heads/{branch}", theirs, ours], top)
    except GitCommandError as exc:
        return f"{branch} was not moved to {where.name}'s: {exc.message}"
    return f"{branch} taken from {where.name} at {theirs[:10]}"


def share(factory: Factory, where: remote.Remote, branch: str) -> str | None:
    """Push the local ``branch`` to the remote (fast-forward only); what went wrong, or
    None."""
    tip = factory.store.branch_tip(branch)
    if tip is None:
        return None
    with contextlib.suppress(FactoryError):
        if remote.push(factory, where, tip, branch=branch) == remote.Pushed.OK:
            return None
        return f"{where.name} has commits on {branch} that this clone lacks; not pushed"
    return f"{branch} could not be pushed to {where.name} now; it goes with the next run"
