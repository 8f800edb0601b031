"""How the mail commands print messages, inbox rows and what a send did."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from gitfactory.cli import output
from gitfactory.mail import messages
from gitfactory.store import ids

if TYPE_CHECKING:
    from gitfactory.mail.messages import Message
    from gitfactory.store.factory import Factory
    from gitfactory.store.index_mail import Row


def row_json(row: Row) -> dict[str, Any]:
    m = row.meta
    return {
        "id": m["id"], "from": m["from"], "to": m["to"], "cc": m.get("cc", []),
        "subject": m["subject"], "thread": m.get("thread") or m["id"],
        "created": m["created"], "priority": m.get("priority", "normal"),
        "ack_required": bool(m.get("ack_required")), "task": m.get("task"),
        "read": row.read, "acked": row.acked, "verified": row.verified, "how": row.how,
    }  # fmt: skip


def print_rows(
    factory: Factory, rows: list[Row], as_json: bool, empty: str, flags: bool = True
) -> None:
    """Inbox rows, newest first (or ``empty``, the one line that says there are none)."""
    if as_json:
        output.emit_json([row_json(r) for r in rows])
        return
    if not rows:
        output.echo(empty)
        return
    short = factory.index.short_ids("messages", [r.meta["id"] for r in rows])
    for row in rows:
        m = row.meta
        mark = (" " if row.read else "*") if flags else " "
        urgent = "!" if m.get("priority") in ("high", "urgent") else " "
        ack = "  [ack needed]" if flags and m.get("ack_required") and not row.acked else ""
        sender = m["from"] if row.verified else f"{m['from']}?"
        output.echo(
            f"{mark}{urgent} {short[m['id']]:<10} {output.local_time(m['created'])}  "
            f"{sender:<20} {m['subject']}{ack}{'' if row.verified else '  [unverified]'}"
        )


def vouch(message: Message, receipts: list[dict[str, Any]]) -> tuple[bool, str]:
    """Whether the message's delivery receipt vouches for its sender, and how (only a
    receipt by the sender's own client, the postmaster or the peers pass counts)."""
    from gitfactory.store.index_mail import DELIVERERS, vouch

    writers = (message.sender, *DELIVERERS)
    trusted = [r for r in receipts if r["kind"] == "mail.delivered" and r["actor"] in writers]
    delivered = trusted[0] if trusted else None
    return vouch(delivered["data"] if delivered else None)


def print_message(
    factory: Factory,
    message: Message,
    receipts: list[dict[str, Any]],
    abroad: Sequence[dict[str, Any]] = (),
) -> None:
    """One message in full: its own id whole, the ids it refers to in their short forms."""
    verified, how = vouch(message, receipts)
    thread = message.thread_name
    if ids.is_id(thread) and factory.index.ids_starting("messages", thread, 1):
        thread = factory.index.short_id("messages", thread)  # a thread named by its first message
    reply_to = factory.index.short_id("messages", message.reply_to) if message.reply_to else ""
    task = factory.index.short_id("tasks", message.task) if message.task else ""
    attached = factory.index.short_ids("artifacts", message.attachments)
    rows = [
        ("Message", message.id),
        ("From", message.sender),
        ("Verified", f"yes: {how}" if verified else f"NO: {how}"),
        ("To", ", ".join(message.to)),
        ("Cc", ", ".join(message.cc)),
        ("Subject", message.subject),
        ("Date", output.local_time(message.created)),
        ("Thread", thread),
        ("Reply-To", reply_to),
        ("Task", task),
        ("Priority", message.priority if message.priority != "normal" else ""),
        ("Refs", ", ".join(message.refs)),
        ("Attachments", ", ".join(attached[a] for a in message.attachments)),
    ]
    if message.ack_required:
        acked = sorted({r["actor"] for r in receipts if r["kind"] == "mail.acked"})
        rows.append(("Ack", f"required; acknowledged by {', '.join(acked) or 'nobody yet'}"))
    for sent in abroad:
        rows.append(("Peer", f"{sent['peer']}: {peer_receipts(sent)}"))
    for name, value in rows:
        if value:
            output.echo(f"{name + ':':<12} {value}")
    output.echo()
    output.echo(message.body.rstrip("\n"))


def report_sent(sent: messages.Sent, as_json: bool) -> None:
    if as_json:
        output.emit_json(
            {"id": sent.message.id, "thread": sent.message.thread_name, "commit": sent.commit,
             "delivered": list(sent.delivered),
             "no_route": [{"to": a, "status": messages.NO_ROUTE} for a in sent.no_route],
             "abroad": [{"peer": p, "parcel": i} for p, i in sent.abroad]}
        )  # fmt: skip
        return
    output.echo(sent.message.id)
    for peer, _ in sent.abroad:
        output.progress(f"to {peer}: in its outbox; it travels at the next exchange "
                        "(the daemon, or `gitfactory peers sync`)")  # fmt: skip
    for address in sent.no_route:
        output.progress(f"warning: {address}: {messages.NO_ROUTE}")


def peer_receipts(sent: dict[str, Any]) -> str:
    """What a peer said of a message we sent it: delivered, read by whom, or why not."""
    said = []
    for r in sent["receipts"]:
        who = f" by {sent['peer']}:{r['reader']}" if r.get("reader") else ""
        why = f" ({r['reason']})" if r.get("reason") else ""
        said.append(f"{r['outcome']}{who}{why}")
    return "; ".join(said) or "no receipt yet (it goes at the next `gitfactory peers sync`)"


def abroad(factory: Factory, message: Message) -> list[dict[str, Any]]:
    """Receipts from the peer factories the message went to (none for local mail)."""
    if not any(":" in a for a in (*message.to, *message.cc)):
        return []
    from gitfactory.peers import listing

    return listing.abroad(factory, message.id)
