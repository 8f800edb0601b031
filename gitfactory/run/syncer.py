"""The daemon keeps the factory in sync with its remote (``sync.remote``), in a thread.

The thread pushes what this clone writes soon after it lands (writes that arrive
together go out in one push), fetches every ``sync.interval`` and whenever a
remote-tracking ref of the factory branch moves (someone ran `git fetch`), and merges
what came in; the daemon's loop then sees the factory branch move like after any
commit. It works on a handle of its own (its own repository object and index
connection), so a remote that is slow or down slows nothing local: the loop never
waits for it, claims do not ask a remote known to be down (:mod:`gitfactory.plan.arbiter`),
and the backlog goes out when the remote returns.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from gitfactory.errors import FactoryError
from gitfactory.run.helpers import Helper

if TYPE_CHECKING:
    from gitfactory.store.factory import Factory

_logger = logging.getLogger(__name__)

GROUP_WRITES_S = 0.05  # after a local write: wait this long for more to push together
# While records flow (in or out in the last minute) the remote is fetched at least
# every second: a factory at work hears from its other clones within about a second,
# an idle one asks only every sync.interval.
BUSY_INTERVAL_S = 1.0
BUSY_FOR_S = 60.0


@dataclass
class SyncState:
    """What the thread last did, for the daemon's status and console."""

    remote: str | None = None
    ok: bool = True
    last_ok_ms: int | None = None
    error: str | None = None
    syncs: int = 0
    received: int = 0  # records taken in since the daemon started
    sent: int = 0
    events: list[str] = field(default_factory=list)  # lines for the console, drained by it

    def to_json(self) -> dict[str, Any]:
        return {"remote": self.remote, "ok": self.ok, "last_ok_ms": self.last_ok_ms,
                "error": self.error, "syncs": self.syncs, "received": self.received,
                "sent": self.sent}  # fmt: skip


def sync(factory: Factory, name: str | None = None, **options: Any) -> Any:
    """`gitfactory sync` (:func:`gitfactory.plan.sharing.sync`), and then what only
    the upper floors can do: a generated document both sides changed (history.md) is
    made again from the merged records, and that goes out too."""
    from gitfactory.knowledge import documents
    from gitfactory.plan import sharing

    outcome = sharing.sync(factory, name, **options)
    report = outcome.report
    if report.regenerate and documents.regenerate(factory) is not None:
        if options.get("push", True):
            again = sharing.sync(factory, name, actor=options.get("actor", "factory/sync")).report
            report.pushed = report.pushed or again.pushed
            report.local_after, report.remote_after = again.local_after, again.remote_after
            for kind, n in again.sent.items():
                report.sent[kind] = report.sent.get(kind, 0) + n
        else:
            report.local_after = factory.tip()
    return outcome


class Syncer(Helper):
    """The sync thread of one daemon. :meth:`poke` after a local write or a move of a
    tracking ref; :meth:`stop` pushes what is left (once) and ends the thread."""

    NAME = "gitfactory-sync"

    def __init__(self, factory: Factory) -> None:
        super().__init__(factory)
        self.state = SyncState()
        self._seen: tuple[str | None, str | None] = (None, None)  # (local, tracking) after a sync
        self._last_error = ""
        self._busy_until = 0.0  # records moved recently: fetch every BUSY_INTERVAL_S until then
        self._branches: set[str] = set()  # task branches to push (their runs ended)

    def share(self, branch: str) -> None:
        """Push a task branch with the next sync (its run ended here)."""
        with self._lock:
            self._branches.add(branch)
        self._wake.set()

    def drain(self) -> list[str]:
        """Console lines of what the thread did since the last call."""
        with self._lock:
            lines, self.state.events = self.state.events, []
        return lines

    # -- the thread -------------------------------------------------------------------

    def _loop(self) -> None:
        next_fetch = 0.0
        while True:
            timeout = max(0.0, next_fetch - time.monotonic())
            poked = self._wake.wait(timeout)
            self._wake.clear()
            if self._stopping:
                self._final()
                return
            due = time.monotonic() >= next_fetch
            if poked and not due and not self._changed() and not self._branches:
                continue  # our own sync moved the refs: nothing new
            if poked:
                time.sleep(GROUP_WRITES_S)  # let writes that come together go out together
            self._once()
            next_fetch = time.monotonic() + self._interval()  # after it: busy now, or not

    def _interval(self) -> float:
        config = self._config()
        interval = config.sync.interval_ms / 1000 if config is not None else 5.0
        if time.monotonic() < self._busy_until:
            return min(interval, BUSY_INTERVAL_S)
        return interval

    def _config(self) -> Any:
        from gitfactory.config import factory_yaml

        try:
            return factory_yaml.load(self.factory)
        except FactoryError:
            return None

    def _changed(self) -> bool:
        """Whether the local branch or the tracking ref moved since the last sync."""
        from gitfactory.plan import arbiter
        from gitfactory.store import remote

        try:
            where = arbiter.configured(self.factory)
        except FactoryError:
            return False
        if where is None:
            return False
        return (self.factory.store.tip(), remote.tracking_tip(self.factory, where)) != self._seen

    def _once(self) -> None:
        """One sync, if a remote is configured; every failure is reported, none stops
        the thread."""
        from gitfactory.plan import arbiter
        from gitfactory.store import remote

        try:
            where = arbiter.configured(self.factory)
            if where is None:
                return
            self.state.remote = where.name
            outcome = sync(self.factory, where.name, actor="factory/daemon")
        except remote.RemoteUnreachableError as exc:
            self._failed(exc.message)
            return
        except FactoryError as exc:
            first = exc.message.split("\n", 1)[0].rstrip(":")  # a conflict shows whole diffs
            self._failed(first + (f" ({exc.hint})" if exc.hint else ""))
            return
        except Exception as exc:  # a bug: keep the traceback, keep the thread
            _logger.exception("sync failed")
            self._failed(f"{type(exc).__name__}: {exc}")
            return
        self._done(outcome, where)
        self._share(where)

    def _share(self, where: Any) -> None:
        from gitfactory.run import branches

        with self._lock:
            todo, self._branches = self._branches, set()
        for branch in sorted(todo):
            said = branches.share(self.factory, where, branch)
            if said is not None:
                with self._lock:
                    self.state.events.append(f"sync: {said}")

    def _done(self, outcome: Any, where: Any) -> None:
        from gitfactory.store import remote

        r = outcome.report
        got, sent = sum(r.received.values()), sum(r.sent.values())
        with self._lock:
            if not self.state.ok:
                self.state.events.append(f"sync: {where.name} is back")
            self.state.ok, self.state.error = True, None
            self.state.last_ok_ms = int(time.time() * 1000)
            self.state.syncs += 1
            self.state.received += got
            self.state.sent += sent
            if got or sent:
                self.state.events.append(f"sync: {got} record(s) in, {sent} out ({where.name})")
            if r.rewound:
                self.state.events.append(
                    f"sync: {where.name} had lost records; {r.restored} pushed back"
                )
            for c in outcome.confirmed:
                self.state.events.append(f"sync: claim of {c['task'][:8]} confirmed")
            for c in outcome.lost:
                self.state.events.append(f"sync: claim of {c['task'][:8]} lost: {c['why']}")
        self._last_error = ""
        self._seen = (self.factory.store.tip(), remote.tracking_tip(self.factory, where))
        if got or sent:
            self._busy_until = time.monotonic() + BUSY_FOR_S

    def _failed(self, message: str) -> None:
        with self._lock:
            self.state.ok, self.state.error = False, message
            if message != self._last_error:  # say each new trouble once
                self.state.events.append(f"sync: {message}")
        self._last_error = message

    def _final(self) -> None:
        """At stop: push what is left, once (a remote that is down keeps it for later)."""
        if self._changed() or self._branches:
            self._once()
