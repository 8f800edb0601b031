"""What the daemon's helper threads share (sync, peers, notifications): a factory
handle of their own (pygit2 objects and SQLite connections stay in one thread),
``poke`` to wake one, ``drain`` for the console lines it said, and ``stop``, which
lets it do its last work and waits for it."""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gitfactory.store.factory import Factory


class Helper(ABC):
    """A daemon's helper thread; a subclass writes :meth:`_loop`, which returns once
    ``_stopping`` is set and its last work is done."""

    NAME = "gitfactory-helper"

    def __init__(self, factory: Factory) -> None:
        from gitfactory.store.factory import Factory

        self.factory = Factory(factory.paths, factory.branch)
        self._wake = threading.Event()
        self._stopping = False
        self._lock = threading.Lock()
        self._lines: list[str] = []
        self._thread = threading.Thread(target=self._loop, name=self.NAME, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def poke(self) -> None:
        self._wake.set()

    def stop(self, timeout: float = 90.0) -> None:
        self._stopping = True
        self._wake.set()
        self._thread.join(timeout)

    def drain(self) -> list[str]:
        """Console lines of what the thread did since the last call."""
        with self._lock:
            lines, self._lines = self._lines, []
        return lines

    def _say(self, line: str) -> None:
        with self._lock:
            self._lines.append(line)

    @abstractmethod
    def _loop(self) -> None:
        """The thread's work, until ``_stopping`` is set and its last round is done."""
