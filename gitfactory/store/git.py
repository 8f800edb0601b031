"""All access to git that is not the factory branch's object plumbing.

Two speeds: repository discovery and ref reads are plain file reads (so a query
answered from the index never pays the ~100 ms of ``import pygit2``); everything
else opens the repository with pygit2. The git CLI is used only where libgit2
cannot do the job, through :func:`run_git`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from gitfactory.errors import GitCommandError, NotARepositoryError

if TYPE_CHECKING:
    import subprocess

    import pygit2

# Variables that would make a git child process act on another repository or
# index than the one we name explicitly.
_SCRUBBED_ENV = (
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_COMMON_DIR",
    "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_NAMESPACE",
    "GIT_PREFIX",
)


@dataclass(frozen=True)
class RepoPaths:
    """Where a repository lives: its per-worktree git dir and its shared common dir."""

    git_dir: Path
    common_dir: Path
    work_tree: Path | None

    @property
    def factory_dir(self) -> Path:
        """gitfactory's private, derived, never-committed files (index, locks, logs)."""
        return self.common_dir / "gitfactory"


def main_top(paths: RepoPaths) -> Path:
    """The top of the repository's main worktree (or the bare repository's directory)."""
    common = paths.common_dir
    return common.parent if common.name == ".git" else common


def _read_gitfile(dotgit: Path) -> Path:
    text = dotgit.read_text(encoding="utf-8").strip()
    if not text.startswith("gitdir:"):
        raise NotARepositoryError(f"{dotgit} is not a valid .git file")
    target = Path(text[len("gitdir:") :].strip())
    return target if target.is_absolute() else (dotgit.parent / target).resolve()


def _common_dir(git_dir: Path) -> Path:
    env = os.environ.get("GIT_COMMON_DIR")
    if env:
        return Path(env).resolve()
    commondir = git_dir / "commondir"
    if commondir.is_file():
        rel = Path(commondir.read_text(encoding="utf-8").strip())
        return rel if rel.is_absolute() else (git_dir / rel).resolve()
    return git_dir


def _is_git_dir(path: Path) -> bool:
    return (path / "HEAD").is_file() and (path / "objects").is_dir()


def discover(start: Path | None = None) -> RepoPaths:
    """Find the repository containing ``start`` (default: the current directory)."""
    env_dir = os.environ.get("GIT_DIR")
    if env_dir:
        git_dir = Path(env_dir).resolve()
        if not _is_git_dir(git_dir):
            raise NotARepositoryError(f"GIT_DIR={env_dir} is not a git repository")
        tree = os.environ.get("GIT_WORK_TREE")
        return RepoPaths(git_dir, _common_dir(git_dir), Path(tree).resolve() if tree else None)
    here = (start or Path.cwd()).resolve()
    for path in (here, *here.parents):
        dotgit = path / ".git"
        if dotgit.is_dir() and _is_git_dir(dotgit):
            return RepoPaths(dotgit, _common_dir(dotgit), path)
        if dotgit.is_file():
            git_dir = _read_gitfile(dotgit)
            return RepoPaths(git_dir, _common_dir(git_dir), path)
        if _is_git_dir(path) and (path / "refs").is_dir():
            return RepoPaths(path, _common_dir(path), None)
    raise NotARepositoryError(
        f"not a git repository (or any parent up to /): {here}",
        hint="run gitfactory inside a git repository, or create one with `git init`",
    )


class RefUnreadable(Exception):
    """The ref storage is not the files backend; callers fall back to pygit2."""


def read_ref_fast(paths: RepoPaths, refname: str) -> str | None:
    """The oid a ref points to, read from loose or packed refs without libgit2.

    Returns None when the ref does not exist. Raises :class:`RefUnreadable` for
    ref storage this reader does not know (reftable) or a symbolic ref.
    """
    common = paths.common_dir
    if (common / "reftable").exists():
        raise RefUnreadable(refname)
    try:
        text = (common / refname).read_text(encoding="ascii").strip()
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        text = ""
    if text:
        if text.startswith("ref:"):
            raise RefUnreadable(refname)
        return text
    try:
        packed = (common / "packed-refs").read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    suffix = " " + refname
    for line in packed.splitlines():
        if line.endswith(suffix) and not line.startswith(("#", "^")):
            return line.split(" ", 1)[0]
    return None


def replace_file(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` in one step (a temporary file beside it, renamed over
    it): a reader sees the old file or the new one, never half of one. The temporary's
    name is this process's and this thread's (the daemon writes from two threads)."""
    import threading

    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def open_repo(paths: RepoPaths) -> pygit2.Repository:
    import pygit2

    try:
        return pygit2.Repository(str(paths.git_dir))
    except pygit2.GitError as exc:
        raise NotARepositoryError(f"cannot open repository at {paths.git_dir}: {exc}") from exc


def git_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _SCRUBBED_ENV}
    env["GIT_TERMINAL_PROMPT"] = "0"
    if extra:
        env.update(extra)
    return env


def run_git(
    args: list[str],
    cwd: Path,
    *,
    input: bytes | None = None,
    env: dict[str, str] | None = None,
    check: bool = True,
) -> subprocess.CompletedProcess[bytes]:
    """Run ``git ARGS`` in ``cwd`` with a scrubbed environment; errors show everything."""
    import subprocess

    cmd = ["git", *args]
    proc = subprocess.run(
        cmd, cwd=cwd, input=input, env=git_env(env), capture_output=True, check=False
    )
    if check and proc.returncode != 0:
        stderr = proc.stderr.decode("utf-8", "replace").strip()
        raise GitCommandError(f"`{' '.join(cmd)}` exited {proc.returncode}: {stderr}")
    return proc
