"""The execution log: append-only event records, and the queries over them."""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from gitfactory.errors import InvalidRecordError, UsageError
from gitfactory.store import actors, clock, ids, records
from gitfactory.store.records import EVENT

if TYPE_CHECKING:
    from gitfactory.store.branch import Commit
    from gitfactory.store.factory import Factory

_RELATIVE = re.compile(r"^(\d+)\s*(s|m|h|d|w)$")


@dataclass(frozen=True)
class Draft:
    """An event before it has an id and a time."""

    kind: str
    actor: str
    text: str = ""
    task: str | None = None
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class EventQuery:
    kind: str | None = None
    task: str | None = None
    actor: str | None = None
    since_ms: int | None = None
    limit: int | None = None
    after_seq: int | None = None
    before_seq: int | None = None  # a page of older events, newest of them last


@dataclass(frozen=True)
class Event:
    id: str
    kind: str
    actor: str
    time: str
    task: str | None
    text: str
    data: dict[str, Any]

    @property
    def path(self) -> str:
        return EVENT.path(self.id)

    def to_record(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "actor": self.actor,
            "time": self.time,
            "task": self.task,
            "text": self.text,
            "data": self.data,
        }

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Event:
        return cls(
            id=record["id"],
            kind=record["kind"],
            actor=record["actor"],
            time=record["time"],
            task=record.get("task"),
            text=record.get("text", ""),
            data=record.get("data", {}),
        )


def stamp(draft: Draft, now_ms: int | None = None) -> Event:
    """Give a draft its id and time (one clock read for both), and validate it."""
    record_id = ids.new_id(now_ms)
    event = Event(
        id=record_id,
        kind=draft.kind,
        actor=draft.actor,
        time=clock.format_time(ids.id_ms(record_id)),
        task=draft.task,
        text=draft.text,
        data=draft.data,
    )
    records.validate(EVENT, event.path, event.to_record())
    return event


# Kinds gitfactory writes itself: the plan folds task.* events, gates and merges
# vouch with theirs. Input from a user (`log append`) may not write them.
RESERVED = ("artifact", "config", "daemon", "dispatch", "doc", "docs", "factory", "gate", "gc",
            "mail", "merge", "peer", "repair", "scenario", "session", "step", "sync", "task",
            "verify", "worktree")  # fmt: skip


def new_event(draft: Draft, where: str = "") -> Event:
    """:func:`stamp` for input from a user: a bad field is a usage error, not a bad record,
    and the kinds and actors the factory keeps for itself are refused."""
    head = draft.kind.split(".")[0] if isinstance(draft.kind, str) else ""
    if "." in str(draft.kind) and head in RESERVED:
        raise UsageError(
            f"{where}kind {draft.kind!r} is gitfactory's own: `log append` cannot write {head}.*",
            hint=f"use a kind of your own (e.g. note, build.failed); {head}.* events are "
            "written by the commands that do what they record",
        )
    if isinstance(draft.actor, str):
        actors.acting(draft.actor, f"{where}actor")
    try:
        event = stamp(draft)
    except InvalidRecordError as exc:
        field = f"{exc.field}: " if exc.field else ""
        raise UsageError(f"{where}{field}{exc.reason}") from None
    size = len(records.encode(event.to_record()))
    if size > EVENT.max_bytes:
        raise UsageError(
            f"{where}the event would be {size:,} bytes as written, over the limit of "
            f"{EVENT.max_bytes:,}",
            hint="keep large content in an artifact (`gitfactory artifact put`) and name it",
        )
    return event


def append(factory: Factory, events: Sequence[Event]) -> Commit:
    """Write events in one commit (a group commit when there are many)."""
    from gitfactory.store.branch import Change

    if not events:
        raise UsageError("nothing to append: no events given")
    factory.require_tip()
    change = Change(
        files={e.path: records.encode(e.to_record()) for e in events},
        subject=subject(events),
        trailers=[("Factory-Record", f"event {e.id}") for e in events],
    )
    return factory.store.write(change)


def subject(events: Sequence[Event]) -> str:
    """A commit subject a human can scan in `git log factory --oneline`."""
    if len(events) == 1:
        e = events[0]
        task = f" [task {e.task}]" if e.task else ""
        text = clip(e.text.splitlines()[0], 60) if e.text else ""
        return f"log: {e.kind} by {e.actor}{task}" + (f": {text}" if text else "")
    kinds = Counter(e.kind for e in events)
    summary = ", ".join(f"{k} x{n}" for k, n in kinds.most_common(4))
    more = ", ..." if len(kinds) > 4 else ""
    return f"log: {len(events)} events ({summary}{more})"


def clip(text: str, limit: int) -> str:
    """``text`` on one line in at most ``limit`` characters, for a commit subject: cut
    at a word boundary, with an ellipsis, so that no word is shown in part."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    space = cut.rfind(" ")
    if space >= limit // 2:  # a long word at the end is cut only if nothing else can be
        cut = cut[:space]
    return cut.rstrip(" ,;:.-") + "…"


def parse_since(text: str, now: datetime | None = None) -> int:
    """Milliseconds since the epoch for --since: '15m', '2h', '3d', '1w' or an ISO date/time.

    A date or time without a zone is the local time, as in `git log --since`.
    """
    now = now or datetime.fromtimestamp(clock.now_ms() / 1000, tz=UTC)
    if _RELATIVE.match(text.strip()):
        return int(now.timestamp() * 1000) - clock.parse_duration(text, "--since")
    try:
        dt = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(
            f"cannot read --since {text!r}",
            hint="use a duration like 30s, 15m, 2h, 3d, 1w, or a time like "
            "2026-11-22 or 2026-11-22T10:30:00Z",
        ) from None
    if dt.tzinfo is None:
        dt = dt.astimezone()
    return int(dt.timestamp() * 1000)


_STDIN_FIELDS = ("kind", "text", "task", "actor", "data")


def events_from_lines(lines: Iterable[str], default_actor: str) -> list[Event]:
    """Parse `log append --stdin` input: one JSON object per line, blank lines skipped.

    Every line is checked before anything is written, so bad input writes nothing.
    """
    events = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        where = f"stdin line {number}"
        try:
            obj = records.loads(line)
        except json.JSONDecodeError as exc:
            raise UsageError(f"{where}: not valid JSON ({exc.msg} at column {exc.colno})") from None
        except (ValueError, RecursionError) as exc:
            why = "nested too deep" if isinstance(exc, RecursionError) else str(exc)
            raise UsageError(f"{where}: not valid JSON ({why})") from None
        if not isinstance(obj, dict):
            raise UsageError(f'{where}: expected a JSON object like {{"kind": "note"}}')
        unknown = sorted(set(obj) - set(_STDIN_FIELDS))
        if unknown:
            raise UsageError(
                f"{where}: unknown field {unknown[0]!r}", hint=f"fields: {', '.join(_STDIN_FIELDS)}"
            )
        if "kind" not in obj:
            raise UsageError(f"{where}: field 'kind' is required")
        draft = Draft(
            kind=obj["kind"],
            actor=obj.get("actor") or default_actor,
            text=obj.get("text") or "",
            task=obj.get("task"),
            data=obj.get("data") or {},
        )
        events.append(new_event(draft, f"{where}: "))
    return events


def query(
    factory: Factory, q: EventQuery
) -> tuple[list[tuple[int, Event]], list[InvalidRecordError]]:
    """Events matching ``q`` (newest last) and the invalid files in the log directory."""
    index = factory.index
    index.refresh()
    return index.events(q), index.invalid(EVENT.prefix)


def follow(factory: Factory, q: EventQuery, after_seq: int, poll: float = 0.2) -> Iterator[Event]:
    """Yield events as they are committed, forever; ``after_seq`` from :func:`query`."""
    index = factory.index
    while True:
        index.refresh()
        for seq, event in index.events(
            EventQuery(q.kind, q.task, q.actor, q.since_ms, None, after_seq)
        ):
            after_seq = seq
            yield event
        time.sleep(poll)
