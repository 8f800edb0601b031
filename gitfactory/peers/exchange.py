"""One round with the peers: fetch, take in, send word, publish, push (SPEC §20).

1. *collect*: fetch each peer's ``refs/factory/outbox/<us>`` (what it leaves for us
   to fetch, and what it pushed to us: a push to our inbox ref counts only once the
   peer's own repository serves it, unless the peer signs) into
   ``refs/factory/fetched/<peer>``; a round without fetching still fetches from a
   peer whose push to our inbox ref rang since;
2. *take in* what those refs and ``refs/factory/inbox/*`` (what peers pushed) hold
   (:mod:`gitfactory.peers.inbound`);
3. *send word*: receipts and task updates the peers have not had (:mod:`news`);
4. *publish* our outbox for each peer as ``refs/factory/outbox/<peer>``, and
5. *push* it to the peer's ``refs/factory/inbox/<us>`` where ``deliver: push``.

A peer that does not answer is noted and skipped: the round goes on with the others,
and everything waiting for it goes out at the first round it answers (its outbox ref
holds every parcel ever written for it; the receiver takes each in once).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from gitfactory.config.peers import PUSH
from gitfactory.errors import FactoryError
from gitfactory.peers import inbound, news
from gitfactory.store import courier

if TYPE_CHECKING:
    from gitfactory.config.factory_yaml import FactoryConfig
    from gitfactory.config.peers import Peer
    from gitfactory.store.factory import Factory


@dataclass
class PeerRound:
    name: str
    url: str
    deliver: str
    fetched: str | None = None  # the peer's outbox for us, as fetched
    published: str | None = None  # our outbox ref for the peer
    pushed: bool = False  # a push moved the peer's inbox ref for us
    errors: list[str] = field(default_factory=list)
    unreachable: bool = False

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class Round:
    peers: list[PeerRound] = field(default_factory=list)
    taken: list[dict[str, Any]] = field(default_factory=list)
    strangers: list[str] = field(default_factory=list)
    sent: int = 0  # receipts and updates written this round

    @property
    def unreachable(self) -> list[str]:
        return [p.name for p in self.peers if p.unreachable]

    @property
    def failed(self) -> list[str]:
        """Peers that answered, but a step with them failed (refused, unsigned)."""
        return [p.name for p in self.peers if p.errors and not p.unreachable]

    def to_json(self) -> dict[str, Any]:
        return {"peers": [p.to_json() for p in self.peers], "taken": self.taken,
                "strangers": self.strangers, "sent": self.sent}  # fmt: skip


def line(t: dict[str, Any]) -> str:
    """One judged file, as the console and `peers sync` print it."""
    if t.get("parcel"):
        what = f"{t.get('type') or 'parcel'} {t['parcel'][:10]}"
    else:
        what = f"file {t.get('path')}"
    reason = f": {t['reason']}" if t.get("reason") else ""
    return f"from {t['peer']}: {what} {t['outcome']}{reason}"


def exchange(
    factory: Factory,
    only: str | None = None,
    *,
    fetch: bool = True,
    at_peer: dict[str, str] | None = None,
) -> Round:
    """One round with every peer (or the one called ``only``).

    ``fetch=False`` skips step 1 (a round for what was pushed to us or written here,
    with no network call unless something must go out); ``at_peer`` maps a peer to
    the box commit it is known to have, so that it is not pushed again (the daemon's
    memory; updated here)."""
    from gitfactory.config import factory_yaml

    factory.require_tip()
    config = factory_yaml.load(factory)
    peers = select(config, only)
    with _one_round_at_a_time(factory):
        out = Round(peers=[PeerRound(p.name, p.url, p.deliver) for p in peers])
        for peer, state in zip(peers, out.peers, strict=True):
            bell = courier.tip(factory, courier.INBOX_REFS + peer.name)
            if fetch or (bell is not None and bell != inbound.noted(factory, _RANG + peer.name)):
                got = _guarded(state, _collector(factory, peer, config.name), "fetched")
                if got and bell is not None:
                    inbound.note(factory, _RANG + peer.name, bell)
        intake = inbound.receive(factory, config)
        out.taken, out.strangers = intake.taken, intake.strangers
        out.sent = len(news.report(factory, config))
        for peer, state in zip(peers, out.peers, strict=True):
            _send(factory, config, peer, state, at_peer)
    return out


def _collector(factory: Factory, peer: Peer, own: str) -> Any:
    def collect() -> str | None:
        fetched = courier.collect(factory, peer.name, peer.url, own)
        inbound.keep_fetched(factory, peer.name, fetched)
        return fetched

    return collect


_RANG = "peers-rang:"  # index meta: the inbox ref commit a fetch from the peer answered


def select(config: FactoryConfig, only: str | None) -> list[Peer]:
    from gitfactory.errors import UsageError

    if only is None:
        return list(config.peers.values())
    if only not in config.peers:
        raise UsageError(
            f"no peer {only!r} in factory.yaml",
            hint=f"peers: {', '.join(sorted(config.peers)) or 'none'} (`gitfactory peers list`)",
        )
    return [config.peers[only]]


def _send(factory: Factory, config: FactoryConfig, peer: Peer, state: PeerRound,
          at_peer: dict[str, str] | None) -> None:  # fmt: skip
    if state.unreachable:
        return  # it did not answer the fetch: the push would wait as long again
    if not _guarded(state, lambda: courier.publish(factory, peer.name, peer.sign), "published"):
        return
    commit = state.published
    if peer.deliver != PUSH or commit is None:
        return
    if at_peer is not None and at_peer.get(peer.name) == commit:
        return  # it has this box already

    def push() -> bool:
        return courier.deliver(factory, peer.name, peer.url, config.name, commit)

    if _guarded(state, push, "pushed") and at_peer is not None:
        at_peer[peer.name] = commit


def _guarded(state: PeerRound, step: Any, into: str) -> bool:
    """Run one step for one peer; its failure is noted on the peer, not raised."""
    from gitfactory.errors import RemoteUnreachableError

    try:
        setattr(state, into, step())
    except RemoteUnreachableError as exc:
        state.unreachable = True
        state.errors.append(exc.message)
        return False
    except FactoryError as exc:
        state.errors.append(f"{exc.message} (hint: {exc.hint})" if exc.hint else exc.message)
        return False
    return True


def _one_round_at_a_time(factory: Factory) -> Any:
    """Rounds of this clone, one at a time: two would fetch into the same refs."""
    from filelock import FileLock

    factory.paths.factory_dir.mkdir(exist_ok=True)
    return FileLock(str(factory.paths.factory_dir / "peers.lock"))
