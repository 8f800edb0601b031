"""Messages: what agents, roles and humans say to each other, as committed markdown.

A message is an immutable record, ``.factory/mail/<time shards>/<id>.md``: YAML front
matter (from, to, subject, thread, ...) and a markdown body. Whatever happens to it
afterwards is a separate event in the log: ``mail.delivered`` when it reached the
factory branch, ``mail.read`` and ``mail.acked`` per reader. Reading never consumes
or hides a message; an inbox is a query, not a queue.

Addresses: ``role/name`` is one agent, ``role/*`` every agent of the role,
``human/name`` a person. ``factory:role/name`` is an agent of another factory, a
peer of this one (factory.yaml's ``peers:``): the message goes out as a parcel in
that peer's outbox (SPEC §20), written in the same commit as the message.

Here: the message and its addresses, and the records a message becomes. Sending and
reading them is :mod:`gitfactory.mail.mailbox`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from gitfactory.errors import FactoryError, InvalidRecordError, UsageError
from gitfactory.store import actors, clock, ids, parcels, records
from gitfactory.store.log import Draft, Event, stamp
from gitfactory.store.records import MESSAGE

if TYPE_CHECKING:
    from gitfactory.store.branch import Change
    from gitfactory.store.factory import Factory

PRIORITIES = ("low", "normal", "high", "urgent")
POSTMASTER = "factory/mail"  # the sender of the factory's own notices
NO_ROUTE = "no route: that factory is not a peer of this one (factory.yaml's peers:)"
# A body this small never needs factory.yaml's mail.max_body (which cannot be lower),
# so a short message is sent without loading the YAML configuration.
_SMALL_BODY = 64 * 1024


class MessageNotFoundError(UsageError):
    """No message, or more than one, matches the id that was typed."""


class NotRecipientError(FactoryError):
    """Only a recipient can acknowledge a message."""


@dataclass(frozen=True)
class Message:
    id: str
    sender: str
    to: tuple[str, ...]
    subject: str
    created: str
    body: str = ""
    cc: tuple[str, ...] = ()
    thread: str | None = None
    reply_to: str | None = None
    priority: str = "normal"
    ack_required: bool = False
    task: str | None = None
    refs: tuple[str, ...] = ()
    attachments: tuple[str, ...] = ()

    @property
    def path(self) -> str:
        return MESSAGE.path(self.id)

    @property
    def thread_name(self) -> str:
        """The thread it belongs to: its own id when it starts one."""
        return self.thread or self.id

    def to_record(self) -> dict[str, Any]:
        return {
            "id": self.id, "from": self.sender, "to": list(self.to), "cc": list(self.cc),
            "subject": self.subject, "thread": self.thread, "reply_to": self.reply_to,
            "created": self.created, "priority": self.priority,
            "ack_required": self.ack_required, "task": self.task, "refs": list(self.refs),
            "attachments": list(self.attachments), "body": self.body,
        }  # fmt: skip

    @classmethod
    def from_record(cls, r: dict[str, Any]) -> Message:
        return cls(
            id=r["id"], sender=r["from"], to=tuple(r["to"]), subject=r["subject"],
            created=r["created"], body=r.get("body", ""), cc=tuple(r.get("cc", ())),
            thread=r.get("thread"), reply_to=r.get("reply_to"),
            priority=r.get("priority", "normal"), ack_required=bool(r.get("ack_required")),
            task=r.get("task"), refs=tuple(r.get("refs", ())),
            attachments=tuple(r.get("attachments", ())),
        )  # fmt: skip


@dataclass(frozen=True)
class Sent:
    message: Message
    commit: str
    delivered: tuple[str, ...]  # local recipients
    no_route: tuple[str, ...]  # addresses in factories that are not peers
    abroad: tuple[tuple[str, str], ...] = ()  # (peer, parcel id) for other factories


def is_remote(address: str) -> bool:
    return ":" in address


def addresses_of(agent: str) -> list[str]:
    """What reaches ``agent``: its own address and its role's broadcast address."""
    return [agent, f"{agent.rsplit('/', 1)[0]}/*"]


def reaches(address: str, agent: str) -> bool:
    return address in addresses_of(agent)


# -- building records --------------------------------------------------------------------


def compose(
    factory: Factory,
    *,
    sender: str,
    to: Iterable[str],
    subject: str,
    body: str = "",
    cc: Iterable[str] = (),
    thread: str | None = None,
    reply_to: str | None = None,
    task: str | None = None,
    priority: str = "normal",
    ack_required: bool = False,
    refs: Iterable[str] = (),
) -> Message:
    """A new message, checked against the protocol and the factory's size limit."""
    from gitfactory.config import factory_yaml

    recipients = tuple(dict.fromkeys(actors.check(a, "to", recipient=True) for a in to))
    if not recipients:
        raise UsageError("a message needs at least one recipient")
    body = body.rstrip() + "\n" if body.strip() else ""
    size = len(body.encode("utf-8"))
    if size > _SMALL_BODY and size > factory_yaml.load(factory).mail.max_body:
        raise UsageError(
            f"the message body is {size:,} bytes, over this factory's limit of "
            f"{factory_yaml.load(factory).mail.max_body:,}",
            hint="attach large content as an artifact, or raise mail.max_body in factory.yaml",
        )
    created_ms = clock.now_ms()
    message = Message(
        id=ids.new_id(created_ms), sender=sender, to=recipients, subject=subject.strip(),
        created=clock.format_time(created_ms), body=body,
        cc=tuple(dict.fromkeys(actors.check(a, "cc", recipient=True) for a in cc)), thread=thread,
        reply_to=reply_to, priority=priority, ack_required=ack_required, task=task,
        refs=tuple(refs),
    )  # fmt: skip
    try:
        records.validate(MESSAGE, message.path, message.to_record())
    except InvalidRecordError as exc:
        raise UsageError(f"{exc.field or 'message'}: {exc.reason}") from None
    return message


def delivery(
    message: Message,
    actor: str,
    via: str,
    verified: bool,
    how: str,
    abroad: Iterable[parcels.Parcel] = (),
) -> Event:
    """The ``mail.delivered`` receipt of a message that reached the factory branch,
    with whether anything vouches for its sender, and what (:mod:`gitfactory.mail.verify`),
    and the parcels that carry it to other factories."""
    everyone = [*message.to, *message.cc]
    sent = {p.to: p.id for p in abroad}
    data: dict[str, Any] = {
        "message": message.id, "to": [a for a in everyone if not is_remote(a)],
        "no_route": [a for a in everyone if is_remote(a) and a.split(":", 1)[0] not in sent],
        "via": via, "verified": verified, "how": how,
    }  # fmt: skip
    if sent:
        data["peers"] = sent
    return stamp(
        Draft(kind="mail.delivered", actor=actor, task=message.task, text=message.subject,
              data=data)
    )  # fmt: skip


def files_of(
    message: Message, receipt: Event, abroad: Iterable[parcels.Parcel] = ()
) -> dict[str, bytes]:
    files = {
        message.path: records.encode(message.to_record(), MESSAGE),
        receipt.path: records.encode(receipt.to_record()),
    }
    files.update((p.outbox_path(), p.encode()) for p in abroad)
    return files


def factories_of(message: Message) -> dict[str, list[str]]:
    """Other factories' addresses among the recipients, by factory name."""
    out: dict[str, list[str]] = {}
    for address in (*message.to, *message.cc):
        if is_remote(address):
            out.setdefault(address.split(":", 1)[0], []).append(address)
    return out


def parcels_for(factory: Factory, message: Message) -> list[parcels.Parcel]:
    """One mail parcel per peer factory the message is addressed to; a usage error
    for a factory that is not a peer, or a message too large to travel."""
    from gitfactory.config import factory_yaml

    wanted = factories_of(message)
    if not wanted:
        return []
    config = factory_yaml.load(factory)
    out = []
    for name, addresses in wanted.items():
        if name == config.name:
            local = addresses[0].split(":", 1)[1]
            raise UsageError(
                f"{addresses[0]!r} names this factory itself ({name!r})",
                hint=f"write {local} for someone here",
            )
        if name not in config.peers:
            raise UsageError(
                f"{addresses[0]!r}: factory {name!r} is not a peer of this one",
                hint=f"add it under peers: in factory.yaml (`gitfactory peers --help`); "
                f"peers now: {', '.join(sorted(config.peers)) or 'none'}",
            )
        try:
            out.append(parcels.new(config.name, name, parcels.MAIL, message.sender,
                                   message=message.to_record()))  # fmt: skip
        except InvalidRecordError as exc:
            raise UsageError(
                f"the message cannot travel to {name!r}: {exc.reason}",
                hint="a parcel holds at most 1 MiB: send a shorter body",
            ) from None
    return out


def change_for(messages: list[tuple[Message, Event]], subject: str) -> Change:
    """One commit holding messages and their receipts (used by the postmaster)."""
    from gitfactory.store.branch import Change

    files: dict[str, bytes] = {}
    trailers: list[tuple[str, str]] = []
    for message, receipt in messages:
        files.update(files_of(message, receipt))
        trailers += [("Factory-Record", f"message {message.id}"),
                     ("Factory-Record", f"event {receipt.id}")]  # fmt: skip
    return Change(files=files, subject=subject, trailers=trailers)
