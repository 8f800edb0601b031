"""The factory branch: read its tree, write records as plumbing commits with CAS.

Writers on this machine are serialised by a file lock in the common git dir, so they
never race each other (DESIGN I3 measured 0 retries and the best throughput that way);
the compare-and-swap on the branch still protects against writers that bypass the
lock (plain git, fetch, another gitfactory on a shared filesystem): a lost race
re-reads the tip, rebuilds the change from the new snapshot and tries again.
Nothing here ever touches a working tree, an index or HEAD.
"""

from __future__ import annotations

import logging
import os
import random
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pygit2
from filelock import FileLock, Timeout

from gitfactory.errors import BusyError
from gitfactory.store import trees
from gitfactory.store.git import RepoPaths, git_env, open_repo
from gitfactory.store.records import FACTORY_DIR

if TYPE_CHECKING:
    from pygit2 import Oid

log = logging.getLogger(__name__)

DEFAULT_BRANCH = "factory"
LOCK_TIMEOUT = 60.0
CAS_DEADLINE = 60.0
# A ref .lock older than this was left by a crashed writer: libgit2 never waits on
# one, so without cleaning it every later write would fail.
STALE_REF_LOCK_SECONDS = 10.0
# Same heuristic as `git gc --auto`: ~6,700 loose objects, estimated from objects/17.
GC_LOOSE_ESTIMATE = 6700
GC_SPAWN_INTERVAL = 60.0


@dataclass
class Change:
    """Files to add to the factory tree in one commit, and files to delete from it.

    Paths are immutable records unless listed in ``replace`` (human-edited files such
    as factory.yaml): writing a record that exists with the same bytes is a no-op,
    with other bytes an error. Only such in-place files may be in ``remove``: records
    are never deleted (DESIGN I2). Removing a path that is not there is a no-op; a
    folder left empty goes too.
    """

    files: dict[str, bytes]
    subject: str
    trailers: list[tuple[str, str]] = field(default_factory=list)
    replace: frozenset[str] = frozenset()
    remove: frozenset[str] = frozenset()
    # More parents after the snapshot's tip: a merge of another clone's history, which
    # is committed even when it adds no file (so that history becomes an ancestor).
    merge: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.remove <= self.replace:
            raise ValueError(
                f"only in-place files can be removed: {sorted(self.remove - self.replace)}"
            )
        if self.remove & self.files.keys():
            raise ValueError(
                f"written and removed at once: {sorted(self.remove & self.files.keys())}"
            )


@dataclass(frozen=True)
class Commit:
    oid: str
    parent: str | None
    paths: tuple[str, ...]  # written or removed; empty when nothing changed
    attempts: int


class Snapshot:
    """The factory tree at one commit (or the empty tree before the branch exists)."""

    def __init__(self, repo: pygit2.Repository, tip: Oid | None) -> None:
        self.repo = repo
        self.tip = tip
        self.tree: pygit2.Tree | None = repo[tip].peel(pygit2.Tree) if tip else None

    def entry(self, path: str) -> pygit2.Object | None:
        if self.tree is None:
            return None
        try:
            return self.tree[path]
        except KeyError:
            return None

    def read(self, path: str) -> bytes | None:
        obj = self.entry(path)
        if obj is None or obj.type != pygit2.GIT_OBJECT_BLOB:
            return None
        # Straight from the object database: half the time of Blob.data for a large
        # blob (no second copy), the same for a small one.
        return self.repo.odb.read(obj.id)[1]


class Store:
    """Reads and writes the factory branch of one repository."""

    def __init__(self, paths: RepoPaths, branch: str = DEFAULT_BRANCH) -> None:
        self.paths = paths
        self.branch = branch
        self.refname = f"refs/heads/{branch}"
        self.repo = open_repo(paths)
        paths.factory_dir.mkdir(exist_ok=True)
        self._lock = FileLock(str(paths.factory_dir / "write.lock"), timeout=LOCK_TIMEOUT)
        self.user_name, self.user_email = self._default_signature()

    # -- reading ---------------------------------------------------------------

    def tip(self) -> str | None:
        ref = self.repo.references.get(self.refname)
        return str(ref.target) if ref is not None else None

    def snapshot(self, commit: str | None = None) -> Snapshot:
        oid = commit if commit is not None else self.tip()
        return Snapshot(self.repo, pygit2.Oid(hex=oid) if oid else None)

    def blob(self, oid: str | Oid) -> bytes:
        return self.repo[oid].peel(pygit2.Blob).data

    def factory_tree(self, commit: str | None) -> str | None:
        """The oid of the ``.factory`` tree at ``commit``, or None."""
        if commit is None:
            return None
        try:
            entry = self.repo[commit].peel(pygit2.Tree)[FACTORY_DIR]
        except KeyError:
            return None
        return str(entry.id) if entry.type == pygit2.GIT_OBJECT_TREE else None

    def tree_at(self, refname: str, path: str) -> str | None:
        """The oid of the tree at ``path`` in the commit ``refname`` points to, or None."""
        ref = self.repo.references.get(refname)
        if ref is None:
            return None
        try:
            entry = ref.peel(pygit2.Commit).tree[path]
        except (KeyError, pygit2.InvalidSpecError):
            return None
        return str(entry.id) if entry.type == pygit2.GIT_OBJECT_TREE else None

    def branch_tip(self, branch: str) -> str | None:
        """The commit a local branch points to, or None if there is no such branch."""
        ref = self.repo.references.get(f"refs/heads/{branch}")
        return str(ref.peel().id) if ref is not None else None

    def local_branches(self) -> list[str]:
        return sorted(self.repo.branches.local)

    def has_object(self, oid: str) -> bool:
        return oid in self.repo

    def diff_trees(
        self, old: str | None, new: str | None, prefix: str = f"{FACTORY_DIR}/"
    ) -> Iterator[tuple[str, str | None, str | None, int]]:
        """Yield (path, old blob, new blob, new filemode) for every file that differs.

        Descends only into subtrees whose oids differ, so one new record in a
        tree of 100,000 costs a handful of tree reads, not a full diff.
        """
        old_entries = self._entries(old)
        new_entries = self._entries(new)
        for name in sorted(old_entries.keys() | new_entries.keys()):
            o, n = old_entries.get(name), new_entries.get(name)
            if o == n:  # same object and same mode (a mode change alone is a change)
                continue
            path = prefix + name
            o_tree = o is not None and o[1] == pygit2.GIT_FILEMODE_TREE
            n_tree = n is not None and n[1] == pygit2.GIT_FILEMODE_TREE
            if o_tree or n_tree:
                yield from self.diff_trees(
                    o[0] if o_tree and o else None, n[0] if n_tree and n else None, path + "/"
                )
            o_blob = o[0] if o is not None and not o_tree else None
            n_blob = n[0] if n is not None and not n_tree else None
            if o_blob or n_blob:
                yield path, o_blob, n_blob, n[1] if n is not None and not n_tree else 0

    def _entries(self, tree: str | None) -> dict[str, tuple[str, int]]:
        if tree is None:
            return {}
        return {
            _name(e.name or ""): (str(e.id), e.filemode) for e in self.repo[tree].peel(pygit2.Tree)
        }

    # -- writing ---------------------------------------------------------------

    def write(self, change: Change) -> Commit:
        """Commit ``change`` on top of whatever the tip is (records need no re-check)."""
        commit = self.transact(lambda _snap: change)
        assert commit is not None
        return commit

    def transact(self, build: Callable[[Snapshot], Change | None]) -> Commit | None:
        """Commit what ``build`` returns for the current tip, retrying on a lost race.

        ``build`` is called again with a fresh snapshot after every lost race, so a
        decision it makes (a claim, say) is valid at the commit it lands on.
        Returns None if ``build`` returned None (nothing to do).
        """
        with self._locked():
            return self._transact_locked(build)

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """This machine's write lock (a writer waiting longer than LOCK_TIMEOUT is busy)."""
        try:
            self._lock.acquire()
        except Timeout:
            raise BusyError(
                f"another gitfactory writer held {self._lock.lock_file} for {LOCK_TIMEOUT:.0f}s",
                hint="retry; if no gitfactory process is running, the lock is free "
                "and this was a slow filesystem",
            ) from None
        try:
            yield
        finally:
            self._lock.release()

    def _transact_locked(self, build: Callable[[Snapshot], Change | None]) -> Commit | None:
        deadline = time.monotonic() + CAS_DEADLINE
        attempt = 0
        while True:
            attempt += 1
            ref = self.repo.references.get(self.refname)
            snap = Snapshot(self.repo, pygit2.Oid(hex=str(ref.target)) if ref is not None else None)
            change = build(snap)
            if change is None:
                return None
            parent = str(snap.tip) if snap.tip else None
            written: list[str] = []
            tree = trees.tree_with(self.repo, self.branch, snap.tree, change, written)
            if not written and not change.merge:
                return Commit(parent or "", parent, (), attempt)
            oid = self._commit(snap, change, tree)
            if self._move_branch(ref, oid, change.subject):
                self._maybe_gc()
                return Commit(str(oid), parent, tuple(written), attempt)
            if time.monotonic() > deadline:
                raise BusyError(
                    f"lost the race for {self.refname} {attempt} times in {CAS_DEADLINE:.0f}s",
                    hint="something outside gitfactory is rewriting the branch in a loop",
                )
            time.sleep(random.uniform(0.001, min(0.05, 0.001 * 2**attempt)))

    def fast_forward(self, expected: str | None, new: str, reason: str) -> bool:
        """Move the branch from ``expected`` to ``new`` (which holds it) under the write
        lock, by compare-and-swap; False if the branch was not at ``expected``."""
        with self._locked():
            ref = self.repo.references.get(self.refname)
            current = str(ref.target) if ref is not None else None
            if current != expected:
                return False
            return self._move_branch(ref, pygit2.Oid(hex=new), reason)

    def commit_on(self, snap: Snapshot, change: Change) -> Commit:
        """Commit ``change`` on ``snap`` without moving the branch (the commit is pushed
        somewhere first, as a claim is to a remote, then merged here)."""
        written: list[str] = []
        tree = trees.tree_with(self.repo, self.branch, snap.tree, change, written)
        oid = self._commit(snap, change, tree)
        parent = str(snap.tip) if snap.tip else None
        return Commit(str(oid), parent, tuple(written), 1)

    def _commit(self, snap: Snapshot, change: Change, tree: Oid) -> Oid:
        message = _one_line(change.subject) + "\n"
        if change.trailers:
            message += "\n" + "".join(f"{k}: {v}\n" for k, v in change.trailers)
        parents = [snap.tip] if snap.tip else []
        parents += [pygit2.Oid(hex=p) for p in change.merge]
        sig = pygit2.Signature(self.user_name, self.user_email)
        return self.repo.create_commit(None, sig, sig, message, tree, parents)

    def _move_branch(self, ref: pygit2.Reference | None, oid: Oid, subject: str) -> bool:
        """Compare-and-swap the branch to ``oid``; False if another writer moved it."""
        reflog = f"gitfactory: {_one_line(subject)}"[:200]
        try:
            if ref is None:
                self.repo.create_reference_direct(self.refname, oid, False, message=reflog)
            else:
                ref.set_target(oid, reflog)
            return True
        except pygit2.AlreadyExistsError:
            return False
        except pygit2.GitError as exc:
            if "does not match" in str(exc):
                return False
            raise
        except OSError as exc:
            if ".lock" not in str(exc):
                raise
            self._clean_stale_ref_lock()
            return False

    def _clean_stale_ref_lock(self) -> None:
        lock = self.paths.common_dir / f"{self.refname}.lock"
        try:
            age = time.time() - lock.stat().st_mtime
        except FileNotFoundError:
            return
        if age > STALE_REF_LOCK_SECONDS:
            log.warning("removing %s left by a crashed writer %.0fs ago", lock, age)
            lock.unlink(missing_ok=True)

    def _default_signature(self) -> tuple[str, str]:
        config = self.repo.config
        found = {key: str(config[key]).strip() for key in ("user.name", "user.email")
                 if key in config}  # fmt: skip
        # An empty user.name (git itself refuses to commit with one) is no signature.
        return found.get("user.name") or "gitfactory", found.get("user.email") or (
            "gitfactory@localhost"
        )

    def _maybe_gc(self) -> None:
        """Start `git gc --auto` in the background once loose objects pile up.

        Every one-record commit leaves ~7 loose objects; left alone, a busy factory
        fills the object store with hundreds of thousands of small files.
        """
        try:
            loose = len(os.listdir(self.paths.common_dir / "objects" / "17"))
        except FileNotFoundError:
            return
        if loose * 256 < GC_LOOSE_ESTIMATE:
            return
        marker = self.paths.factory_dir / "gc.started"
        try:
            if time.time() - marker.stat().st_mtime < GC_SPAWN_INTERVAL:
                return
        except FileNotFoundError:
            pass
        marker.touch()
        # Low priority and one packing thread: maintenance must not starve the writers.
        subprocess.Popen(
            ["nice", "-n", "19", "git", "-c", "pack.threads=1", "gc", "--auto", "--quiet"],
            cwd=self.paths.common_dir,
            env=git_env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )


def _name(name: str) -> str:
    """A tree entry's name as text that can be written anywhere: a name that is not
    UTF-8 (pygit2 gives it with surrogate escapes) is spelled with backslashes, and so
    is never a valid record name (it is listed as invalid, not a crash of every reader)."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return name


def _one_line(text: str) -> str:
    """A commit subject or reflog message: one line, no control characters (a NUL
    cannot be written into either)."""
    return "".join(" " if ord(c) < 32 or ord(c) == 127 else c for c in text).strip()
