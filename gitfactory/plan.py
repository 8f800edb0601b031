"""The production plan: tasks, their lifecycle, the ready queue, claims with leases.

A task is an immutable record (``.factory/tasks/…/<id>.md``); everything that happens
to it is a ``task.*`` event in the execution log. Its state is a fold of those events
(:func:`fold`). Events that change the state carry ``data.seq``, the number of state
events the writer saw; the fold accepts a state event only if its ``seq`` is the next
one and the move is legal, so decisions made under the store's compare-and-swap (a
claim, say) stay exclusive whatever the writers' clocks say, and two merged histories
fold the same way everywhere (the lower id wins a tie).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from gitfactory import clock, ids, records
from gitfactory.errors import FactoryError, InvalidRecordError, UsageError
from gitfactory.log import Draft, Event, stamp
from gitfactory.workflow import DONE
from gitfactory.workflow import FAILED as FAILED_STEP

if TYPE_CHECKING:
    from gitfactory.factory import Factory

SUBMITTED, WORKING, INPUT_REQUIRED = "submitted", "working", "input_required"
COMPLETED, FAILED, CANCELED, REJECTED = "completed", "failed", "canceled", "rejected"
STATES = (SUBMITTED, WORKING, INPUT_REQUIRED, COMPLETED, FAILED, CANCELED, REJECTED)
TERMINAL = frozenset({COMPLETED, FAILED, CANCELED, REJECTED})
DEFAULT_PRIORITY = 2
DEFAULT_LEASE_MS = 15 * 60 * 1000


@dataclass(frozen=True)
class Move:
    """A state event: from which states, and to which (None: the state stays).

    While a task is working, only its lease holder may move it (anyone may record
    that the lease ran out).
    """

    sources: frozenset[str]
    target: str | None
    verb: str


MOVES: dict[str, Move] = {
    "task.claimed": Move(frozenset({SUBMITTED}), WORKING, "claim"),
    "task.heartbeat": Move(frozenset({WORKING}), None, "heartbeat"),
    "task.released": Move(frozenset({WORKING}), SUBMITTED, "release"),
    "task.expired": Move(frozenset({WORKING}), SUBMITTED, "expire"),
    "task.asked": Move(frozenset({WORKING}), INPUT_REQUIRED, "ask"),
    "task.answered": Move(frozenset({INPUT_REQUIRED}), WORKING, "answer"),
    "task.completed": Move(frozenset({WORKING}), COMPLETED, "complete"),
    "task.failed": Move(frozenset({WORKING}), FAILED, "fail"),
    "task.canceled": Move(frozenset({SUBMITTED, WORKING, INPUT_REQUIRED}), CANCELED, "cancel"),
    "task.rejected": Move(frozenset({SUBMITTED, WORKING}), REJECTED, "reject"),
    # The holder ends its workflow step; data.next (written by the holder from the
    # workflow) says where the task goes: another step (back to the queue), done, failed.
    "task.step_done": Move(frozenset({WORKING}), None, "finish the step"),
}


class TaskNotFoundError(UsageError):
    pass


class IllegalMoveError(FactoryError):
    """The task's state does not allow this; the message names the legal moves."""


class ClaimedError(FactoryError):
    """Another agent holds the task's lease."""


@dataclass(frozen=True)
class Task:
    id: str
    title: str
    requester: str
    created: str
    priority: int = DEFAULT_PRIORITY
    labels: tuple[str, ...] = ()
    parent: str | None = None
    depends_on: tuple[str, ...] = ()
    workflow: str | None = None
    body: str = ""

    @property
    def path(self) -> str:
        return records.TASK.path(self.id)

    def to_record(self) -> dict[str, Any]:
        return {
            "id": self.id, "title": self.title, "priority": self.priority,
            "labels": list(self.labels), "parent": self.parent,
            "depends_on": list(self.depends_on), "workflow": self.workflow,
            "requester": self.requester, "created": self.created, "body": self.body,
        }  # fmt: skip

    @classmethod
    def from_record(cls, r: dict[str, Any]) -> Task:
        return cls(
            id=r["id"], title=r["title"], requester=r["requester"], created=r["created"],
            priority=r.get("priority", DEFAULT_PRIORITY), labels=tuple(r.get("labels", ())),
            parent=r.get("parent"), depends_on=tuple(r.get("depends_on", ())),
            workflow=r.get("workflow"), body=r.get("body", ""),
        )  # fmt: skip


@dataclass(frozen=True)
class TaskState:
    """A task and what its events say about it (independent of the reader's clock)."""

    task: Task
    state: str = SUBMITTED
    assignee: str | None = None
    lease_until: int | None = None  # ms since the epoch
    seq: int = 0
    cancel_requested: str | None = None
    step: str | None = None  # the workflow step the task is at; None: the workflow's start
    attempts: dict[str, int] = field(default_factory=dict)  # claims per step
    last_step: dict[str, Any] | None = None  # data of the last task.step_done
    superseded_by: str | None = None
    history: tuple[Event, ...] = field(default=())

    def expired(self, now_ms: int) -> bool:
        return self.state == WORKING and self.lease_until is not None and now_ms >= self.lease_until

    def effective(self, now_ms: int) -> str:
        """The state as of ``now``: a working task whose lease ran out is back in the queue."""
        return SUBMITTED if self.expired(now_ms) else self.state

    def legal_moves(self, now_ms: int) -> list[str]:
        state = self.effective(now_ms)
        return [m.verb for m in MOVES.values() if state in m.sources and m.verb != "expire"]


def _apply(st: TaskState, event: Event) -> TaskState | None:
    """The state after a state event, or None if the event is not legal here."""
    move = MOVES[event.kind]
    if st.state not in move.sources:
        return None
    at = records.parse_time(event.time)
    if event.kind == "task.expired":
        if st.lease_until is None or at < st.lease_until:
            return None
    elif st.state == WORKING and (
        event.actor != st.assignee or (st.lease_until is not None and at > st.lease_until)
    ):
        return None  # not the holder, or the holder's lease had run out
    new = replace(st, seq=st.seq + 1, state=move.target or st.state)
    lease = event.data.get("lease_until")
    if event.kind in ("task.claimed", "task.heartbeat", "task.answered"):
        new = replace(new, lease_until=lease if isinstance(lease, int) else None)
    if event.kind == "task.claimed":
        step = event.data.get("step") if isinstance(event.data.get("step"), str) else st.step
        attempts = {**st.attempts, str(step): st.attempts.get(str(step), 0) + 1}
        new = replace(new, assignee=event.actor, step=step, attempts=attempts)
    if event.kind == "task.step_done":
        nxt = event.data.get("next")
        if not isinstance(nxt, str):
            return None
        target = {DONE: COMPLETED, FAILED_STEP: FAILED}.get(nxt, SUBMITTED)
        new = replace(
            new,
            state=target,
            step=nxt if target == SUBMITTED else st.step,
            assignee=None if target == SUBMITTED else st.assignee,
            lease_until=None,
            last_step=dict(event.data),
        )
    if event.kind in ("task.released", "task.expired"):
        new = replace(new, assignee=None, lease_until=None)
    if event.kind == "task.asked":
        new = replace(new, lease_until=None)  # waiting on a person, not on the agent
    successor = event.data.get("superseded_by")
    if event.kind == "task.canceled" and isinstance(successor, str):
        new = replace(new, superseded_by=successor)
    return new


def fold(task: Task, events: Iterable[Event]) -> TaskState:
    """The task's state from its events (any order in; state events by seq, then id)."""
    st = TaskState(task)
    kept: list[Event] = []
    requests: list[Event] = []
    for event in sorted(events, key=lambda e: (_seq(e), e.id)):
        if event.kind not in MOVES:
            kept.append(event)  # task.created, edits, cancel requests, notes about the task
            if event.kind == "task.cancel_requested":
                requests.append(event)
            elif event.kind in ("task.edited", "task.depends"):
                st = replace(st, task=revise(st.task, event.data))
        elif _seq(event) == st.seq and (moved := _apply(st, event)) is not None:
            st = moved
            kept.append(event)
    if requests and st.state not in TERMINAL:
        st = replace(st, cancel_requested=requests[-1].text or "cancel requested")
    return replace(st, history=tuple(sorted(kept, key=lambda e: e.id)))


def revise(task: Task, change: dict[str, Any]) -> Task:
    """The task after a plan edit (``task.edited`` / ``task.depends`` data).

    Edits are not state events: they apply in id order, the latest value wins.
    Malformed values are ignored, as a reader must not fail on another's edit.
    """
    out = task
    if isinstance(change.get("title"), str) and change["title"].strip():
        out = replace(out, title=change["title"])
    priority = change.get("priority")
    if isinstance(priority, int) and not isinstance(priority, bool) and 0 <= priority <= 9:
        out = replace(out, priority=priority)
    if isinstance(change.get("body"), str):
        out = replace(out, body=change["body"])
    labels = _merged(out.labels, change, "labels")
    depends_on = _merged(out.depends_on, change, "depends_on")
    return replace(out, labels=labels, depends_on=depends_on)


def _merged(current: tuple[str, ...], change: dict[str, Any], key: str) -> tuple[str, ...]:
    add = [v for v in change.get(f"add_{key}", ()) if isinstance(v, str)]
    remove = {v for v in change.get(f"remove_{key}", ()) if isinstance(v, str)}
    return tuple(dict.fromkeys([*(v for v in current if v not in remove), *add]))


def _seq(event: Event) -> int:
    value = event.data.get("seq")
    return value if isinstance(value, int) and not isinstance(value, bool) else -1


# -- reading -------------------------------------------------------------------


def resolve(factory: Factory, prefix: str) -> str:
    """The full id of the task whose id starts with ``prefix``."""
    matches = factory.index.task_ids(prefix.lower())
    if not matches:
        raise TaskNotFoundError(
            f"no task id starts with {prefix!r}", hint="`gitfactory task list` shows the tasks"
        )
    if len(matches) > 1:
        raise TaskNotFoundError(
            f"task id {prefix!r} is ambiguous: {', '.join(m[:10] for m in matches[:5])}",
            hint="type more characters of the id",
        )
    return matches[0]


def load(factory: Factory, task_id: str, history: bool = False) -> TaskState:
    """The task's state as the index folded it (with its events if ``history``)."""
    if history:
        row = factory.index.task(task_id)
        if row is None:
            raise TaskNotFoundError(f"no task {task_id}")
        return fold(row, factory.index.task_events(task_id))
    data = factory.index.task_state(task_id)
    if data is None:
        raise TaskNotFoundError(f"no task {task_id}")
    return state_from_json(data)


def all_states(factory: Factory) -> list[TaskState]:
    return [state_from_json(d) for d in factory.index.task_states()]


def state_to_json(st: TaskState) -> dict[str, Any]:
    """A folded state as the index keeps it (everything but the history)."""
    return {
        "task": st.task.to_record(), "state": st.state, "assignee": st.assignee,
        "lease_until": st.lease_until, "seq": st.seq, "cancel_requested": st.cancel_requested,
        "step": st.step, "attempts": st.attempts, "last_step": st.last_step,
        "superseded_by": st.superseded_by,
    }  # fmt: skip


def state_from_json(d: dict[str, Any]) -> TaskState:
    return TaskState(
        task=Task.from_record(d["task"]), state=d["state"], assignee=d["assignee"],
        lease_until=d["lease_until"], seq=d["seq"], cancel_requested=d["cancel_requested"],
        step=d["step"], attempts=d["attempts"], last_step=d["last_step"],
        superseded_by=d["superseded_by"],
    )  # fmt: skip


def summary(st: TaskState) -> dict[str, Any]:
    """What `task list` and `ready` print for a task, as stored (see :func:`as_of`)."""
    t = st.task
    held = st.state in (WORKING, INPUT_REQUIRED)
    return {
        "id": t.id, "title": t.title, "state": st.state, "priority": t.priority,
        "labels": list(t.labels), "depends_on": list(t.depends_on), "parent": t.parent,
        "workflow": t.workflow, "step": st.step, "requester": t.requester,
        "created": t.created, "assignee": st.assignee if held else None,
        "lease_until": ids.format_time(st.lease_until) if st.lease_until else None,
        "lease_expired": False, "cancel_requested": st.cancel_requested,
        "superseded_by": st.superseded_by,
    }  # fmt: skip


def as_of(stored: dict[str, Any], now_ms: int) -> dict[str, Any]:
    """A stored summary as of ``now``: a working task whose lease ran out is submitted."""
    lease = stored.get("lease_until")
    if stored["state"] == WORKING and lease and records.parse_time(lease) <= now_ms:
        return {**stored, "state": SUBMITTED, "assignee": None, "lease_expired": True}
    return stored


def satisfied(dep: str, by_id: Mapping[str, TaskState]) -> bool:
    """A dependency is met when the task is completed, or superseded by one that is."""
    seen = set()
    while dep in by_id and dep not in seen:
        seen.add(dep)
        st = by_id[dep]
        if st.state == COMPLETED:
            return True
        if st.superseded_by is None:
            return False
        dep = st.superseded_by
    return False


def ready(states: list[TaskState], now_ms: int, label: str | None = None) -> list[TaskState]:
    """Submitted tasks whose dependencies are all met: priority, then age."""
    by_id = {s.task.id: s for s in states}
    out = [
        s for s in states
        if s.effective(now_ms) == SUBMITTED
        and (label is None or label in s.task.labels)
        and all(satisfied(d, by_id) for d in s.task.depends_on)
    ]  # fmt: skip
    return sorted(out, key=lambda s: (s.task.priority, s.task.created, s.task.id))


def short_ids(task_ids: Iterable[str], minimum: int = 5) -> dict[str, str]:
    """The shortest prefix of each id that no other id shares (at least ``minimum``)."""
    ordered = sorted(task_ids)
    shared = [0] * (len(ordered) + 1)  # shared[i]: common prefix of ordered[i-1], ordered[i]
    for i in range(1, len(ordered)):
        a, b = ordered[i - 1], ordered[i]
        k = 0
        while k < len(a) and k < len(b) and a[k] == b[k]:
            k += 1
        shared[i] = k
    return {
        tid: tid[: max(minimum, shared[i] + 1, shared[i + 1] + 1)] for i, tid in enumerate(ordered)
    }


# -- writing -------------------------------------------------------------------


def add(
    factory: Factory,
    *,
    title: str,
    requester: str,
    body: str = "",
    priority: int = DEFAULT_PRIORITY,
    labels: Iterable[str] = (),
    depends_on: Iterable[str] = (),
    parent: str | None = None,
    workflow: str | None = None,
) -> Task:
    """Write a new task record (and a ``task.created`` event) in one commit."""
    from gitfactory.store import Change

    factory.require_tip()
    factory.index.refresh()
    deps = tuple(dict.fromkeys(resolve(factory, d) for d in depends_on))
    task = Task(
        id=ids.random_id(), title=title.strip(), requester=requester,
        created=ids.format_time(clock.now_ms()), priority=priority,
        labels=tuple(dict.fromkeys(labels)), depends_on=deps,
        parent=resolve(factory, parent) if parent else None, workflow=workflow,
        body=body.rstrip() + "\n" if body.strip() else "",
    )  # fmt: skip
    try:
        records.validate(records.TASK, task.path, task.to_record())
    except InvalidRecordError as exc:
        raise UsageError(f"{exc.field or 'task'}: {exc.reason}") from None
    event = stamp(Draft(kind="task.created", actor=requester, text=task.title, task=task.id))
    factory.store.write(Change(
        files={task.path: records.encode(task.to_record(), records.TASK),
               event.path: records.encode(event.to_record())},
        subject=f"task: add {task.id[:6]} {task.title[:60]}",
        trailers=[("Factory-Record", f"task {task.id}"), ("Factory-Record", f"event {event.id}")],
    ))  # fmt: skip
    return task


class _Lookup(Mapping[str, TaskState]):
    """Task states read from the index one at a time (for a few dependencies)."""

    def __init__(self, factory: Factory) -> None:
        self.factory = factory

    def __getitem__(self, task_id: str) -> TaskState:
        return load(self.factory, task_id)

    def __contains__(self, task_id: object) -> bool:
        return isinstance(task_id, str) and self.factory.index.task_state(task_id) is not None

    def __iter__(self) -> Iterator[str]:
        return iter(self.factory.index.all_task_ids())

    def __len__(self) -> int:
        return len(self.factory.index.all_task_ids())


Decision = Callable[[TaskState, int], tuple[list[Draft], FactoryError | None]]


def act(factory: Factory, task_id: str, decide: Decision) -> TaskState:
    """Decide on the task's state at the branch tip and commit the events, atomically.

    ``decide`` sees the state folded at exactly the commit the events will be written
    on top of; after a lost race it is asked again. It returns the state events to
    write (their ``seq`` is filled in here) and an error to raise once they are
    written (a stale writer's refusal still records the expiry it noticed).
    """
    from gitfactory.store import Change, Snapshot

    outcome: list[FactoryError | None] = [None]

    def build(snap: Snapshot) -> Change | None:
        factory.index.refresh(str(snap.tip) if snap.tip else None)
        st = load(factory, task_id)
        drafts, outcome[0] = decide(st, clock.now_ms())
        if not drafts:
            return None
        events = []
        for n, draft in enumerate(drafts):
            data = {**draft.data, "seq": st.seq + n} if draft.kind in MOVES else draft.data
            events.append(stamp(replace(draft, task=task_id, data=data)))
        return Change(
            files={e.path: records.encode(e.to_record()) for e in events},
            subject=f"task: {' + '.join(e.kind[5:] for e in events)} {task_id[:6]} "
                    f"by {events[-1].actor}",
            trailers=[("Factory-Record", f"event {e.id}") for e in events],
        )  # fmt: skip

    factory.require_tip()
    factory.store.transact(build)
    if outcome[0] is not None:
        raise outcome[0]
    factory.index.refresh()
    return load(factory, task_id)


def _illegal(st: TaskState, verb: str, now: int) -> IllegalMoveError:
    state = st.effective(now)
    legal = st.legal_moves(now)
    moves = f"legal now: {', '.join(legal)}" if legal else "it is final: no move is legal"
    return IllegalMoveError(f"cannot {verb} task {st.task.id[:8]}: it is {state}; {moves}")


def expiry_draft(st: TaskState, actor: str) -> Draft:
    return Draft(
        kind="task.expired",
        actor=actor,
        data={"holder": st.assignee},
        text=f"lease of {st.assignee} ran out",
    )


def claim(
    factory: Factory,
    task_id: str,
    agent: str,
    lease_ms: int = DEFAULT_LEASE_MS,
    step_of: Callable[[TaskState], str] | None = None,
) -> TaskState:
    """Take the task for ``agent`` until the lease runs out; exactly one claimer wins.

    ``step_of`` names the workflow step being claimed (recorded with the claim).
    """

    def decide(st: TaskState, now: int) -> tuple[list[Draft], FactoryError | None]:
        data: dict[str, Any] = {"lease_until": now + lease_ms}
        if step_of is not None:
            data["step"] = step_of(st)
        claimed = Draft(kind="task.claimed", actor=agent, data=data)
        if st.expired(now):
            return [expiry_draft(st, agent), claimed], None
        if st.state == WORKING and st.assignee == agent:
            return [], None  # already ours: claiming again is a no-op
        if st.state == WORKING:
            return [], ClaimedError(
                f"task {task_id[:8]} is claimed by {st.assignee} until "
                f"{ids.format_time(st.lease_until or 0)}",
                hint="pick another task (`gitfactory ready`) or wait for the lease to run out",
            )
        if st.state != SUBMITTED:
            return [], _illegal(st, "claim", now)
        blocking = [d for d in st.task.depends_on if not satisfied(d, _Lookup(factory))]
        if blocking:
            return [], IllegalMoveError(
                f"cannot claim task {task_id[:8]}: waiting for "
                f"{', '.join(b[:8] for b in blocking)} to be completed"
            )
        return [claimed], None

    return act(factory, task_id, decide)


def holder_move(
    factory: Factory,
    task_id: str,
    agent: str,
    kind: str,
    text: str = "",
    lease_ms: int | None = None,
    data_of: Callable[[TaskState], dict[str, Any]] | None = None,
) -> TaskState:
    """A move only the lease holder may make (heartbeat, release, ask, finish a step).

    ``data_of`` adds data computed from the state the move is decided on.
    """
    move = MOVES[kind]

    def decide(st: TaskState, now: int) -> tuple[list[Draft], FactoryError | None]:
        if st.expired(now):
            stale = FactoryError(
                f"cannot {move.verb} task {task_id[:8]}: the lease of {st.assignee} ran out at "
                f"{ids.format_time(st.lease_until or 0)}; the task is back in the queue",
                hint="claim it again if it is still ready",
            )
            return [expiry_draft(st, agent)], stale
        if st.state not in move.sources:
            return [], _illegal(st, move.verb, now)
        if st.assignee != agent:
            return [], ClaimedError(
                f"cannot {move.verb} task {task_id[:8]}: it is held by {st.assignee}, not {agent}"
            )
        data: dict[str, Any] = {"lease_until": now + lease_ms} if lease_ms is not None else {}
        if data_of is not None:
            data.update(data_of(st))
        return [Draft(kind=kind, actor=agent, text=text, data=data)], None

    return act(factory, task_id, decide)


def cancel(factory: Factory, task_id: str, actor: str, reason: str = "") -> TaskState:
    """Cancel a task nobody works on; ask the holder to stop one that is being worked on."""

    def decide(st: TaskState, now: int) -> tuple[list[Draft], FactoryError | None]:
        state = st.effective(now)
        if state in TERMINAL:
            return [], _illegal(st, "cancel", now)
        if state == WORKING and st.assignee != actor:
            return [Draft(kind="task.cancel_requested", actor=actor, text=reason)], None
        pre = [expiry_draft(st, actor)] if st.expired(now) else []
        return [*pre, Draft(kind="task.canceled", actor=actor, text=reason)], None

    return act(factory, task_id, decide)


def answer(
    factory: Factory, task_id: str, actor: str, text: str, lease_ms: int = DEFAULT_LEASE_MS
) -> TaskState:
    def decide(st: TaskState, now: int) -> tuple[list[Draft], FactoryError | None]:
        if st.state != INPUT_REQUIRED:
            return [], _illegal(st, "answer", now)
        return [
            Draft(
                kind="task.answered", actor=actor, text=text, data={"lease_until": now + lease_ms}
            )
        ], None

    return act(factory, task_id, decide)
