"""Workspaces: one git worktree per task, on its own branch, outside the user's checkout.

A task keeps its worktree and branch (``task/<id>-<slug>``) across its steps, so the
reviewer sees what the coder committed. Worktrees live under one root directory
(default ``../<repo>.worktrees``); a pool of idle ones, already checked out, can be
re-pointed at a new branch much faster than a new one is created. Every git command
here runs against the common git dir or inside a task worktree, never in the user's
own worktree.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from gitfactory.errors import FactoryError, GitCommandError
from gitfactory.store.git import RepoPaths, git_env, main_top, run_git

if TYPE_CHECKING:
    from gitfactory.config.agents import DispatchConfig
    from gitfactory.plan.tasks import Task

POOL_DIR = ".pool"
TRASH_DIR = ".trash"
SETUP_LOG = ".gitfactory-setup.log"
SETUP_DONE = ".gitfactory-setup.done"  # in the worktree's git dir: the setup command succeeded


class WorkspaceError(FactoryError):
    """A task's worktree could not be made ready (the message says which step failed)."""


@dataclass(frozen=True)
class Workspace:
    path: Path
    branch: str
    created: bool  # made (or taken from the pool) for this dispatch, and set up
    pooled: bool = False  # taken from the pool


def root(paths: RepoPaths, config: DispatchConfig) -> Path:
    top = main_top(paths)
    if config.worktrees:
        return (top / config.worktrees).resolve()
    return top.parent / f"{top.name}.worktrees"


def base(paths: RepoPaths, config: DispatchConfig) -> str:
    """The branch task branches start from."""
    if config.base:
        return config.base
    head = (paths.common_dir / "HEAD").read_text(encoding="utf-8").strip()
    if head.startswith("ref: refs/heads/"):
        return head[len("ref: refs/heads/") :]
    raise WorkspaceError(
        "the main worktree has a detached HEAD, so there is no branch to start tasks from",
        hint="set dispatch.base in factory.yaml (e.g. base: main)",
    )


def names(config: DispatchConfig, task: Task) -> tuple[str, str]:
    """The directory name and the branch of a task's worktree."""
    return config.task_names(task.id, task.title)


def ensure(
    paths: RepoPaths, config: DispatchConfig, task: Task, after: list[Task] | None = None
) -> Workspace:
    """The task's worktree: the existing one, else one from the pool, else a new one.

    A new branch starts from the base, or from the branch of a task in ``after``
    (what the task depends on) whose work is not in the base yet: dependent work
    builds on its prerequisites, like stacked branches.
    """
    stem, branch = names(config, task)
    path = root(paths, config) / stem
    if (path / ".git").exists():
        if config.setup_command and not _setup_done(path):
            _setup(paths, config, path)  # it failed or was cut off last time: again
        with contextlib.suppress(WorkspaceError):  # no base now: it stays where it is
            _catch_up(paths, path, branch, _start(paths, config, after))
        return Workspace(path, branch, created=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    start = _start(paths, config, after)
    exists = _has_branch(paths, branch)
    pooled = _from_pool(paths, config, path, branch, start, exists)
    if not pooled:
        args = [path.as_posix(), branch] if exists else ["-b", branch, path.as_posix(), start]
        _git(paths, ["worktree", "add", "-q", *args], f"create the worktree of {task.id[:8]}")
    if exists:
        _catch_up(paths, path, branch, start)
    _setup(paths, config, path)
    return Workspace(path, branch, created=True, pooled=pooled)


def _start(paths: RepoPaths, config: DispatchConfig, after: list[Task] | None) -> str:
    """Where the task's work starts: the base, or the branch of a prerequisite whose
    work is not in the base yet."""
    start = base(paths, config)
    for dep in after or []:
        dep_branch = names(config, dep)[1]
        if _has_branch(paths, dep_branch) and not _contains(paths, start, dep_branch):
            return dep_branch
    return start


def _catch_up(paths: RepoPaths, path: Path, branch: str, start: str) -> None:
    """Bring a task branch with no commits of its own up to ``start``.

    A task retried after its first attempts failed (a broken agent script, a bug in
    the project) must see the fix committed on the base since; a branch that holds
    work of its own is left as it is."""
    if not _contains(paths, start, branch) or _contains(paths, branch, start):
        return  # work of its own, or nothing new on the base
    # --ff-only: if files left in the worktree would be overwritten, it moves nothing.
    with contextlib.suppress(GitCommandError):
        run_git(["merge", "-q", "--ff-only", f"refs/heads/{start}"], path)


def _from_pool(
    paths: RepoPaths, config: DispatchConfig, path: Path, branch: str, start: str, exists: bool
) -> bool:
    """Re-point an idle pooled worktree at ``branch`` and move it to ``path``."""
    pool = root(paths, config) / POOL_DIR
    idle = sorted(pool.iterdir()) if pool.is_dir() else []
    for candidate in idle:
        if not (candidate / ".git").exists():
            continue
        target = [branch] if exists else ["-C", branch, start]
        try:
            run_git(["switch", "-q", "--discard-changes", *target], candidate)
            run_git(["clean", "-q", "-fdx"], candidate)
            _git(paths, ["worktree", "move", candidate.as_posix(), path.as_posix()], "reuse")
        except GitCommandError:
            drop = ["worktree", "remove", "--force", candidate.as_posix()]
            _git(paths, drop, "drop a pooled worktree", check=False)
            continue
        return True
    return False


def fill_pool(paths: RepoPaths, config: DispatchConfig) -> int:
    """Create idle worktrees until the pool holds ``dispatch.pool``; returns how many."""
    pool = root(paths, config) / POOL_DIR
    pool.mkdir(parents=True, exist_ok=True)
    have = [p for p in pool.iterdir() if (p / ".git").exists()]
    made = 0
    n = 0
    while len(have) + made < config.pool:
        n += 1
        path = pool / f"idle-{n}"
        if path.exists():
            continue
        start = base(paths, config)
        _git(paths, ["worktree", "add", "-q", "--detach", path.as_posix(), start], "fill the pool")
        made += 1
    return made


def _setup(paths: RepoPaths, config: DispatchConfig, path: Path) -> None:
    """Copy the configured files from the main worktree and run the setup command."""
    top = main_top(paths)
    for name in config.setup_copy:
        source = (top / name).resolve()
        relative = Path(name)
        if (relative.is_absolute() or ".." in relative.parts
                or top.resolve() not in source.parents or not source.is_file()):  # fmt: skip
            raise WorkspaceError(
                f"dispatch.setup.copy: {name!r} is not a file inside {top}",
                hint="list files relative to the repository's top, e.g. .env",
            )
        target = path / relative
        # The worktree's own files come from a branch: a symlink there (to a file
        # outside, say) is replaced, never written through.
        if not target.parent.resolve().is_relative_to(path.resolve()):
            raise WorkspaceError(
                f"dispatch.setup.copy: {name!r} would be written outside {path} "
                "(a folder of the branch is a symlink)"
            )
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.is_symlink():
            target.unlink()
        shutil.copyfile(source, target)
    if config.setup_command:
        with (path / ".git").open("r") as gitfile:
            gitdir = Path(gitfile.read().split(":", 1)[1].strip())
        log = gitdir / SETUP_LOG
        with log.open("wb") as out:
            proc = subprocess.run(
                ["sh", "-c", config.setup_command], cwd=path, stdout=out, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, env={**git_env(), "GITFACTORY_WORKTREE": str(path)},
                check=False,
            )  # fmt: skip
        if proc.returncode != 0:
            raise WorkspaceError(
                f"dispatch.setup.command exited {proc.returncode} in {path}",
                hint=f"its output is in {log}",
            )
        (gitdir / SETUP_DONE).touch()


def _setup_done(path: Path) -> bool:
    try:
        gitdir = Path((path / ".git").read_text().split(":", 1)[1].strip())
    except (OSError, IndexError):
        return False
    return (gitdir / SETUP_DONE).exists()


def is_dirty(path: Path, setup: tuple[str, ...] = ()) -> bool:
    """Whether the worktree holds work that would be lost with it: uncommitted
    changes (files that the setup copied in are not work), or commits on a HEAD that
    no branch holds (an agent that detached it and committed)."""
    out = run_git(["status", "--porcelain", "-z", "--untracked-files=all"], path)
    changed = [entry[3:] for entry in out.stdout.decode("utf-8", "replace").split("\0") if entry]
    if any(name not in setup for name in changed):
        return True
    on_branch = run_git(["symbolic-ref", "-q", "HEAD"], path, check=False).returncode == 0
    if on_branch:
        return False
    held = run_git(["for-each-ref", "--contains", "HEAD", "--format=%(refname)", "refs/heads"],
                   path, check=False)  # fmt: skip
    return not held.stdout.strip()


def remove(
    paths: RepoPaths, path: Path, background: bool = False, setup: tuple[str, ...] = ()
) -> bool:
    """Remove a task's worktree if it holds no uncommitted work; False if it was kept.

    The directory is first renamed into ``.trash/`` (instant) and git's record of the
    worktree pruned; deleting thousands of files then happens in a background thread
    with ``background``, so a daemon does not stall on it.
    """
    if not (path / ".git").exists():
        return True
    if is_dirty(path, setup):
        return False
    trash = path.parent / TRASH_DIR / f"{path.name}-{os.getpid()}-{time.monotonic_ns()}"
    trash.parent.mkdir(exist_ok=True)
    os.rename(path, trash)
    _git(paths, ["worktree", "prune"], "prune a removed worktree")
    if background:
        threading.Thread(target=shutil.rmtree, args=(trash, True), daemon=True).start()
    else:
        shutil.rmtree(trash, ignore_errors=True)
    return True


def _contains(paths: RepoPaths, branch: str, other: str) -> bool:
    """Whether ``branch`` already holds everything of ``other``."""
    args = ["merge-base", "--is-ancestor", f"refs/heads/{other}", f"refs/heads/{branch}"]
    return _git(paths, args, "", check=False).returncode == 0


def _has_branch(paths: RepoPaths, branch: str) -> bool:
    proc = _git(paths, ["rev-parse", "--verify", "-q", f"refs/heads/{branch}"], "", check=False)
    return proc.returncode == 0


def _git(
    paths: RepoPaths, args: list[str], doing: str, check: bool = True
) -> subprocess.CompletedProcess[bytes]:
    try:
        return run_git([f"--git-dir={paths.common_dir}", *args], paths.common_dir, check=check)
    except GitCommandError as exc:
        raise WorkspaceError(f"could not {doing}: {exc.message}") from None


@dataclass(frozen=True)
class Collected:
    removed: list[Path]
    kept: list[Path]  # finished, but holding uncommitted work: never thrown away


def collect(paths: RepoPaths, config: DispatchConfig, finished: set[str]) -> Collected:
    """Remove the worktrees of finished tasks (``finished``: their 8-character id
    prefixes) that hold no uncommitted work; keep the others and name them."""
    top = root(paths, config)
    removed: list[Path] = []
    kept: list[Path] = []
    for path in sorted(top.iterdir()) if top.is_dir() else []:
        if path.name in (POOL_DIR, TRASH_DIR) or path.name[:8] not in finished:
            continue
        (removed if remove(paths, path, setup=config.setup_copy) else kept).append(path)
    _git(paths, ["worktree", "prune"], "prune worktrees", check=False)
    return Collected(removed, kept)
