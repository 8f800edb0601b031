"""How the mail commands print messages, inbox rows and what a send did."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gitfactory.cli import output
from gitfactory.mail import messages

if TYPE_CHECKING:
    from gitfactory.mail.messages import Message
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


def print_rows(rows: list[Row], as_json: bool, flags: bool = True) -> None:
    if as_json:
        output.emit_json([row_json(r) for r in rows])
        return
    for row in rows:
        m = row.meta
        mark = (" " if row.read else "*") if flags else " "
        urgent = "!" if m.get("priority") in ("high", "urgent") else " "
        ack = "  [ack needed]" if flags and m.get("ack_required") and not row.acked else ""
        sender = m["from"] if row.verified else f"{m['from']}?"
        output.echo(
            f"{mark}{urgent} {m['id'][-8:]}  {output.local_time(m['created'])}  "
            f"{sender:<20} {m['subject']}{ack}{'' if row.verified else '  [unverified]'}"
        )


def vouch(message: Message, receipts: list[dict[str, Any]]) -> tuple[bool, str]:
    """Whether the message's delivery receipt vouches for its sender, and how (only a
    receipt by the sender's own client or the postmaster counts)."""
    from gitfactory.store.index_mail import POSTMASTER, vouch

    writers = (message.sender, POSTMASTER)
    trusted = [r for r in receipts if r["kind"] == "mail.delivered" and r["actor"] in writers]
    delivered = trusted[0] if trusted else None
    return vouch(delivered["data"] if delivered else None)


def print_message(message: Message, receipts: list[dict[str, Any]]) -> None:
    verified, how = vouch(message, receipts)
    rows = [
        ("Message", message.id),
        ("From", message.sender),
        ("Verified", f"yes: {how}" if verified else f"NO: {how}"),
        ("To", ", ".join(message.to)),
        ("Cc", ", ".join(message.cc)),
        ("Subject", message.subject),
        ("Date", output.local_time(message.created)),
        ("Thread", message.thread_name),
        ("Reply-To", message.reply_to or ""),
        ("Task", message.task or ""),
        ("Priority", message.priority if message.priority != "normal" else ""),
        ("Refs", ", ".join(message.refs)),
        ("Attachments", ", ".join(message.attachments)),
    ]
    if message.ack_required:
        acked = sorted({r["actor"] for r in receipts if r["kind"] == "mail.acked"})
        rows.append(("Ack", f"required; acknowledged by {', '.join(acked) or 'nobody yet'}"))
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
             "no_route": [{"to": a, "status": messages.NO_ROUTE} for a in sent.no_route]}
        )  # fmt: skip
        return
    output.echo(sent.message.id)
    for address in sent.no_route:
        output.progress(f"warning: {address}: {messages.NO_ROUTE}")
