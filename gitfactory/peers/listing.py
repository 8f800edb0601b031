"""What `gitfactory peers` shows: each peer, what it may send, when it was last
reached, what waits for it, and what it sent that is waiting here."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from gitfactory.peers.work import PENDING, RECEIVED
from gitfactory.store import contacts, courier, parcels
from gitfactory.store.records import INBOX, OUTBOX

if TYPE_CHECKING:
    from gitfactory.config.peers import Peer
    from gitfactory.store.factory import Factory


@dataclass(frozen=True)
class PeerView:
    peer: Peer
    sent: int  # parcels in our outbox for it
    unanswered: int  # our messages and requests it has sent no receipt for
    received: int  # parcels of its that we took in
    pending: int  # its requests waiting for a person here
    contact: dict[str, Any]  # how the last exchange went: ok, at, error

    def to_json(self) -> dict[str, Any]:
        p = self.peer
        return {
            "name": p.name, "url": p.url, "deliver": p.deliver, "sign": p.sign,
            "signers": len(p.signers),
            "accept": {"mail": list(p.accept.mail), "tasks": p.accept.tasks,
                       "labels": None if p.accept.labels is None else list(p.accept.labels),
                       "per_day": p.accept.per_day},
            "sent": self.sent, "unanswered": self.unanswered, "received": self.received,
            "pending_requests": self.pending, "contact": self.contact,
        }  # fmt: skip


def views(factory: Factory) -> tuple[list[PeerView], list[str]]:
    """Every peer of factory.yaml, and the senders that pushed to us but are not peers."""
    from gitfactory.config import factory_yaml

    factory.require_tip()
    config = factory_yaml.load(factory)
    factory.index.refresh()
    seen = contacts.contacts(factory)
    out = []
    for peer in config.peers.values():
        ours = parcels.listed(factory, OUTBOX, peer.name)
        theirs = parcels.listed(factory, INBOX, peer.name)
        answered = {str(p.get("parcel")) for p in theirs if p.type == parcels.RECEIPT}
        asked = [p for p in ours if p.type in (parcels.MAIL, parcels.REQUEST)]
        out.append(PeerView(
            peer=peer, sent=len(ours), unanswered=sum(p.id not in answered for p in asked),
            received=len(theirs), pending=len(pending_requests(factory, peer.name)),
            contact=_contact(seen, peer),
        ))  # fmt: skip
    strangers = [s for s in courier.senders(factory) if s not in config.peers]
    return out, strangers


def _contact(seen: dict[str, dict[str, Any]], peer: Peer) -> dict[str, Any]:
    """How the last exchange with the peer went, if it was with its url of now."""
    found = seen.get(courier.endpoint(peer.name, peer.url).name, {})
    return found if found.get("url", peer.url) == peer.url else {}


def pending_requests(factory: Factory, peer: str | None = None) -> list[parcels.Parcel]:
    """Requests kept for a person (accept.tasks: ask) that nobody accepted or rejected."""
    rows = factory.index.db.execute(
        "SELECT json_extract(data, '$.parcel') FROM events WHERE kind = ? "
        "AND json_extract(data, '$.outcome') = ? AND json_extract(data, '$.type') = ?",
        (RECEIVED, PENDING, parcels.REQUEST),
    ).fetchall()
    decided = {
        str(r[0])
        for r in factory.index.db.execute(
            "SELECT json_extract(data, '$.request') FROM events WHERE kind IN "
            "('peer.request.accepted', 'peer.request.rejected')"
        ).fetchall()
    }
    out = []
    for (parcel_id,) in rows:
        if parcel_id in decided:
            continue
        found = parcels.find(factory, INBOX, str(parcel_id))
        if found is not None and (peer is None or found.sender == peer):
            out.append(found)
    return out


def abroad(factory: Factory, message_id: str) -> list[dict[str, Any]]:
    """What became of a message of ours in each peer factory it went to: per peer,
    the parcel and the receipts it sent back (delivered or rejected, with the reason;
    read and acked, with the reader), oldest first. The caller refreshed the index."""
    out = []
    sent = parcels.listed(factory, OUTBOX, None, parcels.MAIL, {"message.id": message_id})
    for parcel in sent:
        back = parcels.listed(factory, INBOX, parcel.to, parcels.RECEIPT, {"parcel": parcel.id})
        out.append({"peer": parcel.to, "parcel": parcel.id,
                    "receipts": [{k: r.get(k) for k in ("outcome", "reason", "reader")
                                  if r.get(k) is not None} for r in back]})  # fmt: skip
    return out


def summary(factory: Factory) -> dict[str, Any] | None:
    """What `status` says of the peers: who they are, what waits for a person here,
    which did not answer, and who pushed to us without being a peer (None: no peers)."""
    from gitfactory.config import factory_yaml

    config = factory_yaml.load(factory)
    strangers = [s for s in courier.senders(factory) if s not in config.peers]
    if not config.peers and not strangers:
        return None
    seen = contacts.contacts(factory)
    down = {p.name: _contact(seen, p) for p in config.peers.values()}
    return {
        "peers": sorted(config.peers),
        "pending_requests": len(pending_requests(factory)),
        "unreachable": {n: c.get("error") for n, c in down.items() if c and not c.get("ok")},
        "strangers": strangers,
    }
