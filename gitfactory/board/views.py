"""What a person sees of a factory, as plain values: the board's columns and cards,
the agents at work, the log. The web board, the HTML report and `gitfactory top`
render these; none of them reads records on its own."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any, Self

from gitfactory.config import factory_yaml
from gitfactory.errors import FactoryError
from gitfactory.plan import states, tasks
from gitfactory.store import clock
from gitfactory.store.log import Event, EventQuery

if TYPE_CHECKING:
    from gitfactory.config.factory_yaml import FactoryConfig
    from gitfactory.store.factory import Factory

# (key, title) of the board's columns, left to right.
COLUMNS = (
    ("ready", "Ready"),
    ("working", "Working"),
    ("input_required", "Input required"),
    ("waiting", "Waiting"),
    ("failed", "Failed"),
    ("completed", "Completed"),
    ("closed", "Canceled or rejected"),
)
SHOWN = 200  # cards per column; the column's count says how many there are in all
FINISHED_SHOWN = 50  # of the finished columns, only the newest: history is the log's
NEWEST_FIRST = frozenset({"failed", "completed", "closed"})
FILTER_MAX = 200  # characters of a filter value kept


class _Query:
    """Filters read from a page's query string: each field a string, cut to size."""

    @classmethod
    def of(cls, query: Mapping[str, str]) -> Self:
        return cls(**{f.name: str(query.get(f.name) or "").strip()[:FILTER_MAX]
                      for f in fields(cls)})  # type: ignore[arg-type]  # fmt: skip

    def active(self) -> dict[str, str]:
        """The filters given, as the query string had them."""
        return {f.name: getattr(self, f.name) for f in fields(self)  # type: ignore[arg-type]
                if getattr(self, f.name)}  # fmt: skip


@dataclass(frozen=True)
class Filters(_Query):
    """What the board is narrowed to: a label, the role of the step, words of the title."""

    label: str = ""
    role: str = ""
    text: str = ""

    def keeps(self, card: dict[str, Any]) -> bool:
        if self.label and self.label not in card["labels"]:
            return False
        if self.role and card["role"] != self.role:
            return False
        words = self.text.lower().split()
        seen = f"{card['title']} {card['id']}".lower()
        return all(word in seen for word in words)


def column_of(state: str, ready: bool) -> str:
    """The column a task is shown in, by its state as of now."""
    if state == tasks.SUBMITTED:
        return "ready" if ready else "waiting"
    if state in (tasks.CANCELED, tasks.REJECTED):
        return "closed"
    return state


def step_role(config: FactoryConfig, workflow: str | None, step: str | None) -> str:
    """Who does the step (an agent role, or `factory` for gates and actions)."""
    if not step:
        return ""
    try:
        return config.workflow(workflow).step(step).role
    except (FactoryError, KeyError):  # a workflow or step that factory.yaml no longer has
        return ""


def all_cards(
    factory: Factory, now: int | None = None, only: str | None = None
) -> list[dict[str, Any]]:
    """Every task (or ``only`` that one) as a card, the queue's order (the caller
    refreshed the index)."""
    now = clock.now_ms() if now is None else now
    config = factory_yaml.load(factory)
    cards = []
    for text, attempts, ready in states.cards(factory, now, only):
        row = tasks.as_of(json.loads(text), now)
        step = row["step"] if row["state"] not in tasks.TERMINAL else None
        lease = row.get("lease_until")
        remote = row.get("remote") or {}
        cards.append({
            "id": row["id"], "title": row["title"], "state": row["state"],
            "column": column_of(row["state"], ready), "priority": row["priority"],
            "labels": row["labels"], "holder": row["assignee"], "step": step,
            "attempt": json.loads(attempts).get(step) if step else None,
            "role": step_role(config, row["workflow"], step),
            "lease_until": lease if row["state"] == tasks.WORKING else None,
            "lease_left_s": _left(lease, now) if row["state"] == tasks.WORKING else None,
            "depends_on": row["depends_on"], "created": row["created"],
            "peer": remote.get("peer"), "cancel_requested": bool(row["cancel_requested"]),
            "superseded_by": row.get("superseded_by"),
        })  # fmt: skip
    return cards


def board(factory: Factory, filters: Filters | None = None, shown: int = SHOWN) -> dict[str, Any]:
    """The board: each column's count and its first ``shown`` cards (filtered)."""
    filters = filters or Filters()
    factory.require_tip()
    refresh = factory.index.refresh()
    now = clock.now_ms()
    every = all_cards(factory, now)
    kept = [c for c in every if filters.keeps(c)]
    columns: list[dict[str, Any]] = []
    for key, title in COLUMNS:
        cards = [c for c in kept if c["column"] == key]
        if key in NEWEST_FIRST:
            cards.sort(key=lambda c: c["created"], reverse=True)
        limit = min(shown, FINISHED_SHOWN) if key in ("completed", "closed") else shown
        columns.append({"key": key, "title": title, "count": len(cards), "cards": cards[:limit]})
    listed = [c for column in columns for c in column["cards"]]
    _decorate(factory, listed)
    _explain(factory, listed, {c["id"]: c for c in every}, now)
    config = factory_yaml.load(factory)
    return {
        "factory": config.name, "tip": refresh.tip,
        "total": len(every), "matching": len(kept), "filters": filters.active(),
        "labels": sorted({label for c in every for label in c["labels"]}),
        "roles": sorted({c["role"] for c in every if c["role"]}
                        | {a.role for a in config.agents.values()}),
        "columns": columns, "now": clock.format_time(now),
    }  # fmt: skip


def _decorate(factory: Factory, cards: list[dict[str, Any]]) -> None:
    """Short ids; on a task held now, since when (claimed, or asked); on a task that
    waits for an answer, its question."""
    short = factory.index.short_ids("tasks", [c["id"] for c in cards])
    for c in cards:
        c["short"] = short[c["id"]]
        c["question"] = question(factory, c["id"]) if c["column"] == "input_required" else None
        c["since"] = _since(factory, c) if c["column"] in SINCE else None


WARN_AT = 0.75  # a run that used this much of its time limit is shown as a warning


def _explain(factory: Factory, cards: list[dict[str, Any]], by_id: dict[str, Any],
             now: int) -> None:  # fmt: skip
    """What a lead must see on a card at once: a run's share of its time limit and
    how long it has been silent; why a task failed; what a waiting task waits for,
    and whether that can still come."""
    from gitfactory.run.runs import RunBook

    book = RunBook(factory.paths.factory_dir)
    runs = {r.task: r for r in book.active()}
    for c in cards:
        run = runs.get(c["id"]) if c["column"] == "working" else None
        c["run"] = _run_of(book, run, now) if run is not None else None
        c["why"] = why_ended(factory, c["id"]) if c["column"] in ("failed", "closed") else None
        deps = [by_id[d] for d in c["depends_on"] if d in by_id]
        c["open_deps"] = [d for d in deps if d["column"] != "completed"]
        c["blocked_by"] = [d["id"] for d in deps if d["column"] in ("failed", "closed")]


def _run_of(book: Any, run: Any, now: int) -> dict[str, Any]:
    limit = max(0, (run.deadline_ms - run.started_ms) // 1000)
    progress = _progress(run.started_ms, run.deadline_ms, now)
    try:
        quiet = max(0, int(now / 1000 - book.transcript(run.id).stat().st_mtime))
    except OSError:
        quiet = None
    return {"elapsed_s": max(0, (now - run.started_ms) // 1000), "limit_s": limit,
            "progress": progress, "warn": progress is not None and progress >= WARN_AT,
            "quiet_s": quiet}  # fmt: skip


def why_ended(factory: Factory, task_id: str) -> str | None:
    """Why a final task ended so: its last step end's reason and words, or the word
    that ended it."""
    last = _newest(factory, task_id, ("task.step_done", "task.overridden", "task.failed",
                                      "task.canceled", "task.rejected"))  # fmt: skip
    if last is None:
        return None
    why = str(last.data.get("why") or last.data.get("reason") or "")
    return ": ".join(p for p in (why, last.text) if p) or None


# What a held task's time counts from: the latest of these events about it.
SINCE = {"working": ("task.claimed", "task.answered"), "input_required": ("task.asked",)}


def _since(factory: Factory, card: dict[str, Any]) -> str | None:
    found = _newest(factory, card["id"], SINCE[card["column"]])
    return found.time if found is not None else None


def question(factory: Factory, task_id: str) -> str | None:
    """The question a task waits on (its newest `task.asked`)."""
    asked = _newest(factory, task_id, ("task.asked",))
    return asked.text if asked is not None else None


def _newest(factory: Factory, task_id: str, kinds: tuple[str, ...]) -> Event | None:
    """The newest event about the task of any of ``kinds``."""
    found = [
        e
        for kind in kinds
        for _, e in factory.index.events(EventQuery(kind=kind, task=task_id, limit=1))
    ]
    return max(found, key=lambda e: e.id, default=None)


def _left(lease: str | None, now: int) -> int | None:
    return None if not lease else max(0, (clock.parse_time(lease) - now) // 1000)


# -- the agents --------------------------------------------------------------------

RECENT = 30  # finished runs listed


def agents(factory: Factory) -> dict[str, Any]:
    """Who runs what now on this machine (the daemon's runs), who else holds a task,
    and the most recent runs with their outcomes."""
    from gitfactory.run import service
    from gitfactory.run.runs import RunBook, last_lines

    factory.require_tip()
    factory.index.refresh()
    now = clock.now_ms()
    book = RunBook(factory.paths.factory_dir)
    runs = sorted(book.active(), key=lambda r: r.started_ms)
    titles = _titles(factory, [r.task for r in runs])
    running = [{
        "agent": r.agent, "task": r.task, "title": titles.get(r.task, ""), "step": r.step,
        "attempt": r.attempt, "kind": r.kind, "since": clock.format_time(r.started_ms),
        "worktree": r.worktree, "branch": r.branch, "pid": r.pid, **_run_of(book, r, now),
        "output": list(last_lines(book.transcript(r.id), lines=3)),
    } for r in runs]  # fmt: skip
    by_run = {r["task"] for r in running}
    held = [c for c in all_cards(factory, now)
            if c["column"] in ("working", "input_required") and c["id"] not in by_run]  # fmt: skip
    _decorate(factory, held)
    finished = factory.index.events(EventQuery(kind="dispatch.finished", limit=RECENT))
    recent = [_finished(e) for _, e in reversed(finished)]
    titles = _titles(factory, [r["task"] for r in (*running, *recent) if r["task"]])
    short = factory.index.short_ids("tasks", titles)
    for row in (*running, *recent):
        row["short"] = short.get(row["task"] or "", "")
        row["title"] = titles.get(row["task"] or "", "")
    busy = {r["agent"] for r in running}
    idle = [{"agent": f"{a.role}/{a.name}", "role": a.role}
            for a in factory_yaml.load(factory).agents.values()
            if f"{a.role}/{a.name}" not in busy]  # fmt: skip
    return {"running": running, "held": held, "recent": recent, "idle": idle,
            "daemon": service.running(factory)}  # fmt: skip


def _progress(started: int, deadline: int, now: int) -> float | None:
    """How much of its time limit a run has used (0 to 1)."""
    if deadline <= started:
        return None
    return round(min(1.0, max(0.0, (now - started) / (deadline - started))), 3)


_HOW = {"step_done": "ended its step", "trailer": "ended its step"}


def _finished(e: Event) -> dict[str, Any]:
    d = e.data
    return {"agent": str(d.get("agent") or e.actor), "task": e.task, "step": d.get("step"),
            "outcome": d.get("outcome") or _HOW.get(str(d.get("how")), d.get("how")),
            "how": d.get("how"),
            "exit_code": d.get("exit_code"), "duration_ms": d.get("duration_ms"),
            "time": e.time, "text": e.text}  # fmt: skip


def _titles(factory: Factory, task_ids: list[str]) -> dict[str, str]:
    titles = {}
    for task_id in set(task_ids):
        record = factory.index.task_record(task_id)
        if record is not None:
            titles[task_id] = str(record.get("title", ""))
    return titles


# -- the log -------------------------------------------------------------------------

LOG_SHOWN = 200  # events per page
LOG_SCAN = 5000  # events searched for a text filter


@dataclass(frozen=True)
class LogFilters(_Query):
    kind: str = ""  # a kind, or its family: `gate` matches gate.result and gate.scenario
    task: str = ""
    actor: str = ""
    text: str = ""


def log(
    factory: Factory, filters: LogFilters | None = None, after_seq: int | None = None,
    limit: int = LOG_SHOWN, before_seq: int | None = None,
) -> dict[str, Any]:  # fmt: skip
    """The newest events that match, oldest first, each with its index sequence (a
    page asks for what came after the last one it shows)."""
    from gitfactory.plan import lookup

    filters = filters or LogFilters()
    factory.require_tip()
    refresh = factory.index.refresh()
    task = lookup.resolve(factory, filters.task) if filters.task else None
    exact = filters.kind if "." in filters.kind else None
    scan = limit if not (filters.text or (filters.kind and not exact)) else LOG_SCAN
    found = factory.index.events(EventQuery(kind=exact, task=task, actor=filters.actor or None,
                                            after_seq=after_seq, before_seq=before_seq,
                                            limit=scan))  # fmt: skip
    words = filters.text.lower().split()
    family = f"{filters.kind}." if filters.kind and not exact else None
    rows = [(seq, e) for seq, e in found
            if (family is None or e.kind.startswith(family))
            and all(w in f"{e.kind} {e.actor} {e.text}".lower() for w in words)]  # fmt: skip
    rows = rows[-limit:]
    short = factory.index.short_ids("tasks", {e.task for _, e in rows if e.task})
    events = [{
        "seq": seq, "id": e.id, "kind": e.kind, "actor": e.actor, "time": e.time,
        "task": e.task, "short": short.get(e.task or "", ""), "text": e.text,
    } for seq, e in rows]  # fmt: skip
    last = factory.index.events(EventQuery(after_seq=after_seq or 0, limit=1))  # the highest
    older = bool(rows) and bool(
        factory.index.events(
            EventQuery(
                kind=exact, task=task, actor=filters.actor or None, before_seq=rows[0][0], limit=1
            )
        )
    )
    return {"events": events, "filters": filters.active(), "tip": refresh.tip,
            "last_seq": max([after_seq or 0, *(s for s, _ in last)]),
            "total": factory.index.counts().get("event", 0), "before": before_seq,
            "older": rows[0][0] if older else None}  # fmt: skip
