"""What each type of parcel becomes here, under the sender's accept policy."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gitfactory.errors import InvalidRecordError
from gitfactory.mail.messages import Message, delivery
from gitfactory.peers.work import ACTOR, DELIVERED, NOTED, REJECTED, Arrival, Outcome, Work
from gitfactory.plan.tasks import REMOTE_NEWS, REMOTE_STATES
from gitfactory.store import actors, parcels, records
from gitfactory.store.log import Draft, stamp
from gitfactory.store.records import MESSAGE, OUTBOX

if TYPE_CHECKING:
    from gitfactory.config.peers import Peer


def rejected(reason: str) -> Outcome:
    return Outcome(REJECTED, reason)


# -- mail ------------------------------------------------------------------------------


def mail(work: Work, arrival: Arrival, parcel: parcels.Parcel) -> Outcome:
    """A message to roles of this factory: delivered as a local message record whose
    sender carries the peer's name (``api:reviewer/bob``)."""
    peer = arrival.peer
    try:
        message = _localized(work, peer, parcel)
    except InvalidRecordError as exc:
        return rejected(f"the message is not valid here: {exc.field or 'message'}: {exc.reason}")
    here = [a for a in (*message.to, *message.cc) if ":" not in a]
    if not here:
        return rejected(f"the message names no one in {work.config.name!r}")
    refused = sorted({actors.role(a) for a in here} - _roles_allowed(peer, here))
    if refused:
        return rejected(
            f"{peer.name!r} may not write to role(s) {', '.join(refused)} here "
            f"(peers.{peer.name}.accept.mail allows: {', '.join(peer.accept.mail) or 'none'})"
        )
    if not work.within_limit(peer):
        return rejected(f"{peer.name!r} sent its {peer.accept.per_day} messages and requests "
                        f"of the last 24 hours (peers.{peer.name}.accept.per_day)")  # fmt: skip
    size = len(message.body.encode("utf-8"))
    if size > work.config.mail.max_body:
        return rejected(f"the body is {size:,} bytes, over this factory's limit of "
                        f"{work.config.mail.max_body:,}")  # fmt: skip
    existing = work.snap.read(message.path)
    data = records.encode(message.to_record(), MESSAGE)
    if existing is not None:
        if existing != data:
            return rejected(f"another message with the id {message.id} is already here")
        return Outcome(DELIVERED, record=message.id)  # the same message by another parcel
    if arrival.signer:
        how = f"from factory {peer.name!r}, in a box signed by a key of peers.{peer.name}.signers"
    else:
        how = (
            f"from factory {peer.name!r}'s box, unsigned: anyone who may push to "
            f"{arrival.refname} could have sent it (list peers.{peer.name}.signers)"
        )
        if work.config.mail.unverified == "quarantine":
            return rejected(f"this factory takes only mail something vouches for "
                            f"(mail.unverified: quarantine), and {peer.name!r} does not sign "
                            f"(peers.{peer.name}.signers)")  # fmt: skip
    receipt = delivery(message, ACTOR, f"peer:{peer.name}", bool(arrival.signer), how)
    return Outcome(DELIVERED, record=message.id, files={message.path: data},
                   events=[receipt])  # fmt: skip


def _roles_allowed(peer: Peer, here: list[str]) -> set[str]:
    return {actors.role(a) for a in here if peer.accept.takes_mail_for(actors.role(a))}


def _localized(work: Work, peer: Peer, parcel: parcels.Parcel) -> Message:
    """The message as this factory stores it: our own addresses lose our name, the
    sender's gain its factory's, and what points into the sender's factory only
    (its task, its artifacts) is dropped."""
    record: Any = parcel.get("message")
    own = work.config.name
    if not isinstance(record, dict):
        raise InvalidRecordError("message", "message", "must be an object")
    sender = str(record.get("from", ""))
    if ":" in sender:
        raise InvalidRecordError("message", "from", "must be an address of the sending factory")

    def here(address: Any) -> str:
        text = str(address)
        if text.startswith(f"{own}:"):
            return text[len(own) + 1 :]
        return text if ":" in text else f"{peer.name}:{text}"

    local = {**record, "from": f"{peer.name}:{sender}",
             "to": [here(a) for a in record.get("to") or []],
             "cc": [here(a) for a in record.get("cc") or []],
             "task": None, "attachments": []}  # fmt: skip
    path = MESSAGE.path(str(record.get("id", ""))) if isinstance(record.get("id"), str) else "?"
    try:
        records.validate(MESSAGE, path, local)
    except InvalidRecordError:
        raise
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidRecordError(path, None, f"unreadable ({exc})") from None
    return Message.from_record(local)


# -- receipts --------------------------------------------------------------------------


def receipt(work: Work, arrival: Arrival, parcel: parcels.Parcel) -> Outcome:
    """What became of a parcel we sent: noted, and for a message read or acknowledged
    there, the same receipt here, as the reader's."""
    about = parcels.find(work.factory, OUTBOX, str(parcel.get("parcel")))
    if about is None or about.to != arrival.peer.name:
        raise_text = f"answers parcel {parcel.get('parcel')}, which we never sent {parcel.sender!r}"
        return Outcome(REJECTED, raise_text, receipt=False)
    outcome = str(parcel.get("outcome"))
    events = []
    if about.type == parcels.REQUEST and outcome in REMOTE_STATES:
        data = {"peer": arrival.peer.name, "request": about.id, "parcel": parcel.id,
                "state": outcome, "task_id": parcel.get("record"),
                "reason": parcel.get("reason")}  # fmt: skip
        kept = {k: v for k, v in data.items() if v is not None}
        events.append(stamp(Draft(kind=REMOTE_NEWS, actor=ACTOR, task=_task_of(about),
                                  text=f"{arrival.peer.name}: request {outcome}",
                                  data=kept)))  # fmt: skip
    reader = parcel.get("reader")
    if about.type == parcels.MAIL and outcome in ("read", "acked") and isinstance(reader, str):
        message = about.get("message") or {}
        kind = "mail.read" if outcome == "read" else "mail.acked"
        who = reader if ":" in reader else f"{arrival.peer.name}:{reader}"
        events.append(stamp(Draft(kind=kind, actor=who, text=str(message.get("subject", "")),
                                  data={"message": message.get("id"), "via": "peer"})))  # fmt: skip
    return Outcome(NOTED, str(parcel.get("reason") or ""), events=events, task=_task_of(about),
                   receipt=False)  # fmt: skip


def _task_of(about: parcels.Parcel) -> str | None:
    proxy = about.get("proxy")
    return str(proxy) if isinstance(proxy, str) else None


# -- task requests and news of them ----------------------------------------------------


def request(work: Work, arrival: Arrival, parcel: parcels.Parcel) -> Outcome:
    from gitfactory.peers import requests

    return requests.take(work, arrival, parcel)


def update(work: Work, arrival: Arrival, parcel: parcels.Parcel) -> Outcome:
    from gitfactory.peers import requests

    return requests.news(work, arrival, parcel)


def answer(work: Work, arrival: Arrival, parcel: parcels.Parcel) -> Outcome:
    from gitfactory.peers import requests

    return requests.answered(work, arrival, parcel)


def withdraw(work: Work, arrival: Arrival, parcel: parcels.Parcel) -> Outcome:
    from gitfactory.peers import requests

    return requests.withdrawn(work, arrival, parcel)


# -- strangers -------------------------------------------------------------------------


def stranger(work: Work, name: str, refname: str, oid: str) -> None:
    """A factory that is not our peer pushed to us: one event, nothing read."""
    event = stamp(Draft(
        kind="peer.stranger", actor=ACTOR,
        text=f"factory {name!r}, not a peer, delivered {refname}: nothing in it was read",
        data={"peer": name, "ref": refname, "commit": oid},
    ))  # fmt: skip
    work.add_event(event)
    work.taken.append({"peer": name, "parcel": None, "type": None, "outcome": "ignored",
                       "reason": "not a peer of this factory", "ref": refname,
                       "path": refname})  # fmt: skip
