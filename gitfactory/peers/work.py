"""One intake pass's work: the files, events and receipts it will commit."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from gitfactory.plan.tasks import PEERS_ACTOR
from gitfactory.store import clock, parcels, records
from gitfactory.store.log import Draft, Event, stamp

if TYPE_CHECKING:
    from gitfactory.config.factory_yaml import FactoryConfig
    from gitfactory.config.peers import Peer
    from gitfactory.errors import InvalidRecordError
    from gitfactory.store.branch import Change, Snapshot
    from gitfactory.store.factory import Factory

ACTOR = PEERS_ACTOR  # who writes what the peers pass decides
RECEIVED = "peer.received"
DELIVERED, PENDING, REJECTED, QUARANTINED, NOTED = (
    "delivered", "pending", "rejected", "quarantined", "noted"
)  # fmt: skip
_DAY_MS = 86_400_000
_COUNTED = (parcels.MAIL, parcels.REQUEST)  # what accept.per_day limits


@dataclass(frozen=True)
class Arrival:
    """One file of a peer's box that our factory branch has not seen."""

    peer: Peer
    refname: str
    commit: str
    path: str  # inside the box: <id shards>/<id>.json
    blob: str | None
    mode: int
    signer: str | None  # the principal whose key signed the commit, if one did
    problem: str | None = None  # the ref itself is wrong (not a commit)


@dataclass
class Outcome:
    """What a parcel became."""

    outcome: str  # delivered, pending, rejected, or noted (a receipt, news)
    reason: str = ""
    record: str | None = None  # the id of the message or task it became
    files: dict[str, bytes] = field(default_factory=dict)  # records it became
    events: list[Event] = field(default_factory=list)
    task: str | None = None  # the local task it concerns
    receipt: bool = True  # answer with a receipt


class Work:
    def __init__(self, factory: Factory, config: FactoryConfig, snap: Snapshot) -> None:
        self.factory, self.config, self.snap = factory, config, snap
        self.files: dict[str, bytes] = {}
        self.trailers: list[tuple[str, str]] = []
        self.taken: list[dict[str, Any]] = []
        self._counted: dict[str, int] = {}

    # -- reading ---------------------------------------------------------------

    def kept(self, path: str) -> bool:
        return path in self.files or self.snap.read(path) is not None

    def refused_before(self, arrival: Arrival) -> bool:
        """The same file was refused before: quarantined, or rejected unsigned while
        it is still unsigned (signed later, it is judged again)."""
        row = self.factory.index.db.execute(
            "SELECT 1 FROM events WHERE kind = ? AND json_extract(data, '$.peer') = ? "
            "AND json_extract(data, '$.blob') = ? AND json_extract(data, '$.path') = ? "
            "AND (json_extract(data, '$.outcome') = ? "
            "OR (json_extract(data, '$.unsigned') AND ?)) LIMIT 1",
            (RECEIVED, arrival.peer.name, arrival.blob, arrival.path, QUARANTINED,
             arrival.signer is None),
        ).fetchone()  # fmt: skip
        return row is not None or any(
            t.get("blob") == arrival.blob and t.get("path") == arrival.path
            and t["peer"] == arrival.peer.name for t in self.taken
        )  # fmt: skip

    def within_limit(self, peer: Peer) -> bool:
        """Whether one more message or request from ``peer`` fits accept.per_day."""
        since = clock.now_ms() - _DAY_MS
        row = self.factory.index.db.execute(
            "SELECT COUNT(*) FROM events WHERE kind = ? AND time_ms >= ? "
            "AND json_extract(data, '$.peer') = ? AND json_extract(data, '$.type') IN (?, ?) "
            "AND json_extract(data, '$.outcome') IN (?, ?)",
            (RECEIVED, since, peer.name, *_COUNTED, DELIVERED, PENDING),
        ).fetchone()
        return int(row[0]) + self._counted.get(peer.name, 0) < peer.accept.per_day

    # -- deciding --------------------------------------------------------------

    def quarantine(
        self, arrival: Arrival, parcel_id: str | None, problem: InvalidRecordError
    ) -> None:
        """An invalid file: an event with the reason, a receipt if it names an id."""
        self._record(arrival, None, QUARANTINED, str(problem), parcel_id=parcel_id)
        if parcel_id is not None:
            self.answer(arrival.peer.name, parcel_id, QUARANTINED, str(problem))

    def refuse(self, arrival: Arrival, parcel: parcels.Parcel, reason: str) -> None:
        """A valid parcel that is not taken, nor kept: unsigned where it must be."""
        self._record(arrival, parcel, REJECTED, reason, unsigned=True)
        if parcel.type != parcels.RECEIPT:
            self.answer(parcel.sender, parcel.id, REJECTED, reason)

    def settle(self, arrival: Arrival, place: str, parcel: parcels.Parcel, out: Outcome) -> None:
        """Keep the parcel as it came, with what it became."""
        self.files[place] = self.factory.store.blob(arrival.blob or "")
        self.trailers.append(("Factory-Record", f"parcel {parcel.id}"))
        self.files.update(out.files)
        for event in out.events:
            self.add_event(event)
        if out.outcome in (DELIVERED, PENDING) and parcel.type in _COUNTED:
            self._counted[parcel.sender] = self._counted.get(parcel.sender, 0) + 1
        self._record(arrival, parcel, out.outcome, out.reason, record=out.record, task=out.task)
        if out.receipt and parcel.type != parcels.RECEIPT:
            self.answer(parcel.sender, parcel.id, out.outcome, out.reason, record=out.record)

    def answer(self, peer: str, parcel_id: str, outcome: str, reason: str = "",
               record: str | None = None) -> None:  # fmt: skip
        """A receipt for ``peer``'s parcel, in our outbox."""
        receipt = parcels.new(
            self.config.name, peer, parcels.RECEIPT, ACTOR,
            parcel=parcel_id, outcome=outcome, reason=reason[:4000] or None, record=record,
        )  # fmt: skip
        self.send(receipt)

    def send(self, parcel: parcels.Parcel) -> None:
        self.files[parcel.outbox_path()] = parcel.encode()
        self.trailers.append(("Factory-Record", f"parcel {parcel.id}"))

    def add_event(self, event: Event) -> None:
        self.files[event.path] = records.encode(event.to_record())
        self.trailers.append(("Factory-Record", f"event {event.id}"))

    def _record(self, arrival: Arrival, parcel: parcels.Parcel | None, outcome: str,
                reason: str, **extra: Any) -> None:  # fmt: skip
        parcel_id = parcel.id if parcel else extra.pop("parcel_id", None)
        data: dict[str, Any] = {
            "peer": arrival.peer.name, "parcel": parcel_id,
            "type": parcel.type if parcel else None, "outcome": outcome, "reason": reason,
            "ref": arrival.refname, "commit": arrival.commit, "path": arrival.path,
            "blob": arrival.blob, "signer": arrival.signer,
        }  # fmt: skip
        task = extra.pop("task", None)
        data.update({k: v for k, v in extra.items() if k != "parcel_id" and v is not None})
        what = f"{parcel.type} {parcel.id[:10]}" if parcel else arrival.path or arrival.refname
        text = f"from {arrival.peer.name}: {what} {outcome}" + (f": {reason}" if reason else "")
        self.add_event(stamp(Draft(kind=RECEIVED, actor=ACTOR, task=task, text=text[:500],
                                   data=data)))  # fmt: skip
        self.taken.append(data)

    def change(self) -> Change | None:
        from gitfactory.store.branch import Change

        if not self.files:
            return None
        n = sum(1 for t in self.taken if t["outcome"] in (DELIVERED, PENDING, NOTED))
        subject = f"peers: take in {n} parcel(s), refuse {len(self.taken) - n}"
        return Change(dict(self.files), subject, trailers=list(self.trailers))
