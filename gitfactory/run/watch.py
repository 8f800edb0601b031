"""Commit detection across every worktree of a repository.

Three layers, fastest first, each covering what the one before can miss:

1. the reference-transaction hook (:mod:`gitfactory.run.hooks`) touches
   ``.git/gitfactory/wake`` on every ref update the git CLI makes in any worktree;
2. watchdog (inotify on Linux) on the common git dir sees the ref files, ``packed-refs``
   and each worktree's ``HEAD`` and ``logs/HEAD`` change, including updates made by
   libgit2, which runs no hooks;
3. :func:`snapshot` lists every branch and every worktree's detached HEAD; the daemon
   compares it with the previous one on every wake-up and at start, so an event that
   was dropped, or a commit made while nothing watched, is still seen.

Events only wake the daemon; what changed is always decided by the snapshot.
"""

from __future__ import annotations

import contextlib
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from gitfactory.run.hooks import WAKE_FILE

if TYPE_CHECKING:
    from watchdog.events import FileSystemEvent, FileSystemEventHandler
    from watchdog.observers.api import BaseObserver, ObservedWatch

    from gitfactory.store.git import RepoPaths


def snapshot(paths: RepoPaths) -> dict[str, str]:
    """Every local branch and remote-tracking ref, the inbox refs that peer factories
    push to, and the HEAD of every worktree whose HEAD is detached, with the commit
    each points at."""
    from pygit2.enums import ReferenceType

    from gitfactory.store.git import open_repo

    repo = open_repo(paths)
    refs: dict[str, str] = {}
    for name in repo.references:
        if name.startswith(("refs/heads/", "refs/remotes/", "refs/factory/inbox/")):
            ref = repo.references.get(name)
            if ref is not None and ref.type == ReferenceType.DIRECT:  # symbolic: follows one
                refs[name] = str(ref.target)
    worktrees = paths.common_dir / "worktrees"
    heads = [("HEAD", paths.common_dir / "HEAD")]
    if worktrees.is_dir():
        heads += [(f"worktrees/{w.name}/HEAD", w / "HEAD") for w in worktrees.iterdir()]
    for name, head in heads:
        try:
            text = head.read_text(encoding="ascii").strip()
        except (OSError, UnicodeDecodeError):
            continue
        if text and not text.startswith("ref:"):
            refs[name] = text
    return refs


def changed(before: dict[str, str], after: dict[str, str]) -> dict[str, str | None]:
    """Refs that moved, appeared (their new commit) or went away (None)."""
    moved: dict[str, str | None] = {
        name: oid for name, oid in after.items() if before.get(name) != oid
    }
    moved.update({name: None for name in before if name not in after})
    return moved


# Event types that mean a file changed. inotify also reports every open and every
# close after reading; the daemon reads the ref files on each tick, so reacting to
# those would wake it forever.
_WRITES = frozenset({"created", "modified", "moved", "deleted", "closed"})


class Watcher:
    """Wakes :meth:`wait` when anything that signals a ref update changes on disk."""

    def __init__(self, paths: RepoPaths) -> None:
        self.paths = paths
        self.common = paths.common_dir.resolve()
        self._event = threading.Event()
        self._observer: BaseObserver | None = None
        self._handler: FileSystemEventHandler | None = None
        self._watched: dict[str, ObservedWatch] = {}

    def start(self) -> None:
        import logging
        import warnings

        from watchdog.events import FileSystemEventHandler
        from watchdog.observers import Observer

        # watchdog warns when a directory it watched comes back (worktrees come and
        # go) and when it stops, and logs an error when a worktree it watched is removed
        # under it; none of these means an event was lost here.
        warnings.filterwarnings("ignore", category=RuntimeWarning, module="watchdog")
        logging.getLogger("watchdog").setLevel(logging.CRITICAL)
        watcher = self

        class _Handler(FileSystemEventHandler):
            def on_any_event(self, event: FileSystemEvent) -> None:
                if event.event_type not in _WRITES:
                    return  # opened, closed without writing: reads, ours included
                if event.is_directory and Path(str(event.src_path)).name == "worktrees":
                    if event.event_type == "deleted":  # the last worktree was removed
                        watcher._unwatch("worktrees")
                    else:
                        watcher._watch("worktrees")  # the first `git worktree add`
                for raw in (event.src_path, getattr(event, "dest_path", "")):
                    if raw and watcher.signals(Path(str(raw))):
                        watcher.wake()
                        return

        self.paths.factory_dir.mkdir(exist_ok=True)
        self._handler = _Handler()
        observer = Observer()
        observer.daemon = True
        self._observer = observer
        # The common dir itself (HEAD, packed-refs, new directories), and below it only
        # where refs and worktree HEADs live: objects/ changes on every write and would
        # only be noise.
        observer.schedule(self._handler, str(self.common), recursive=False)
        observer.schedule(self._handler, str(self.paths.factory_dir), recursive=False)
        for name in ("refs", "worktrees"):
            self._watch(name)
        observer.start()

    def _watch(self, name: str) -> None:
        path = self.common / name
        observer, handler = self._observer, self._handler
        if observer is None or handler is None or name in self._watched or not path.is_dir():
            return
        self._watched[name] = observer.schedule(handler, str(path), recursive=True)

    def _unwatch(self, name: str) -> None:
        """Forget a watched directory that is gone, so that it is watched again once
        it is made again (git deletes worktrees/ with the last linked worktree)."""
        watch = self._watched.pop(name, None)
        if watch is not None and self._observer is not None:
            with contextlib.suppress(KeyError, OSError):  # it went with the directory
                self._observer.unschedule(watch)

    def signals(self, path: Path) -> bool:
        """Whether a change at ``path`` may mean a ref moved."""
        try:
            parts = path.resolve().relative_to(self.common).parts
        except ValueError:
            return False
        if not parts or parts[-1].endswith(".lock"):
            return False
        if parts[0] == "refs" or parts == ("packed-refs",) or parts[-1] == "HEAD":
            return True  # HEAD and logs/HEAD, here and in worktrees/<name>/
        return parts == ("gitfactory", WAKE_FILE)

    def wake(self) -> None:
        self._event.set()

    def wait(self, timeout: float | None) -> bool:
        """Block until woken or ``timeout`` passes; True if woken."""
        woken = self._event.wait(timeout)
        self._event.clear()
        return woken

    def stop(self) -> None:
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(timeout=5)
            self._observer = None
