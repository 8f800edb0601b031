"""The factory branch on a git remote: fetch it, push to it, and join it (SPEC §19).

The remote is any git remote (GitHub, GitLab, a bare repository over ssh, `git
daemon`): gitfactory runs no server. The git CLI does the transport (libgit2's
transports lack the user's credential helpers and ssh configuration); everything
else stays in pygit2. A remote's factory branch is fetched into a remote-tracking
ref (``refs/remotes/NAME/factory`` for a configured remote, a private ref for a
URL), never straight into the local branch: that would drop local records.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from gitfactory.errors import FactoryError, UsageError
from gitfactory.errors import RemoteUnreachableError as RemoteUnreachableError
from gitfactory.store import contacts
from gitfactory.store.git import git_env, main_top

if TYPE_CHECKING:
    from gitfactory.store.factory import Factory

DEFAULT_REMOTE = "origin"
# A remote that neither answers nor fails (a dead host behind a firewall) must not
# hold a sync, or a claim, forever.
NETWORK_TIMEOUT = 30.0
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,99}$")


class RemoteRefusedError(FactoryError):
    """The remote took the connection but refused the push (a hook, a protection rule)."""


@dataclass(frozen=True)
class Remote:
    """Where the factory branch is shared: a configured remote's name, or a URL."""

    name: str  # as configured or typed
    url: str  # what git is given: the name of a configured remote, or the URL
    tracking: str  # the ref its factory branch is fetched into

    def label(self, branch: str) -> str:
        return f"{self.name}/{branch}" if self.url == self.name else f"{self.name} {branch}"


def resolve(factory: Factory, name: str | None) -> Remote:
    """The remote called ``name`` (default: ``origin``): a configured remote of this
    repository, or a URL or path to a repository."""
    name = name or DEFAULT_REMOTE
    if not name.strip() or name.startswith("-") or any(c.isspace() for c in name):
        raise UsageError(f"{name!r} is not a remote: give a remote's name or a URL")
    if _is_configured(factory, name):
        return Remote(name, name, f"refs/remotes/{name}/{factory.branch}")
    if _looks_like_url(name):
        digest = hashlib.sha256(name.encode("utf-8")).hexdigest()[:16]
        return Remote(name, name, f"refs/gitfactory/remotes/{digest}/{factory.branch}")
    configured = ", ".join(configured_remotes(factory)) or "none"
    raise UsageError(
        f"no remote {name!r} in this repository (configured: {configured})",
        hint="add it with `git remote add NAME URL`, or give a URL",
    )


def configured_remotes(factory: Factory) -> list[str]:
    return sorted(str(n) for n in factory.store.repo.remotes.names() if n)


def _is_configured(factory: Factory, name: str) -> bool:
    return bool(NAME.match(name)) and name in configured_remotes(factory)


def _looks_like_url(text: str) -> bool:
    return (
        "://" in text
        or text.startswith(("/", "./", "../", "~"))
        or (
            ":" in text and "@" in text.split(":", 1)[0]  # scp-like user@host:path
        )
    )


@contextmanager
def exclusive(
    factory: Factory, remote: Remote, wait: float = 3 * NETWORK_TIMEOUT
) -> Iterator[None]:
    """This clone's talks with remotes, one at a time: concurrent fetches would fight
    over the tracking ref's lock, and a claim round (fetch, decide, push) of one agent
    would only make another's push lose. Waiting longer than ``wait`` for the other
    talker means the remote is slow or hangs: :class:`RemoteUnreachableError`."""
    from filelock import FileLock, Timeout

    factory.paths.factory_dir.mkdir(exist_ok=True)
    lock = FileLock(str(factory.paths.factory_dir / "remote.lock"), timeout=wait)
    try:
        lock.acquire()
    except Timeout:
        raise RemoteUnreachableError(
            f"another gitfactory process of this clone has been talking with {remote.name} "
            f"for {wait:.0f}s: it is slow, or does not answer",
            hint="the daemon keeps trying; run `gitfactory sync` to wait for it",
        ) from None
    try:
        yield
    finally:
        lock.release()


def clone_id(factory: Factory) -> str:
    """This clone's own name among the clones of a factory (random, made once, kept in
    ``.git/gitfactory/clone-id``): a daemon's claims carry it, so that two daemons on
    two machines, running the same agents of one factory.yaml, never take one step
    both, and one never gives back what the other holds."""
    import secrets

    path = factory.paths.factory_dir / "clone-id"
    here = str(factory.paths.common_dir.resolve())
    try:
        found, _, where = path.read_text(encoding="utf-8").strip().partition(" ")
        if re.fullmatch(r"[a-z0-9]{8,32}", found) and where == here:
            return found
        if where != here:  # a copy of another clone's .git: it is a clone of its own
            path.unlink(missing_ok=True)
    except (OSError, UnicodeDecodeError):
        pass
    factory.paths.factory_dir.mkdir(exist_ok=True)
    made = secrets.token_hex(6)
    tmp = path.with_name(f".clone-id.{os.getpid()}.tmp")
    tmp.write_text(f"{made} {here}\n", encoding="utf-8")
    try:
        os.link(tmp, path)  # first writer wins; a racing one reads the winner's
    except FileExistsError:
        return clone_id(factory)
    finally:
        tmp.unlink(missing_ok=True)
    return made


# -- fetching ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Fetched:
    """The remote's factory branch as fetched: ``tip`` None when it has none."""

    before: str | None  # the tracking ref before this fetch
    tip: str | None
    # The tracking ref moved to a commit that does not hold the old one: the remote
    # was force-pushed back or aside.
    rewound: bool = False


_FETCHED: dict[tuple[str, str], float] = {}  # (git dir, tracking ref) -> when, this process


def fetched_within(factory: Factory, remote: Remote, seconds: float) -> bool:
    """Whether this process fetched ``remote`` in the last ``seconds``."""
    at = _FETCHED.get((str(factory.paths.git_dir), remote.tracking))
    return at is not None and time.monotonic() - at < seconds


def fetch(factory: Factory, remote: Remote) -> Fetched:
    """Fetch the remote's factory branch into its tracking ref (forced: the tracking
    ref mirrors the remote, rewinds included; the local branch is never touched)."""
    _FETCHED[(str(factory.paths.git_dir), remote.tracking)] = time.monotonic()
    before = tracking_tip(factory, remote)
    if not _fetch_ref(factory, remote, factory.branch, remote.tracking):
        if before is not None:  # the remote's branch is gone: so is what mirrored it
            with contextlib.suppress(KeyError, ValueError):
                factory.store.repo.references.delete(remote.tracking)
        return Fetched(before, None)
    tip = tracking_tip(factory, remote)
    return Fetched(before, tip, _moved_back(factory, before, tip))


def _fetch_ref(factory: Factory, remote: Remote, branch: str, tracking: str) -> bool:
    return fetch_ref(factory, remote, f"refs/heads/{branch}", tracking)


def fetch_ref(factory: Factory, remote: Remote, source: str, tracking: str) -> bool:
    """Fetch the remote's ref ``source`` into ``tracking`` (forced); False if the remote
    has no such ref. Raises :class:`RemoteUnreachableError`; notes how the contact went."""
    proc = git(factory, ["fetch", "--no-tags", "--no-write-fetch-head", "--quiet",
                          "--no-recurse-submodules", "--", remote.url,
                          f"+{source}:{tracking}"])  # fmt: skip
    stderr = stderr_of(proc)
    if proc.returncode != 0 and not (
        "couldn't find remote ref" in stderr or "could not find remote ref" in stderr
    ):
        error = unreachable(remote, "fetch from", stderr)
        contacts.note(factory, remote, error)
        raise error
    contacts.note(factory, remote, None)
    return proc.returncode == 0


def _moved_back(factory: Factory, before: str | None, tip: str | None) -> bool:
    """Whether the remote's branch moved from ``before`` to a commit that lacks it."""
    import pygit2

    repo = factory.store.repo
    if not before or not tip or before == tip or before not in repo:
        return False
    try:
        return not repo.descendant_of(tip, before)
    except (pygit2.InvalidError, ValueError):
        return False  # not a commit on one side: the sync refuses it by itself


def fetch_branch(factory: Factory, remote: Remote, branch: str) -> str | None:
    """Fetch another branch of the remote (a task's) beside the factory branch's
    tracking ref; its commit there, or None if the remote has no such branch."""
    tracking = remote.tracking[: -len(factory.branch)] + branch
    if not _fetch_ref(factory, remote, branch, tracking):
        return None
    ref = factory.store.repo.references.get(tracking)
    return str(ref.target) if ref is not None else None


def tracking_tip(factory: Factory, remote: Remote) -> str | None:
    ref = factory.store.repo.references.get(remote.tracking)
    return str(ref.target) if ref is not None else None


# -- pushing ----------------------------------------------------------------------------


class Pushed(StrEnum):
    OK = "ok"  # the remote's branch is now the commit pushed (or already was)
    REJECTED = "rejected"  # not a fast-forward: someone pushed first; fetch and retry


def push(factory: Factory, remote: Remote, commit: str, branch: str | None = None) -> Pushed:
    """Push ``commit`` as the remote's factory branch (or ``branch``, a task's), as a
    fast-forward only.

    The remote's receive-pack moves its ref only if it still points where this push
    saw it, so a push is the remote's compare-and-swap (DESIGN I4). Hooks of this
    repository (pre-push) are not run: these branches are the factory's, not yours.
    """
    task_branch = branch is not None
    branch = branch or factory.branch
    proc = git(
        factory,
        [
            "push",
            "--porcelain",
            "--no-verify",
            "--",
            remote.url,
            f"{commit}:refs/heads/{branch}",
        ],
    )
    out = proc.stdout.decode("utf-8", "replace")
    flags = [line[0] for line in out.splitlines() if "\t" in line and line[:1] in " +-*=!"]
    if proc.returncode == 0 and flags and "!" not in flags:
        if not task_branch:
            _set_tracking(factory, remote, commit)
        return Pushed.OK
    text = out + stderr_of(proc)
    if any(race in text for race in _LOST_RACE):
        return Pushed.REJECTED  # another push moved the branch while the remote took ours
    if "[remote rejected]" in text or "pre-receive hook declined" in text:
        reason = remote_reason(text)
        raise RemoteRefusedError(
            f"{remote.label(branch)} refused the push: {reason}",
            hint="the remote's hook or branch protection refused it; `gitfactory verify` "
            "here says whether this clone holds a record changed or deleted",
        )
    if "[rejected]" in text or "non-fast-forward" in text or "fetch first" in text:
        return Pushed.REJECTED
    error = unreachable(remote, "push to", text.strip())
    contacts.note(factory, remote, error)
    raise error


# What a remote's receive-pack says when another push moved the branch between its
# check and its update (it holds no lock across both): a lost race, not a refusal.
_LOST_RACE = ("failed to update ref", "failed to lock", "cannot lock ref",
              "incorrect old value", "stale info")  # fmt: skip


def _set_tracking(factory: Factory, remote: Remote, commit: str) -> None:
    """The tracking ref follows a successful push (git does this only for a configured
    remote's fetch refspec; a URL has none)."""
    import pygit2

    repo = factory.store.repo
    ref = repo.references.get(remote.tracking)
    message = f"gitfactory: pushed to {remote.name}"
    try:
        if ref is None:
            repo.create_reference_direct(
                remote.tracking, pygit2.Oid(hex=commit), False, message=message
            )
        elif str(ref.target) != commit and repo.descendant_of(commit, str(ref.target)):
            ref.set_target(pygit2.Oid(hex=commit), message)
    except (pygit2.GitError, pygit2.AlreadyExistsError, OSError):
        pass  # a concurrent fetch moved it: the next fetch sets it right


def remote_reason(text: str) -> str:
    """Why a remote refused a push, as git relayed it."""
    for line in text.splitlines():
        if "[remote rejected]" in line:
            return line.split("[remote rejected]", 1)[1].strip(" ()") or "no reason given"
    lines = [
        ln.removeprefix("remote:").strip()
        for ln in text.splitlines()
        if ln.startswith("remote:") and ln.strip() != "remote:"
    ]
    return "; ".join(lines[-3:]) or "no reason given"


# -- the git CLI ------------------------------------------------------------------------


def git(factory: Factory, args: list[str]) -> subprocess.CompletedProcess[bytes]:
    """Run git for the network: from the top of the main worktree (a relative URL such
    as ../remote.git means what it means to `git fetch` run there), never prompting,
    and cut off with everything it started (ssh) after NETWORK_TIMEOUT."""
    import signal

    cwd = main_top(factory.paths)
    env = git_env({"GIT_DIR": str(factory.paths.git_dir), "LC_ALL": "C"})
    # A remote that asks for a password must fail, not wait on a terminal: ssh in batch
    # mode, unless the user chose their own ssh command.
    chosen = "GIT_SSH_COMMAND" in env or "GIT_SSH" in env
    if not chosen and "core.sshCommand" not in factory.store.repo.config:
        env["GIT_SSH_COMMAND"] = "ssh -o BatchMode=yes -o ConnectTimeout=20"
    proc = subprocess.Popen(["git", *args], cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)  # fmt: skip
    try:
        out, err = proc.communicate(timeout=NETWORK_TIMEOUT)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        return subprocess.CompletedProcess(
            ["git", *args], 124, b"", f"no answer in {NETWORK_TIMEOUT:.0f}s".encode()
        )
    return subprocess.CompletedProcess(["git", *args], proc.returncode, out, err)


def stderr_of(proc: subprocess.CompletedProcess[bytes]) -> str:
    return proc.stderr.decode("utf-8", "replace").strip()


def unreachable(remote: Remote, verb: str, stderr: str) -> RemoteUnreachableError:
    lines = [ln.strip().removeprefix("fatal: ").removeprefix("error: ")
             for ln in stderr.splitlines() if ln.strip()]  # fmt: skip
    last = " ".join(lines[:4])
    return RemoteUnreachableError(
        f"could not {verb} {remote.name}: {last or 'git gave no reason'}",
        hint="nothing was exchanged and nothing local was lost; the daemon retries on "
        "its own, or run `gitfactory sync` once the remote is back",
    )
