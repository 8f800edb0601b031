"""The daemon's exchanges with peer factories (SPEC §20), in a thread.

A round (:func:`gitfactory.peers.exchange.exchange`) runs

- soon after the daemon is poked: the factory branch moved (we may have written a
  message, a request, a receipt for a peer) or a peer pushed to our inbox refs. This
  round asks no peer anything unless something must go out: it takes in what was
  pushed, writes word back, and pushes boxes that changed;
- every ``sync.interval`` (every second while parcels flowed in the last minute), a
  full round that also fetches what each peer left for us to fetch.

Like the sync thread it works on a handle of its own, so a peer that is slow or down
never holds up the loop; what waits for it goes at the first round it answers.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING, Any

from gitfactory.errors import FactoryError
from gitfactory.run.helpers import Helper

if TYPE_CHECKING:
    from gitfactory.peers.exchange import Round
    from gitfactory.store.factory import Factory

_logger = logging.getLogger(__name__)

BUSY_INTERVAL_S = 1.0
BUSY_FOR_S = 60.0


class Envoy(Helper):
    """The peers thread of one daemon: :meth:`poke` after a move of the factory branch
    or an inbox ref; :meth:`stop` runs a last round (what is left goes out) and ends."""

    NAME = "gitfactory-peers"

    def __init__(self, factory: Factory) -> None:
        super().__init__(factory)
        self._first = threading.Event()  # the first full round is over
        self._at_peer: dict[str, str] = {}  # box commits each peer is known to have
        self._down: dict[str, str] = {}  # peer -> the error it last gave
        self._busy_until = 0.0
        self.rounds = 0

    def wait_first(self, timeout: float) -> None:
        """Wait (a bounded time) for the first full round: a burst takes in what
        peers sent before it looks for work."""
        self._first.wait(timeout)

    def _loop(self) -> None:
        next_full = 0.0
        while True:
            poked = self._wake.wait(max(0.0, next_full - time.monotonic()))
            self._wake.clear()
            if self._stopping:
                self._once(fetch=False)
                return
            full = time.monotonic() >= next_full
            if not (poked or full):
                continue
            self._once(fetch=full)
            if full:
                self._first.set()
                next_full = time.monotonic() + self._interval()

    def _interval(self) -> float:
        from gitfactory.config import factory_yaml

        try:
            interval = factory_yaml.load(self.factory).sync.interval_ms / 1000
        except FactoryError:
            interval = 5.0
        return min(interval, BUSY_INTERVAL_S) if time.monotonic() < self._busy_until else interval

    def _once(self, fetch: bool) -> None:
        from gitfactory.config import factory_yaml
        from gitfactory.peers import exchange

        try:
            if not factory_yaml.load(self.factory).peers:
                return
            result = exchange.exchange(self.factory, fetch=fetch, at_peer=self._at_peer)
        except FactoryError as exc:
            self._say(f"peers: {exc.message}")
            return
        except Exception as exc:  # a bug: keep the traceback, keep the thread
            _logger.exception("the exchange with peers failed")
            self._say(f"peers: {type(exc).__name__}: {exc}")
            return
        self.rounds += 1
        self._report(result)

    def _report(self, result: Round) -> None:
        if result.taken or result.sent:
            self._busy_until = time.monotonic() + BUSY_FOR_S
        from gitfactory.peers.exchange import line

        for t in result.taken:
            self._say("peers: " + line(t))
        for p in result.peers:
            error = "; ".join(p.errors)
            if error and self._down.get(p.name) != error:
                self._say(f"peers: {p.name}: {error}")  # each new trouble once
            elif not error and p.name in self._down:
                self._say(f"peers: {p.name} answers again")
            if error:
                self._down[p.name] = error
            else:
                self._down.pop(p.name, None)
            if p.pushed:
                self._busy_until = time.monotonic() + BUSY_FOR_S
                self._say(f"peers: delivered our parcels to {p.name}")

    def state(self) -> dict[str, Any]:
        return {"rounds": self.rounds, "down": dict(self._down)}
