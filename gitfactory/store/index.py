"""The derived SQLite index under .git/gitfactory/ (never committed, always disposable).

It remembers the factory commit and ``.factory`` tree it last saw; a refresh diffs that
tree against the tip's, descending only into changed subtrees, and parses just the
records that are new. Deleting the file loses nothing: the next query rebuilds it.
Nothing is ever written back from here to git (DESIGN I1).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gitfactory.errors import InvalidRecordError
from gitfactory.store import clock, ids, index_mail, records
from gitfactory.store.log import Event, EventQuery

if TYPE_CHECKING:
    from gitfactory.store.factory import Factory

# Bump on every change to the tables below, or to the plan's own tables in this file
# (gitfactory.plan.states): an index file at this version is opened without replaying
# the schema, and any other version is deleted and rebuilt.
SCHEMA_VERSION = "11"  # 11: proxy tasks (SPEC §20)
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS records(
    path TEXT PRIMARY KEY, id TEXT NOT NULL, kind TEXT NOT NULL, blob TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS invalid(
    path TEXT PRIMARY KEY, blob TEXT NOT NULL, field TEXT, reason TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS events(
    seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, kind TEXT NOT NULL,
    actor TEXT NOT NULL, time TEXT NOT NULL, time_ms INTEGER NOT NULL, task TEXT,
    text TEXT NOT NULL, data TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS events_kind ON events(kind, id);
CREATE INDEX IF NOT EXISTS events_task ON events(task, id);
CREATE INDEX IF NOT EXISTS events_actor ON events(actor, id);
CREATE INDEX IF NOT EXISTS events_time ON events(time_ms);
CREATE TABLE IF NOT EXISTS tasks(id TEXT PRIMARY KEY, record TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS task_dirty(id TEXT PRIMARY KEY);
CREATE TABLE IF NOT EXISTS artifacts(id TEXT PRIMARY KEY, task TEXT, record TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS artifacts_task ON artifacts(task, id);
CREATE TABLE IF NOT EXISTS parcels(
    path TEXT PRIMARY KEY, id TEXT NOT NULL, box TEXT NOT NULL, peer TEXT NOT NULL,
    type TEXT NOT NULL, record TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS parcels_peer ON parcels(box, peer, type, id);
"""
_ID_TABLES = ("tasks", "messages", "artifacts", "events")
_FEW = 64  # up to this many ids get their short forms from their neighbours alone
_EVENT_COLUMNS = "id, kind, actor, time, task, text, data"
# In task_dirty: every task is to be folded again (the plan's tables start over).
ALL_TASKS = "*"
_DATA_TABLES = (
    "records", "invalid", "events", "tasks", "task_dirty", "artifacts", "parcels",
    *index_mail.TABLES
)  # fmt: skip


@dataclass(frozen=True)
class Refresh:
    """What one refresh did."""

    tip: str | None
    added: int
    removed: int
    invalid: int
    rebuilt: bool


class Index:
    def __init__(self, factory: Factory) -> None:
        self.factory = factory
        self.path: Path = factory.paths.factory_dir / "index.sqlite"
        self.path.parent.mkdir(exist_ok=True)
        self.db = self._connect()
        # Told how many records a long refresh has read so far (a terminal's progress).
        self.on_progress: Callable[[int], None] | None = None

    def _connect(self) -> sqlite3.Connection:
        try:
            return self._open()
        except sqlite3.DatabaseError:
            # Corrupt or from another version: it is derived, so start over.
            for suffix in ("", "-wal", "-shm"):
                Path(f"{self.path}{suffix}").unlink(missing_ok=True)
            return self._open()

    def _open(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=60, isolation_level=None)
        db.execute("PRAGMA synchronous=NORMAL")
        try:
            version = self._meta(db, "schema")
        except sqlite3.OperationalError:
            version = None  # a new file: no tables yet
        if version == SCHEMA_VERSION:
            return db  # the common case: one query, no schema statements
        if version is not None:
            raise sqlite3.DatabaseError(f"index schema {version}, wanted {SCHEMA_VERSION}")
        db.execute("PRAGMA journal_mode=WAL")  # persistent: set once per file
        db.executescript(_SCHEMA)
        index_mail.create(db)
        db.execute("INSERT OR IGNORE INTO task_dirty VALUES (?)", (ALL_TASKS,))
        db.execute("INSERT OR IGNORE INTO meta VALUES ('schema', ?)", (SCHEMA_VERSION,))
        return db

    @staticmethod
    def _meta(db: sqlite3.Connection, key: str) -> str | None:
        row = db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return str(row[0]) if row else None

    def indexed_tip(self) -> str | None:
        return self._meta(self.db, "tip")

    # -- keeping up with the branch -------------------------------------------

    def refresh(self, tip: str | None = None) -> Refresh:
        """Bring the index up to the branch tip (or ``tip``); cheap when already there."""
        tip = tip if tip is not None else self.factory.tip()
        if tip == self.indexed_tip():
            return Refresh(tip, 0, 0, 0, False)
        self.db.execute("BEGIN IMMEDIATE")
        try:
            result = self._refresh_locked(tip)
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        return result

    def rebuild(self) -> Refresh:
        """Forget everything and index the whole branch again."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            for table in _DATA_TABLES:
                self.db.execute(f"DELETE FROM {table}")
            self.db.execute("INSERT INTO task_dirty VALUES (?)", (ALL_TASKS,))
            self.db.execute("DELETE FROM meta WHERE key IN ('tip', 'tree')")
            result = self._refresh_locked(self.factory.tip())
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        return Refresh(result.tip, result.added, result.removed, result.invalid, True)

    def _refresh_locked(self, tip: str | None) -> Refresh:
        # Another process may have refreshed while we waited for the write lock.
        if tip == self.indexed_tip() and tip is not None:
            return Refresh(tip, 0, 0, 0, False)
        store = self.factory.store
        old_tree = self._meta(self.db, "tree")
        rebuilt = False
        if old_tree is not None and not store.has_object(old_tree):
            # The tree we indexed is gone (history rewritten and pruned): start over.
            for table in _DATA_TABLES:
                self.db.execute(f"DELETE FROM {table}")
            self.db.execute("INSERT INTO task_dirty VALUES (?)", (ALL_TASKS,))
            old_tree, rebuilt = None, True
        new_tree = store.factory_tree(tip)
        added: list[tuple[records.RecordKind, str, str, dict[str, Any]]] = []
        removed = invalid = 0
        for n, (path, old_blob, new_blob, mode) in enumerate(store.diff_trees(old_tree, new_tree)):
            if self.on_progress is not None and n % 500 == 499:
                self.on_progress(n + 1)
            kind = records.kind_of(path)
            if kind is None:
                continue  # factory.yaml, documents, directories of later protocol versions
            if old_blob is not None:
                removed += self._forget(path)
            if new_blob is None:
                continue
            try:
                added.append((kind, path, new_blob, self._parse(kind, path, new_blob, mode)))
            except InvalidRecordError as exc:
                invalid += 1
                self.db.execute(
                    "INSERT OR REPLACE INTO invalid VALUES (?, ?, ?, ?)",
                    (path, new_blob, exc.field, exc.reason),
                )
        added.sort(key=lambda item: item[3]["id"])
        for kind, path, blob, record in added:
            self._insert(kind, path, blob, record)
        touched = {
            r["id"] if k is records.TASK else r.get("task")
            for k, _, _, r in added
            if k is records.TASK or str(r.get("kind", "")).startswith("task.")
        }
        # The plan folds these before it answers (gitfactory.plan.states); a removed
        # record can change any task, so then all of them are folded again.
        dirty = [ALL_TASKS] if removed else sorted(t for t in touched if t is not None)
        self.db.executemany("INSERT OR IGNORE INTO task_dirty VALUES (?)", [(t,) for t in dirty])

        self.db.executemany(
            "INSERT OR REPLACE INTO meta VALUES (?, ?)",
            [("tip", tip or ""), ("tree", new_tree or "")],
        )
        if new_tree is None:
            self.db.execute("DELETE FROM meta WHERE key = 'tree'")
        return Refresh(tip, len(added), removed, invalid, rebuilt)

    def _parse(self, kind: records.RecordKind, path: str, blob: str, mode: int) -> dict[str, Any]:
        if mode != 0o100644 and mode != 0o100755:
            raise InvalidRecordError(path, None, "not a regular file (symlinks are refused)")
        return records.decode(kind, path, self.factory.store.blob(blob))

    def _forget(self, path: str) -> int:
        self.db.execute("DELETE FROM invalid WHERE path = ?", (path,))
        row = self.db.execute("SELECT id, kind FROM records WHERE path = ?", (path,)).fetchone()
        if row is None:
            return 0
        self.db.execute("DELETE FROM records WHERE path = ?", (path,))
        if row[1] == records.EVENT.name:
            self.db.execute("DELETE FROM events WHERE id = ?", (row[0],))
            index_mail.forget_receipt(self.db, row[0])
        elif row[1] == records.TASK.name:
            self.db.execute("DELETE FROM tasks WHERE id = ?", (row[0],))
        elif row[1] == records.MESSAGE.name:
            index_mail.forget_message(self.db, row[0])
        elif row[1] == records.ARTIFACT.name:
            self.db.execute("DELETE FROM artifacts WHERE id = ?", (row[0],))
        elif row[1] == records.PARCEL:
            self.db.execute("DELETE FROM parcels WHERE path = ?", (path,))
        return 1

    def _insert(
        self, kind: records.RecordKind, path: str, blob: str, record: dict[str, Any]
    ) -> None:
        self.db.execute(
            "INSERT OR REPLACE INTO records VALUES (?, ?, ?, ?)",
            (path, record["id"], kind.name, blob),
        )
        if kind is records.TASK:
            self.db.execute(
                "INSERT OR REPLACE INTO tasks VALUES (?, ?)",
                (record["id"], json.dumps(record, ensure_ascii=False)),
            )
        if kind is records.EVENT:
            event = Event.from_record(record)
            self.db.execute(
                "INSERT OR REPLACE INTO events(id, kind, actor, time, time_ms, task, text, data)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    event.id,
                    event.kind,
                    event.actor,
                    event.time,
                    clock.parse_time(event.time),
                    event.task,
                    event.text,
                    json.dumps(event.data, ensure_ascii=False, sort_keys=True),
                ),
            )
            if event.kind.startswith("mail."):
                index_mail.insert_receipt(self.db, event)
        if kind is records.MESSAGE:
            index_mail.insert_message(self.db, record)
        if kind is records.ARTIFACT:
            self.db.execute(
                "INSERT OR REPLACE INTO artifacts VALUES (?, ?, ?)",
                (record["id"], record.get("task"), json.dumps(record, ensure_ascii=False)),
            )
        if kind.name == records.PARCEL:
            box, peer = kind.directory.split("/")
            self.db.execute(
                "INSERT OR REPLACE INTO parcels VALUES (?, ?, ?, ?, ?, ?)",
                (path, record["id"], box, peer, record["type"],
                 json.dumps(record, ensure_ascii=False)),
            )  # fmt: skip

    # -- queries ----------------------------------------------------------------

    def events(self, query: EventQuery) -> list[tuple[int, Event]]:
        """Matching events in fold order (by id), newest last, with their index sequence."""
        q = query
        given = [(test, value) for test, value in (
            ("kind = ?", q.kind), ("task = ?", q.task), ("actor = ?", q.actor),
            ("time_ms >= ?", q.since_ms), ("seq > ?", q.after_seq), ("seq < ?", q.before_seq),
        ) if value is not None]  # fmt: skip
        args: list[str | int] = [value for _, value in given]
        sql = f"SELECT seq, {_EVENT_COLUMNS} FROM events"
        if given:
            sql += " WHERE " + " AND ".join(test for test, _ in given)
        by_seq = q.after_seq is not None or q.before_seq is not None
        sql += f" ORDER BY {'seq' if by_seq else 'id'} DESC"
        if q.limit is not None:
            sql += " LIMIT ?"
            args.append(q.limit)
        rows = self.db.execute(sql, args).fetchall()
        return [(row[0], _event(row[1:])) for row in reversed(rows)]

    def all_task_ids(self) -> list[str]:
        return [str(r[0]) for r in self.db.execute("SELECT id FROM tasks ORDER BY id")]

    def task_record(self, task_id: str) -> dict[str, Any] | None:
        """The task record as committed (its state is the plan's fold of its events)."""
        row = self.db.execute("SELECT record FROM tasks WHERE id = ?", (task_id,)).fetchone()
        return json.loads(row[0]) if row else None

    def task_events(self, task_id: str) -> list[Event]:
        rows = self.db.execute(
            f"SELECT {_EVENT_COLUMNS} FROM events WHERE task = ? ORDER BY id", (task_id,)
        ).fetchall()
        return [_event(r) for r in rows]

    def dirty_tasks(self, limit: int | None = None) -> set[str]:
        """Tasks whose record or events changed since the plan last folded them
        (:data:`ALL_TASKS` among them: all of them)."""
        sql = "SELECT id FROM task_dirty" + (f" LIMIT {int(limit)}" if limit else "")
        return {str(r[0]) for r in self.db.execute(sql)}

    def forget_dirty_tasks(self) -> None:
        self.db.execute("DELETE FROM task_dirty")

    def event_count(self, kind: str) -> int:
        row = self.db.execute("SELECT COUNT(*) FROM events WHERE kind = ?", (kind,)).fetchone()
        return int(row[0])

    def last_seq(self) -> int:
        row = self.db.execute("SELECT MAX(seq) FROM events").fetchone()
        return int(row[0] or 0)

    def counts(self) -> dict[str, int]:
        rows = self.db.execute("SELECT kind, COUNT(*) FROM records GROUP BY kind").fetchall()
        return {str(kind): int(n) for kind, n in rows}

    def artifacts(self, task: str | None = None) -> list[dict[str, Any]]:
        sql, args = "SELECT record FROM artifacts", []
        if task is not None:
            sql, args = sql + " WHERE task = ?", [task]
        return [json.loads(r[0]) for r in self.db.execute(sql + " ORDER BY id", args)]

    def ids_starting(self, table: str, prefix: str, limit: int = ids.CANDIDATES + 1) -> list[str]:
        """Ids of ``table`` (tasks, messages, artifacts, events) that start with
        ``prefix``, in order; at most ``limit``."""
        assert table in _ID_TABLES
        sql = f"SELECT id FROM {table} WHERE id >= ? AND id < ? ORDER BY id LIMIT ?"
        return [str(r[0]) for r in self.db.execute(sql, (prefix, prefix + "\x7f", limit))]

    def ids_ending(self, table: str, tail: str, limit: int = ids.CANDIDATES + 1) -> list[str]:
        """Ids of ``table`` that end with ``tail`` (a scan: the ids of messages and
        artifacts begin with their time, and older listings showed their last 8)."""
        assert table in _ID_TABLES
        sql = f"SELECT id FROM {table} WHERE substr(id, -?) = ? ORDER BY id LIMIT ?"
        return [str(r[0]) for r in self.db.execute(sql, (len(tail), tail, limit))]

    def short_ids(self, table: str, wanted: Iterable[str]) -> dict[str, str]:
        """The short form of each id in ``wanted``: its shortest prefix that no other
        id of ``table`` starts with (at least :data:`ids.SHOWN` characters)."""
        assert table in _ID_TABLES
        wanted = set(wanted)
        if len(wanted) > _FEW:  # a listing: one pass over every id of the kind
            every = [str(r[0]) for r in self.db.execute(f"SELECT id FROM {table}")]
            short = ids.shortest_unique_prefixes([*every, *wanted])
            return {w: short[w] for w in wanted}
        return {w: ids.unique_prefix(w, *self._neighbours(table, w)) for w in wanted}

    def short_id(self, table: str, record_id: str) -> str:
        return self.short_ids(table, [record_id])[record_id]

    def _neighbours(self, table: str, record_id: str) -> tuple[str | None, str | None]:
        before = self.db.execute(
            f"SELECT id FROM {table} WHERE id < ? ORDER BY id DESC LIMIT 1", (record_id,)
        ).fetchone()
        after = self.db.execute(
            f"SELECT id FROM {table} WHERE id > ? ORDER BY id LIMIT 1", (record_id,)
        ).fetchone()
        return (before[0] if before else None), (after[0] if after else None)

    def artifact(self, artifact_id: str) -> dict[str, Any] | None:
        sql = "SELECT record FROM artifacts WHERE id = ?"
        row = self.db.execute(sql, (artifact_id,)).fetchone()
        return json.loads(row[0]) if row else None

    def record_blob(self, path: str) -> str | None:
        """The blob at ``path`` as indexed, valid record or not."""
        for table in ("records", "invalid"):
            row = self.db.execute(f"SELECT blob FROM {table} WHERE path = ?", (path,)).fetchone()
            if row is not None:
                return str(row[0])
        return None

    def invalid(self, prefix: str = "") -> list[InvalidRecordError]:
        rows = self.db.execute(
            "SELECT path, field, reason FROM invalid WHERE path LIKE ? ORDER BY path",
            (prefix + "%",),
        ).fetchall()
        return [InvalidRecordError(path, field, reason) for path, field, reason in rows]


def _event(row: tuple[Any, ...]) -> Event:
    record_id, kind, actor, time, task, text, data = row
    return Event(record_id, kind, actor, time, task, text, json.loads(data))
