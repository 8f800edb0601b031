"""Parcels: the records one factory sends another (SPEC §20).

A parcel is an immutable JSON record. The sender writes it on its own factory branch
under ``.factory/outbox/<peer>/`` (so it is in the sender's log), and the receiver,
once it took it in, keeps the same bytes under ``.factory/inbox/<sender>/``: the
path says it was seen, so a second delivery of it changes nothing. What a parcel
became at the receiver (a message, a task, a rejection) is an event of the
receiver's log and a receipt parcel back.

Here: the parcel, where it lives, and the questions the index answers about them.
Moving them between repositories is :mod:`gitfactory.store.courier`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from gitfactory.errors import InvalidRecordError
from gitfactory.store import clock, ids, records
from gitfactory.store.records import INBOX, OUTBOX, PARCEL, parcel_kind

if TYPE_CHECKING:
    from gitfactory.store.factory import Factory

MAIL, REQUEST, UPDATE, ANSWER, RECEIPT = "mail", "request", "update", "answer", "receipt"
WITHDRAW = "withdraw"
# What each type must carry besides id, type, from, to, created and by.
REQUIRED: dict[str, tuple[str, ...]] = {
    MAIL: ("message",),
    REQUEST: ("task", "proxy"),
    UPDATE: ("request", "task_id", "state"),
    ANSWER: ("request", "task_id", "text"),
    RECEIPT: ("parcel", "outcome"),
    WITHDRAW: ("request",),
}
_HEAD = ("id", "type", "from", "to", "created", "by")


@dataclass(frozen=True)
class Parcel:
    id: str
    type: str
    sender: str  # the sending factory's name
    to: str  # the receiving factory's name
    created: str
    by: str  # who in the sending factory caused it
    content: dict[str, Any] = field(default_factory=dict)  # the type's own fields

    def to_record(self) -> dict[str, Any]:
        head = {"id": self.id, "type": self.type, "from": self.sender, "to": self.to,
                "created": self.created, "by": self.by}  # fmt: skip
        return {**head, **self.content}

    @classmethod
    def from_record(cls, r: dict[str, Any]) -> Parcel:
        return cls(
            id=r["id"], type=r["type"], sender=r["from"], to=r["to"], created=r["created"],
            by=r["by"], content={k: v for k, v in r.items() if k not in _HEAD},
        )  # fmt: skip

    def outbox_path(self) -> str:
        """Where the sender keeps it."""
        return parcel_kind(OUTBOX, self.to).path(self.id)

    def inbox_path(self) -> str:
        """Where the receiver keeps it."""
        return parcel_kind(INBOX, self.sender).path(self.id)

    def encode(self) -> bytes:
        return records.encode(self.to_record())

    def get(self, name: str) -> Any:
        return self.content.get(name)


def new(sender: str, to: str, type_: str, by: str, **content: Any) -> Parcel:
    """A parcel from ``sender`` to ``to``, checked against the protocol."""
    created_ms = clock.now_ms()
    parcel = Parcel(ids.new_id(created_ms), type_, sender, to, clock.format_time(created_ms),
                    by, {k: v for k, v in content.items() if v is not None})  # fmt: skip
    data = parcel.encode()
    records.decode(parcel_kind(OUTBOX, to), parcel.outbox_path(), data)
    if len(data) > records.MAX_RECORD_BYTES:
        raise InvalidRecordError(parcel.outbox_path(), None, "over 1 MiB")
    missing = check_type(parcel)
    if missing is not None:
        raise InvalidRecordError(parcel.outbox_path(), missing, f"a {type_} parcel needs it")
    return parcel


def check_type(parcel: Parcel) -> str | None:
    """The first field the parcel's type needs and it lacks, or None."""
    for name in REQUIRED[parcel.type]:
        if name not in parcel.content:
            return name
    return None


def decode(box: str, peer: str, path: str, data: bytes) -> Parcel:
    """A parcel file of ``box`` for ``peer``, read and checked (InvalidRecordError)."""
    record = records.decode(parcel_kind(box, peer), path, data)
    _no_duplicate_keys(path, data)
    parcel = Parcel.from_record(record)
    missing = check_type(parcel)
    if missing is not None:
        raise InvalidRecordError(path, missing, f"a {parcel.type} parcel needs it")
    return parcel


def _no_duplicate_keys(path: str, data: bytes) -> None:
    """A key twice in one object: readers that keep the first and readers that keep
    the last would see two different parcels (the bytes were already bounded)."""

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        keys = [k for k, _ in items]
        if len(keys) != len(set(keys)):
            twice = next(k for k in keys if keys.count(k) > 1)
            raise InvalidRecordError(path, twice, "appears twice in one object")
        return dict(items)

    json.loads(data, object_pairs_hook=pairs)


def box_prefix(box: str, peer: str) -> str:
    return parcel_kind(box, peer).prefix


# -- what the index knows ------------------------------------------------------------


def listed(
    factory: Factory,
    box: str,
    peer: str | None = None,
    type_: str | None = None,
    where: dict[str, str] | None = None,
) -> list[Parcel]:
    """Parcels of ``box`` (for ``peer``, of ``type_``, whose fields equal ``where``),
    oldest first. The caller refreshes the index."""
    sql = "SELECT record FROM parcels WHERE box = ?"
    args: list[Any] = [box]
    if peer is not None:
        sql, args = sql + " AND peer = ?", [*args, peer]
    if type_ is not None:
        sql, args = sql + " AND type = ?", [*args, type_]
    for name, value in (where or {}).items():
        sql, args = sql + " AND json_extract(record, ?) = ?", [*args, f"$.{name}", value]
    rows = factory.index.db.execute(sql + " ORDER BY id", args).fetchall()
    return [Parcel.from_record(json.loads(row[0])) for row in rows]


def find(factory: Factory, box: str, parcel_id: str) -> Parcel | None:
    row = factory.index.db.execute(
        "SELECT record FROM parcels WHERE box = ? AND id = ?", (box, parcel_id)
    ).fetchone()
    return Parcel.from_record(json.loads(row[0])) if row else None


__all__ = ["INBOX", "OUTBOX", "PARCEL", "Parcel"]
