"""A mailbox: sending, reading and acknowledging messages, the inbox and threads as
queries over the index, waiting for new mail, and the read view an agent gets in its
worktree (one markdown file per message, and an INBOX.md).

Reading never consumes: ``mail.read`` and ``mail.acked`` are receipts (events),
separate from ``mail.delivered``; an inbox is a query, not a queue.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gitfactory.errors import NoWorkError
from gitfactory.mail.messages import (
    Message,
    MessageNotFoundError,
    NotRecipientError,
    Sent,
    addresses_of,
    compose,
    delivery,
    files_of,
    parcels_for,
    reaches,
)
from gitfactory.mail.verify import LOCAL, Vouch
from gitfactory.store import ids, index_mail, records
from gitfactory.store.log import Draft, Event, clip, stamp
from gitfactory.store.records import MESSAGE

if TYPE_CHECKING:
    from gitfactory.store.factory import Factory
    from gitfactory.store.index_mail import Row

TAIL = 4  # the fewest trailing characters that name a message


def send(factory: Factory, message: Message, vouch: Vouch = LOCAL) -> Sent:
    """Commit the message and its delivery receipt (saying what ``vouch`` says of
    its sender), in one commit."""
    from gitfactory.store.branch import Change

    factory.require_tip()
    abroad = parcels_for(factory, message)
    receipt = delivery(message, message.sender, "send", vouch.verified, vouch.how, abroad)
    commit = factory.store.write(
        Change(
            files=files_of(message, receipt, abroad),
            subject=f"mail: {message.sender} to {clip(', '.join(message.to), 80)}: "
            f"{clip(message.subject, 60)}",
            trailers=[("Factory-Record", f"message {message.id}"),
                      ("Factory-Record", f"event {receipt.id}"),
                     *(("Factory-Record", f"parcel {p.id}") for p in abroad)],
        )
    )  # fmt: skip
    return Sent(message, commit.oid, tuple(receipt.data["to"]), tuple(receipt.data["no_route"]),
                tuple((p.to, p.id) for p in abroad))  # fmt: skip


def reply(
    factory: Factory,
    original: Message,
    sender: str,
    body: str,
    *,
    everyone: bool = False,
    ack_required: bool = False,
    priority: str = "normal",
    vouch: Vouch = LOCAL,
) -> Sent:
    """Answer ``original`` in its thread: to its sender (and with ``everyone`` to all
    its other recipients but the one replying)."""
    to = [original.sender]
    if everyone:
        to += [a for a in (*original.to, *original.cc) if a != sender]
    subject = original.subject
    if not subject.lower().startswith("re:"):
        subject = f"Re: {subject}"[:200]
    message = compose(
        factory, sender=sender, to=to, subject=subject, body=body,
        thread=original.thread_name, reply_to=original.id, task=original.task,
        priority=priority, ack_required=ack_required,
    )  # fmt: skip
    return send(factory, message, vouch)


def _receipt(factory: Factory, message: Message, kind: str, actor: str) -> Event:
    from gitfactory.store import log

    event = stamp(
        Draft(kind=kind, actor=actor, task=message.task, text=message.subject,
              data={"message": message.id})
    )  # fmt: skip
    log.append(factory, [event])
    return event


def read(factory: Factory, message_id: str, reader: str) -> tuple[Message, bool]:
    """The message; records that ``reader`` read it the first time (True then)."""
    message = get(factory, message_id)
    if index_mail.has_receipt(factory.index.db, message.id, "mail.read", reader):
        return message, False
    _receipt(factory, message, "mail.read", reader)
    return message, True


def ack(factory: Factory, message_id: str, agent: str) -> tuple[Message, bool]:
    """Acknowledge the message as ``agent`` (True if this is the first acknowledgement)."""
    message = get(factory, message_id)
    if not any(reaches(a, agent) for a in (*message.to, *message.cc)):
        raise NotRecipientError(
            f"{agent} is not a recipient of message {message.id} (to: {', '.join(message.to)})",
            hint="acknowledge as the agent it was sent to: --as ROLE/NAME",
        )
    if index_mail.has_receipt(factory.index.db, message.id, "mail.acked", agent):
        return message, False
    _receipt(factory, message, "mail.acked", agent)
    return message, True


def resolve(factory: Factory, text: str) -> str:
    """The full id of the message whose id starts with ``text`` (any unique prefix;
    failing that, a unique tail of 4 or more characters, as older listings showed)."""
    factory.require_tip()
    factory.index.refresh()
    return ids.pick("message", text, _matches(factory, text), MessageNotFoundError,
                    listing="`gitfactory mail inbox`", tails=True,
                    describe=lambda some: _described(factory, some))  # fmt: skip


def _matches(factory: Factory, text: str) -> list[str]:
    wanted = ids.typed(text, "message", MessageNotFoundError)
    found = factory.index.ids_starting("messages", wanted)
    if not found and len(wanted) >= TAIL:
        found = factory.index.ids_ending("messages", wanted)
    return found


def _described(factory: Factory, message_ids: Sequence[str]) -> list[str]:
    """Messages as an ambiguous id names them: short id, sender and subject."""
    short = factory.index.short_ids("messages", message_ids)
    out = []
    for m in message_ids:
        record = index_mail.message(factory.index.db, m) or {}
        out.append(f"{short[m]} ({record.get('from', '?')}: {record.get('subject', '')})")
    return out


def get(factory: Factory, text: str) -> Message:
    message_id = resolve(factory, text)
    record = index_mail.message(factory.index.db, message_id)
    assert record is not None  # resolve found it in the same index
    return Message.from_record(record)


def receipts(factory: Factory, message_id: str) -> list[dict[str, Any]]:
    return index_mail.receipts(factory.index.db, message_id)


def inbox(
    factory: Factory,
    agent: str,
    *,
    unread: bool = False,
    unacked: bool = False,
    thread: str | None = None,
    limit: int | None = None,
) -> list[Row]:
    """What reached ``agent`` (directly or through its role), newest first."""
    factory.require_tip()
    factory.index.refresh()
    return index_mail.inbox(
        factory.index.db, agent, addresses_of(agent), unread=unread, unacked=unacked,
        thread=thread_of(factory, thread) if thread else None, limit=limit,
    )  # fmt: skip


def thread(factory: Factory, name: str) -> list[Message]:
    """Every message of a thread, oldest first; ``name`` may also be a message id."""
    found = index_mail.thread(factory.index.db, thread_of(factory, name))
    return [Message.from_record(r) for r in found]


def thread_of(factory: Factory, name: str) -> str:
    """The thread ``name`` names: a thread's own name, else the thread of the message
    whose id it is (or a unique prefix of)."""
    factory.require_tip()
    factory.index.refresh()
    if index_mail.has_thread(factory.index.db, name.strip().lower()):
        return name.strip().lower()
    if not _matches(factory, name):
        raise MessageNotFoundError(
            f"no thread named {name!r}, and no message id starts or ends with it",
            hint="`gitfactory mail inbox` shows each message's thread with --json",
        )
    return get(factory, name).thread_name


def search(factory: Factory, query: str, limit: int = 50) -> list[Row]:
    factory.require_tip()
    factory.index.refresh()
    return index_mail.search(factory.index.db, query, limit)


@dataclass(frozen=True)
class Mark:
    """A point in the mail stream: what the index held at one branch tip."""

    tip: str | None
    seq: int


def mark(factory: Factory) -> Mark:
    factory.require_tip()
    factory.index.refresh()
    return Mark(factory.index.indexed_tip(), index_mail.last_seq(factory.index.db))


def watch(
    factory: Factory,
    agent: str,
    since: Mark,
    *,
    unread: bool = False,
    poll: float = 0.1,
    timeout: float | None = None,
) -> Iterator[Row]:
    """Yield each message that reaches ``agent`` after ``since``, as soon as it is
    committed; with ``unread``, first the ones already there that it has not read.

    Polls the branch's ref file (a stat and a read) every ``poll`` seconds and asks the
    index only when it moved. Raises NoWorkError if ``timeout`` passes with nothing new.
    """
    db, addresses = factory.index.db, addresses_of(agent)
    tip, seen = since.tip, since.seq
    if unread:
        waiting = index_mail.inbox(db, agent, addresses, unread=True)
        yield from reversed([row for row in waiting if row.seq <= seen])
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        current = factory.tip()
        if current != tip:
            tip = current
            factory.index.refresh(current)
            for row in index_mail.inbox(db, agent, addresses, after_seq=seen):
                seen = max(seen, row.seq)
                deadline = None if timeout is None else time.monotonic() + timeout
                yield row
        if deadline is not None and time.monotonic() > deadline:
            raise NoWorkError(f"no new message for {agent} within {timeout:g}s")
        time.sleep(poll)


@dataclass(frozen=True)
class Export:
    directory: Path
    written: int
    unchanged: int
    total: int


def export(factory: Factory, agent: str, directory: Path) -> Export:
    """Write ``agent``'s inbox into ``directory``: ``<id>.md`` per message (the record as
    committed) and ``INBOX.md``, a list newest first with read and ack marks.

    Exporting is not reading: it records nothing. File names come from ids only, and
    files are replaced by rename, so a symlink planted in the directory is replaced,
    never followed.
    """
    rows = inbox(factory, agent)
    directory.mkdir(parents=True, exist_ok=True)
    written = unchanged = 0
    for row in rows:
        record = index_mail.message(factory.index.db, row.meta["id"])
        assert record is not None
        if _write_file(directory / f"{row.meta['id']}.md", records.encode(record, MESSAGE)):
            written += 1
        else:
            unchanged += 1
    _write_file(directory / "INBOX.md", _inbox_page(agent, rows).encode("utf-8"))
    return Export(directory, written, unchanged, len(rows))


def _inbox_page(agent: str, rows: list[Row]) -> str:
    lines = [
        f"# Inbox of {agent}",
        "",
        f"{len(rows)} message(s), newest first. Read one with `gitfactory mail read ID"
        f" --as {agent}`; acknowledge with `gitfactory mail ack ID --as {agent}`.",
        "",
        "| | received | from | verified | subject | file |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        m = row.meta
        mark = "new" if not row.read else "read"
        if m.get("ack_required") and not row.acked:
            mark += ", ack needed"
        subject = str(m["subject"]).replace("|", "\\|")
        link = f"[{m['id']}.md]({m['id']}.md)"
        vouched = "yes" if row.verified else "NO: " + row.how.replace("|", "\\|")
        lines.append(f"| {mark} | {m['created']} | {m['from']} | {vouched} | {subject} | {link} |")
    return "\n".join(lines) + "\n"


def _write_file(path: Path, data: bytes) -> bool:
    """Replace ``path`` with ``data`` atomically; False if it already held exactly that."""
    try:
        if not path.is_symlink() and path.read_bytes() == data:
            return False
    except OSError:
        pass
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)
    return True
