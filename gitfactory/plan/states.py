"""Task states in the derived index: the plan's own tables of the index file.

The store's index (:mod:`gitfactory.store.index`) keeps the raw records: task
records and events. It does not know what a task's events *mean*; it notes which
tasks they touched (``task_dirty``, ``*`` for all of them). Here those tasks are
folded (:func:`gitfactory.plan.tasks.fold`) into ``task_state`` and ``task_deps``,
before any query reads them, in one write transaction. So every question about
the plan (the ready queue, who holds what, counts by state) is one SQL query, and
the fold stays with the plan, above the storage it reads.
"""

from __future__ import annotations

import json
import sqlite3
from typing import TYPE_CHECKING, Any

from gitfactory.plan.tasks import RESTARTS, TERMINAL, Task, fold, state_to_json, summary
from gitfactory.store.index import ALL_TASKS

if TYPE_CHECKING:
    from gitfactory.store.factory import Factory
    from gitfactory.store.index import Index

# These tables live in the index file, whose version is the store's: a change here (or
# to what tasks.summary() returns) must bump store.index.SCHEMA_VERSION, so that every
# existing index is rebuilt.
_SCHEMA = """
CREATE TABLE IF NOT EXISTS task_state(
    id TEXT PRIMARY KEY, state TEXT NOT NULL, lease_until INTEGER, priority INTEGER NOT NULL,
    created TEXT NOT NULL, superseded_by TEXT, labels TEXT NOT NULL, data TEXT NOT NULL,
    summary TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS task_state_queue ON task_state(state, priority, created, id);
CREATE TABLE IF NOT EXISTS task_deps(task TEXT NOT NULL, dep TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS task_deps_task ON task_deps(task);
"""
# A working task whose lease ran out counts as submitted (back in the queue).
_EFFECTIVE = (
    "CASE WHEN s.state = 'working' AND s.lease_until <= :now THEN 'submitted' ELSE s.state END"
)


def _db(factory: Factory) -> sqlite3.Connection:
    """The index, with every touched task folded (the caller refreshed it)."""
    index = factory.index
    if index.dirty_tasks(limit=1):
        index.db.execute("BEGIN IMMEDIATE")
        try:
            _fold(index)
            index.db.execute("COMMIT")
        except BaseException:
            index.db.execute("ROLLBACK")
            raise
    return index.db


def _fold(index: Index) -> None:
    db = index.db
    touched = index.dirty_tasks()  # read again: another process may have folded them
    if not touched:
        return
    for statement in _SCHEMA.split(";"):
        db.execute(statement)  # not executescript: that would commit the transaction
    if ALL_TASKS in touched:
        db.execute("DELETE FROM task_state")
        db.execute("DELETE FROM task_deps")
        touched = set(index.all_task_ids())
    for task_id in touched:
        db.execute("DELETE FROM task_state WHERE id = ?", (task_id,))
        db.execute("DELETE FROM task_deps WHERE task = ?", (task_id,))
        record = index.task_record(task_id)
        if record is None:
            continue
        st = fold(Task.from_record(record), index.task_events(task_id))
        t = st.task
        db.execute(
            "INSERT INTO task_state VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (task_id, st.state, st.lease_until, t.priority, t.created, st.superseded_by,
             json.dumps(list(t.labels)), _dump(state_to_json(st)), _dump(summary(st))),
        )  # fmt: skip
        db.executemany("INSERT INTO task_deps VALUES (?, ?)", [(task_id, d) for d in t.depends_on])
    index.forget_dirty_tasks()


def task_state(factory: Factory, task_id: str) -> dict[str, Any] | None:
    row = _db(factory).execute("SELECT data FROM task_state WHERE id = ?", (task_id,)).fetchone()
    return json.loads(row[0]) if row else None


def task_states(factory: Factory) -> list[dict[str, Any]]:
    rows = _db(factory).execute("SELECT data FROM task_state ORDER BY id").fetchall()
    return [json.loads(r[0]) for r in rows]


def proxies(factory: Factory, peer: str, prefix: str) -> list[str]:
    """Ids of the proxy tasks of requests to ``peer`` whose own id, or the id of the
    peer's task, starts with ``prefix``."""
    rows = _db(factory).execute(
        "SELECT id FROM task_state WHERE json_extract(data, '$.remote.peer') = ? AND "
        "(substr(id, 1, ?) = ? OR substr(json_extract(data, '$.remote.task_id'), 1, ?) = ?) "
        "ORDER BY id",
        (peer, len(prefix), prefix, len(prefix), prefix),
    )
    return [str(r[0]) for r in rows]


def lapsed(factory: Factory, now_ms: int) -> list[str]:
    """Ids of working tasks whose lease ran out by ``now`` (to be expired)."""
    rows = _db(factory).execute(
        "SELECT id FROM task_state WHERE state = 'working' AND lease_until <= ? ORDER BY id",
        (now_ms,),
    )
    return [str(r[0]) for r in rows]


def held_by(factory: Factory, agent: str, now_ms: int) -> list[str]:
    """Ids of the tasks ``agent`` holds as of ``now`` (working with a live lease, or
    waiting for an answer)."""
    rows = _db(factory).execute(
        "SELECT id FROM task_state WHERE json_extract(summary, '$.assignee') = ?"
        " AND (state = 'input_required' OR (state = 'working'"
        " AND (lease_until IS NULL OR lease_until > ?))) ORDER BY id",
        (agent, now_ms),
    )
    return [str(r[0]) for r in rows]


def summaries(
    factory: Factory,
    now_ms: int,
    *,
    ready: bool = False,
    state: str | None = None,
    label: str | None = None,
) -> list[tuple[str, str, int | None]]:
    """(summary JSON, stored state, lease_until) of tasks: the ready queue in its
    order, or every task (optionally in one state as of ``now``) oldest first."""
    where, args = [], {"now": now_ms, "state": state, "label": label}
    if ready:
        where.append(f"{_EFFECTIVE} = 'submitted'")
        where.append(
            "NOT EXISTS (SELECT 1 FROM task_deps d WHERE d.task = s.id"
            " AND d.dep NOT IN (SELECT id FROM met))"
        )
    if state is not None:
        where.append(f"{_EFFECTIVE} = :state")
    if label is not None:
        where.append("EXISTS (SELECT 1 FROM json_each(s.labels) WHERE value = :label)")
    order = "s.priority, s.created, s.id" if ready else "s.created, s.id"
    sql = (
        # Tasks that satisfy a dependency: completed, or superseded by one that does.
        "WITH RECURSIVE met(id) AS (SELECT id FROM task_state WHERE state = 'completed'"
        " UNION SELECT t.id FROM task_state t JOIN met ON t.superseded_by = met.id) "
        f"SELECT s.summary, s.state, s.lease_until FROM task_state s"
        f"{' WHERE ' + ' AND '.join(where) if where else ''} ORDER BY {order}"
    )
    return [(str(r[0]), str(r[1]), r[2]) for r in _db(factory).execute(sql, args)]


def cards(factory: Factory, now_ms: int, only: str | None = None) -> list[tuple[str, str, bool]]:
    """Every task (or ``only`` that one) for a board: (summary JSON, attempts JSON,
    whether it is ready), the queue's order (most urgent, then oldest first)."""
    sql = (
        "WITH RECURSIVE met(id) AS (SELECT id FROM task_state WHERE state = 'completed'"
        " UNION SELECT t.id FROM task_state t JOIN met ON t.superseded_by = met.id) "
        "SELECT s.summary, COALESCE(json_extract(s.data, '$.attempts'), '{}'),"
        f" {_EFFECTIVE} = 'submitted' AND NOT EXISTS (SELECT 1 FROM task_deps d"
        " WHERE d.task = s.id AND d.dep NOT IN (SELECT id FROM met))"
        f" FROM task_state s{' WHERE s.id = :only' if only else ''}"
        " ORDER BY s.priority, s.created, s.id"
    )
    rows = _db(factory).execute(sql, {"now": now_ms, "only": only})
    return [(str(r[0]), str(r[1]), bool(r[2])) for r in rows]


def state_counts(factory: Factory, now_ms: int) -> dict[str, int]:
    """How many tasks are in each state as of ``now`` (a lapsed lease: submitted)."""
    rows = (
        _db(factory)
        .execute(
            "SELECT CASE WHEN state = 'working' AND lease_until <= ? THEN 'submitted'"
            " ELSE state END AS st, COUNT(*) FROM task_state GROUP BY st",
            (now_ms,),
        )
        .fetchall()
    )
    return {str(state): int(n) for state, n in rows}


def stuck(factory: Factory) -> list[tuple[str, str, str, list[str]]]:
    """Dependencies that failed, were canceled or rejected (and nothing replaced):
    (its id, state, title, the submitted tasks that wait for it), oldest first."""
    rows = _db(factory).execute(
        "SELECT d.dep, t.state, json_extract(t.summary, '$.title'), d.task"
        " FROM task_deps d JOIN task_state s ON s.id = d.task JOIN task_state t ON t.id = d.dep"
        " WHERE s.state = 'submitted' AND t.superseded_by IS NULL"
        " AND t.state IN ('failed', 'canceled', 'rejected') ORDER BY t.created, d.dep, s.id"
    )
    out: dict[str, tuple[str, str, list[str]]] = {}
    for dep, state, title, task in rows:
        out.setdefault(str(dep), (str(state), str(title), []))[2].append(str(task))
    return [(dep, state, title, waiting) for dep, (state, title, waiting) in out.items()]


# An event of :kind about task s since it last started again (retried, reopened).
_SINCE_START = (
    "EXISTS (SELECT 1 FROM events e WHERE e.task = s.id AND e.kind = :kind"
    " AND e.id > COALESCE((SELECT MAX(r.id) FROM events r WHERE r.task = s.id"
    f" AND r.kind IN ({', '.join(repr(k) for k in sorted(RESTARTS))})), ''))"
)


def finished_without(factory: Factory, kind: str) -> list[str]:
    """Ids of final tasks that no event of ``kind`` is about since they last started
    again (retried, reopened), oldest first: the tasks still waiting for their
    session summary. A task that finishes again gets another."""
    final = ", ".join(repr(state) for state in sorted(TERMINAL))
    rows = _db(factory).execute(
        f"SELECT id FROM task_state s WHERE state IN ({final}) AND NOT {_SINCE_START}"
        " AND json_extract(s.data, '$.remote') IS NULL"  # a proxy: its session was elsewhere
        " ORDER BY created, id",
        {"kind": kind},
    )
    return [str(r[0]) for r in rows]


def has_since_start(factory: Factory, task_id: str, kind: str) -> bool:
    """Whether an event of ``kind`` is about the task since it last started again."""
    row = (
        _db(factory)
        .execute(
            f"SELECT {_SINCE_START} FROM task_state s WHERE s.id = :task",
            {"kind": kind, "task": task_id},
        )
        .fetchone()
    )
    return bool(row and row[0])


def _dump(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
