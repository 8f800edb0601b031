"""The mail part of the derived index: messages, recipients, receipts, full text.

Receipts (delivered, read, acknowledged, escalated, quarantined) are log events; the
index keeps one row per receipt so that an inbox with its read and acked flags is one
query. Everything here is rebuilt from the factory branch like the rest of the index.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from typing import Any

from gitfactory.store.clock import parse_time
from gitfactory.store.log import Event

SCHEMA = """
CREATE TABLE IF NOT EXISTS messages(
    seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, sender TEXT NOT NULL,
    thread TEXT NOT NULL, created_ms INTEGER NOT NULL, ack_required INTEGER NOT NULL,
    meta TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS messages_thread ON messages(thread, id);
CREATE INDEX IF NOT EXISTS messages_ack ON messages(created_ms) WHERE ack_required = 1;
CREATE TABLE IF NOT EXISTS recipients(
    address TEXT NOT NULL, message TEXT NOT NULL, cc INTEGER NOT NULL,
    PRIMARY KEY(address, message)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS recipients_message ON recipients(message);
CREATE TABLE IF NOT EXISTS receipts(
    message TEXT NOT NULL, kind TEXT NOT NULL, actor TEXT NOT NULL, event TEXT NOT NULL,
    time TEXT NOT NULL, data TEXT NOT NULL, PRIMARY KEY(message, kind, actor, event))
    WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS receipts_event ON receipts(event);
CREATE TABLE IF NOT EXISTS quarantined(
    blob TEXT NOT NULL, path TEXT NOT NULL, message TEXT, event TEXT NOT NULL,
    PRIMARY KEY(blob, path)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS quarantined_message ON quarantined(message);
CREATE TABLE IF NOT EXISTS ingest_seen(branch TEXT PRIMARY KEY, tree TEXT NOT NULL);
"""
# Full text: FTS5 where SQLite has it (every CPython build we know of), else a plain
# table searched with LIKE. Its rowid is the message's seq.
_FTS = "CREATE VIRTUAL TABLE IF NOT EXISTS mail_text USING fts5(sender, subject, body)"
_PLAIN_TEXT = (
    "CREATE TABLE IF NOT EXISTS mail_text("
    "rowid INTEGER PRIMARY KEY, sender TEXT, subject TEXT, body TEXT)"
)
TABLES = ("messages", "recipients", "receipts", "quarantined", "mail_text", "ingest_seen")
RECEIPTS = ("mail.delivered", "mail.read", "mail.acked", "mail.escalated")
QUARANTINED = "mail.quarantined"


def create(db: sqlite3.Connection) -> None:
    db.executescript(SCHEMA)
    if db.execute("SELECT 1 FROM meta WHERE key = 'fts'").fetchone() is not None:
        return
    try:
        db.execute(_FTS)
        fts = "1"
    except sqlite3.OperationalError:
        db.execute(_PLAIN_TEXT)
        fts = "0"
    db.execute("INSERT INTO meta VALUES ('fts', ?)", (fts,))


@dataclass(frozen=True)
class Row:
    """A message as an inbox lists it: front matter (no body) and the reader's flags."""

    meta: dict[str, Any]
    seq: int
    read: bool = False
    acked: bool = False
    verified: bool = False  # whether anything vouches for its sender (see vouch)
    how: str = ""


def vouch(delivered: dict[str, Any] | None) -> tuple[bool, str]:
    """Whether a ``mail.delivered`` receipt's data vouches for the sender, and how.
    A receipt from before senders were verified vouches only for the local CLI path."""
    if delivered is None:
        return False, "no delivery receipt"
    if isinstance(delivered.get("verified"), bool):
        return delivered["verified"], str(delivered.get("how", ""))
    if delivered.get("via") in ("send", "postmaster"):
        return True, "written through gitfactory"
    return False, f"taken in from {delivered.get('via')} before senders were verified"


# A delivery receipt counts when its writer could write it: the sender's own client
# (`mail send`), the postmaster, or the peers pass (mail from another factory). One by
# anyone else says nothing about the sender.
POSTMASTER = "factory/mail"
PEERS = "factory/peers"
DELIVERERS = (POSTMASTER, PEERS)
_TRUSTED = f"r.kind = 'mail.delivered' AND r.actor IN (m.sender, '{POSTMASTER}', '{PEERS}')"
_DELIVERED = (
    f"(SELECT r.data FROM receipts r WHERE r.message = m.id AND {_TRUSTED}"
    " ORDER BY r.event LIMIT 1)"
)


def _row(meta: str, seq: int, read: Any, acked: Any, delivered: str | None) -> Row:
    verified, how = vouch(json.loads(delivered) if delivered else None)
    return Row(json.loads(meta), seq, bool(read), bool(acked), verified, how)


def insert_message(db: sqlite3.Connection, record: dict[str, Any]) -> None:
    meta = {k: v for k, v in record.items() if k != "body"}
    cur = db.execute(
        "INSERT OR REPLACE INTO messages(id, sender, thread, created_ms, ack_required, meta)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (record["id"], record["from"], record.get("thread") or record["id"],
         parse_time(record["created"]),
         int(bool(record.get("ack_required"))), json.dumps(meta, ensure_ascii=False)),
    )  # fmt: skip
    db.executemany(
        "INSERT OR REPLACE INTO recipients VALUES (?, ?, ?)",
        [(a, record["id"], 0) for a in record["to"]]
        + [(a, record["id"], 1) for a in record.get("cc", ()) if a not in record["to"]],
    )
    db.execute(
        "INSERT INTO mail_text(rowid, sender, subject, body) VALUES (?, ?, ?, ?)",
        (cur.lastrowid, record["from"], record["subject"], record.get("body", "")),
    )


def forget_message(db: sqlite3.Connection, message_id: str) -> None:
    row = db.execute("SELECT seq FROM messages WHERE id = ?", (message_id,)).fetchone()
    if row is None:
        return
    db.execute("DELETE FROM mail_text WHERE rowid = ?", (row[0],))
    db.execute("DELETE FROM recipients WHERE message = ?", (message_id,))
    db.execute("DELETE FROM messages WHERE id = ?", (message_id,))


def insert_receipt(db: sqlite3.Connection, event: Event) -> None:
    data = event.data
    if event.kind == QUARANTINED:
        if isinstance(data.get("blob"), str) and isinstance(data.get("path"), str):
            message = data.get("message") if isinstance(data.get("message"), str) else None
            db.execute(
                "INSERT OR REPLACE INTO quarantined VALUES (?, ?, ?, ?)",
                (data["blob"], data["path"], message, event.id),
            )
    elif event.kind in RECEIPTS and isinstance(data.get("message"), str):
        db.execute(
            "INSERT OR REPLACE INTO receipts VALUES (?, ?, ?, ?, ?, ?)",
            (data["message"], event.kind, event.actor, event.id, event.time,
             json.dumps(data, ensure_ascii=False)),
        )  # fmt: skip


def forget_receipt(db: sqlite3.Connection, event_id: str) -> None:
    db.execute("DELETE FROM receipts WHERE event = ?", (event_id,))
    db.execute("DELETE FROM quarantined WHERE event = ?", (event_id,))


# -- queries -------------------------------------------------------------------------


def message(db: sqlite3.Connection, message_id: str) -> dict[str, Any] | None:
    """The whole record of a message (front matter and body)."""
    row = db.execute(
        "SELECT m.meta, t.body FROM messages m JOIN mail_text t ON t.rowid = m.seq WHERE m.id = ?",
        (message_id,),
    ).fetchone()
    if row is None:
        return None
    record: dict[str, Any] = json.loads(row[0])
    record["body"] = row[1]
    return record


_FLAGS = (
    "EXISTS(SELECT 1 FROM receipts r WHERE r.message = m.id AND r.kind = 'mail.read'"
    " AND r.actor = :me) AS read,"
    " EXISTS(SELECT 1 FROM receipts r WHERE r.message = m.id AND r.kind = 'mail.acked'"
    " AND r.actor = :me) AS acked"
)
_VISIBLE = "NOT EXISTS(SELECT 1 FROM quarantined q WHERE q.message = m.id)"


def inbox(
    db: sqlite3.Connection,
    reader: str,
    addresses: list[str],
    *,
    unread: bool = False,
    unacked: bool = False,
    thread: str | None = None,
    after_seq: int | None = None,
    limit: int | None = None,
) -> list[Row]:
    """Messages to any of ``addresses``, newest first (oldest first after ``after_seq``)."""
    marks = ", ".join(f":a{i}" for i in range(len(addresses)))
    args: dict[str, Any] = {f"a{i}": a for i, a in enumerate(addresses)}
    args.update(me=reader, thread=thread, after=after_seq, limit=-1 if limit is None else limit)
    where = [f"m.id IN (SELECT message FROM recipients WHERE address IN ({marks}))", _VISIBLE]
    if thread is not None:
        where.append("m.thread = :thread")
    if after_seq is not None:
        where.append("m.seq > :after")
    outer = []
    if unread:
        outer.append("NOT read")
    if unacked:
        outer.append("m_ack AND NOT acked")
    order = "seq" if after_seq is not None else "id DESC"
    sql = (
        f"SELECT meta, seq, read, acked, delivered FROM (SELECT m.meta, m.seq, m.id,"
        f" m.ack_required AS m_ack, {_DELIVERED} AS delivered, {_FLAGS}"
        f" FROM messages m WHERE {' AND '.join(where)})"
        f"{' WHERE ' + ' AND '.join(outer) if outer else ''} ORDER BY {order} LIMIT :limit"
    )
    return [_row(*r) for r in db.execute(sql, args)]


def thread(db: sqlite3.Connection, name: str) -> list[dict[str, Any]]:
    """Every message of a thread, oldest first, with bodies."""
    rows = db.execute(
        "SELECT m.meta, t.body FROM messages m JOIN mail_text t ON t.rowid = m.seq"
        f" WHERE m.thread = ? AND {_VISIBLE} ORDER BY m.id",
        (name,),
    ).fetchall()
    return [{**json.loads(meta), "body": body} for meta, body in rows]


def has_thread(db: sqlite3.Connection, name: str) -> bool:
    return (
        db.execute("SELECT 1 FROM messages WHERE thread = ? LIMIT 1", (name,)).fetchone()
        is not None
    )


def search(db: sqlite3.Connection, query: str, limit: int) -> list[Row]:
    """Messages whose sender, subject or body hold every word of ``query``, newest first."""
    words = query.split()
    if not words:
        return []
    fts = db.execute("SELECT value FROM meta WHERE key = 'fts'").fetchone()
    if fts is not None and fts[0] == "1":
        # Each word as an FTS string, so that punctuation in it is never query syntax;
        # a trailing * keeps its meaning (a prefix search).
        match = " ".join(
            '"' + w.rstrip("*").replace('"', '""') + '"' + ("*" if w.endswith("*") else "")
            for w in words
        )
        text_filter, args = "mail_text MATCH ?", [match]
    else:
        text_filter = " AND ".join(
            "(sender || ' ' || subject || ' ' || body) LIKE ? ESCAPE '\\'" for _ in words
        )
        args = ["%" + w.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
                for w in words]  # fmt: skip
    rows = db.execute(
        f"SELECT m.meta, m.seq, 0, 0, {_DELIVERED} FROM messages m WHERE m.seq IN"
        f" (SELECT rowid FROM mail_text WHERE {text_filter}) AND {_VISIBLE}"
        " ORDER BY m.id DESC LIMIT ?",
        [*args, limit],
    ).fetchall()
    return [_row(*r) for r in rows]


def receipts(db: sqlite3.Connection, message_id: str) -> list[dict[str, Any]]:
    rows = db.execute(
        "SELECT kind, actor, time, event, data FROM receipts WHERE message = ? ORDER BY event",
        (message_id,),
    ).fetchall()
    return [
        {"kind": kind, "actor": actor, "time": time, "event": event, "data": json.loads(data)}
        for kind, actor, time, event, data in rows
    ]


def has_receipt(db: sqlite3.Connection, message_id: str, kind: str, actor: str | None) -> bool:
    sql = "SELECT 1 FROM receipts WHERE message = ? AND kind = ?"
    args = [message_id, kind]
    if actor is not None:
        sql += " AND actor = ?"
        args.append(actor)
    return db.execute(sql + " LIMIT 1", args).fetchone() is not None


def undelivered(db: sqlite3.Connection) -> tuple[list[dict[str, Any]], int]:
    """Messages on the branch that no delivery receipt covers yet (written by plain git),
    among those indexed since the last pass (see :func:`mark_delivered`); and the
    index position to record once they have their receipts."""
    row = db.execute("SELECT value FROM meta WHERE key = 'mail_delivered_seq'").fetchone()
    after = int(row[0]) if row is not None else 0
    rows = db.execute(
        "SELECT meta FROM messages m WHERE m.seq > ? AND NOT EXISTS(SELECT 1 FROM receipts r"
        f" WHERE r.message = m.id AND {_TRUSTED}) AND {_VISIBLE} ORDER BY m.id",
        (after,),
    ).fetchall()
    return [json.loads(r[0]) for r in rows], last_seq(db)


def mark_delivered(db: sqlite3.Connection, seq: int) -> None:
    """Every message up to ``seq`` has its receipt (or was quarantined): later passes
    look only at messages indexed after it. A rebuilt index numbers messages past any
    old mark (AUTOINCREMENT), so a rebuild means one full pass, never a skipped one."""
    db.execute("INSERT OR REPLACE INTO meta VALUES ('mail_delivered_seq', ?)", (str(seq),))


def overdue(
    db: sqlite3.Connection, created_before_ms: int
) -> list[tuple[dict[str, Any], list[str]]]:
    """ack_required messages created before the cutoff and not escalated yet, with the
    addresses of acknowledgements they have."""
    rows = db.execute(
        "SELECT m.meta, (SELECT json_group_array(r.actor) FROM receipts r"
        " WHERE r.message = m.id AND r.kind = 'mail.acked') FROM messages m"
        " WHERE m.ack_required = 1 AND m.created_ms < ? AND NOT EXISTS(SELECT 1 FROM receipts r"
        f" WHERE r.message = m.id AND r.kind = 'mail.escalated') AND {_VISIBLE}"
        " ORDER BY m.created_ms, m.id",
        (created_before_ms,),
    ).fetchall()
    return [(json.loads(meta), json.loads(acks)) for meta, acks in rows]


def is_quarantined(db: sqlite3.Connection, blob: str, path: str) -> bool:
    row = db.execute(
        "SELECT 1 FROM quarantined WHERE blob = ? AND path = ?", (blob, path)
    ).fetchone()
    return row is not None


def last_seq(db: sqlite3.Connection) -> int:
    row = db.execute("SELECT MAX(seq) FROM messages").fetchone()
    return int(row[0] or 0)


def seen_tree(db: sqlite3.Connection, branch: str) -> str | None:
    """The mail tree of ``branch`` that the last ingestion took in completely."""
    row = db.execute("SELECT tree FROM ingest_seen WHERE branch = ?", (branch,)).fetchone()
    return str(row[0]) if row is not None else None


def mark_seen(db: sqlite3.Connection, trees: dict[str, str], factory_tip: str | None) -> None:
    """What branches' mail trees were taken in, as of the factory branch at
    ``factory_tip`` (see :func:`forget_if_rewound`)."""
    db.executemany("INSERT OR REPLACE INTO ingest_seen VALUES (?, ?)", list(trees.items()))
    db.execute("INSERT OR REPLACE INTO meta VALUES ('ingest_tip', ?)", (factory_tip or "",))


def forget_if_rewound(db: sqlite3.Connection, repo: Any, tip: str | None) -> None:
    """If the factory branch no longer holds the commit the last ingestion was made
    on (it was rewound, by a force-push say), what that ingestion delivered may be
    gone: forget what it saw, so the next pass looks at everything again (ingestion
    is idempotent by message id, so nothing is delivered twice)."""
    row = db.execute("SELECT value FROM meta WHERE key = 'ingest_tip'").fetchone()
    last = str(row[0]) if row else ""
    if not last or last == tip:
        return
    if tip is not None and last in repo and repo.descendant_of(tip, last):
        return
    db.execute("DELETE FROM ingest_seen")
    db.execute("DELETE FROM meta WHERE key IN ('mail_delivered_seq', 'ingest_tip')")
