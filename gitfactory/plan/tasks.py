"""The task model: a task, its lifecycle, and the fold of its events into a state.

A task is an immutable record (``.factory/tasks/…/<id>.md``); everything that happens
to it is a ``task.*`` event in the execution log. Its state is a fold of those events
(:func:`fold`). Events that change the state carry ``data.seq``, the number of state
events the writer saw; the fold accepts a state event only if its ``seq`` is the next
one and the move is legal, so decisions made under the store's compare-and-swap (a
claim, say) stay exclusive whatever the writers' clocks say, and two merged histories
fold the same way everywhere (the lower id wins a tie). Nothing here reads or writes
git: :mod:`gitfactory.plan.decisions` does.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from gitfactory.config.workflows import DONE
from gitfactory.config.workflows import FAILED as FAILED_STEP
from gitfactory.store import actors, clock, ids, records
from gitfactory.store.log import Event

SUBMITTED, WORKING, INPUT_REQUIRED = "submitted", "working", "input_required"
COMPLETED, FAILED, CANCELED, REJECTED = "completed", "failed", "canceled", "rejected"
STATES = (SUBMITTED, WORKING, INPUT_REQUIRED, COMPLETED, FAILED, CANCELED, REJECTED)
TERMINAL = frozenset({COMPLETED, FAILED, CANCELED, REJECTED})
DEFAULT_PRIORITY = 2
MAX_TIME_MS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z, the last time RFC 3339 has
MAX_BODY = 262_144  # characters of a task's body (the schema's maxLength)
_ONE_LINE = re.compile(r"^[^\n\r]*$").match
_LABEL = re.compile(r"^[a-z0-9][a-z0-9._:/-]{0,63}$").match
_TASK_ID = re.compile(ids.ID_PATTERN).match
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
    # A human ends the step the task is at, whoever holds it (the escape hatch when
    # the workflow's own doer cannot: `step done --override --reason`). Same data as
    # task.step_done, plus the reason and the holder it overrode.
    "task.overridden": Move(frozenset({SUBMITTED, WORKING, INPUT_REQUIRED}), None, "override"),
    # A person gives a finished task another go (`task retry`, `task reopen`): it is
    # submitted again at data.step, with no holder and every step's attempts at zero.
    "task.retried": Move(frozenset({FAILED, CANCELED, REJECTED}), SUBMITTED, "retry"),
    "task.reopened": Move(frozenset({COMPLETED}), SUBMITTED, "reopen"),
}
# Moves that end a step: where the task goes next is in their data.next.
STEP_ENDS = frozenset({"task.step_done", "task.overridden"})
# The attempts key of claims that named no step (data.step is optional: a plain-git
# client's, or a claim through the library without one) while the task was at its
# workflow's start, which the fold cannot name without the configuration.
UNNAMED_START = "None"
# Moves that take a finished task back to the queue (a person's decision).
RESTARTS = frozenset({"task.retried", "task.reopened"})
OVERRIDER_ROLE = "human"
# A proxy task stands here for a task asked of a peer factory (SPEC §20): its
# task.created event names the peer and the request (data.remote), and only news of
# the peer's task, task.remote events written by the peers pass, move it.
PEERS_ACTOR = "factory/peers"
REMOTE_NEWS = "task.remote"
# The peer's word (a receipt of the request, an update of its task) -> our state.
REMOTE_STATES = {
    "sent": WORKING, "pending": WORKING, "delivered": WORKING, SUBMITTED: WORKING,
    WORKING: WORKING, INPUT_REQUIRED: INPUT_REQUIRED, COMPLETED: COMPLETED, FAILED: FAILED,
    CANCELED: CANCELED, REJECTED: REJECTED, "quarantined": REJECTED,
}  # fmt: skip
_REMOTE_KEYS = ("state", "task_id", "step", "holder", "question", "asker", "merge", "reason")


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
    last_step: dict[str, Any] | None = None  # data of the last step end (STEP_ENDS)
    superseded_by: str | None = None
    remote: dict[str, Any] | None = None  # a proxy's peer, request and the peer's news
    history: tuple[Event, ...] = field(default=())

    def expired(self, now_ms: int) -> bool:
        return self.state == WORKING and self.lease_until is not None and now_ms >= self.lease_until

    def effective(self, now_ms: int) -> str:
        """The state as of ``now``: a working task whose lease ran out is back in the queue."""
        return SUBMITTED if self.expired(now_ms) else self.state

    def legal_moves(self, now_ms: int) -> list[str]:
        state = self.effective(now_ms)
        hidden = ("expire", "override")  # the sweep's, and a human's escape hatch
        return [m.verb for m in MOVES.values() if state in m.sources and m.verb not in hidden]


def _apply(st: TaskState, event: Event) -> TaskState | None:
    """The state after a state event, or None if the event is not legal here."""
    move = MOVES[event.kind]
    if st.state not in move.sources:
        return None
    at = clock.parse_time(event.time)
    if event.kind == "task.expired":
        if st.lease_until is None or at < st.lease_until:
            return None
    elif event.kind == "task.overridden" or event.kind in RESTARTS:
        if actors.role(event.actor) != OVERRIDER_ROLE:
            return None  # only a person overrides the workflow or undoes its end
    elif st.state == WORKING and (
        event.actor != st.assignee or (st.lease_until is not None and at > st.lease_until)
    ):
        return None  # not the holder, or the holder's lease had run out
    new = replace(st, seq=st.seq + 1, state=move.target or st.state)
    lease = event.data.get("lease_until")
    if event.kind in ("task.claimed", "task.heartbeat", "task.answered"):
        if lease is not None and not (
            isinstance(lease, int) and not isinstance(lease, bool) and 0 <= lease <= MAX_TIME_MS
        ):
            return None  # a lease that is no time: the event is malformed, not applied
        new = replace(new, lease_until=lease)
    if event.kind == "task.claimed":
        step = event.data.get("step") if isinstance(event.data.get("step"), str) else st.step
        key = UNNAMED_START if step is None else step
        attempts = {**st.attempts, key: st.attempts.get(key, 0) + 1}
        new = replace(new, assignee=event.actor, step=step, attempts=attempts)
    if event.kind in STEP_ENDS:
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
    if event.kind in RESTARTS:
        step = event.data.get("step")
        if not isinstance(step, str):
            return None
        new = replace(new, step=step, attempts={}, assignee=None, lease_until=None,
                      superseded_by=None)  # fmt: skip
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
    restarted = ""  # the id of the last restart: cancel requests before it are spent
    news: list[Event] = []
    withdrawn: Event | None = None
    for event in sorted(events, key=lambda e: (_seq(e), e.id)):
        if event.kind not in MOVES:
            kept.append(event)  # task.created, edits, cancel requests, notes about the task
            if event.kind == "task.cancel_requested":
                requests.append(event)
            elif event.kind in ("task.edited", "task.depends"):
                st = replace(st, task=revise(st.task, event.data))
            elif event.kind == "task.created" and st.remote is None:
                st = replace(st, remote=_proxy_of(event))
            elif event.kind == REMOTE_NEWS and event.actor == PEERS_ACTOR:
                news.append(event)
        elif st.remote is not None:  # a proxy moves only by its peer's news, but a
            if event.kind == "task.canceled" and actors.role(event.actor) == OVERRIDER_ROLE:
                withdrawn = withdrawn or event  # person may withdraw it (SPEC §20)
        elif _seq(event) == st.seq and (moved := _apply(st, event)) is not None:
            st = moved
            kept.append(event)
            if event.kind in RESTARTS:
                restarted = event.id
    if st.remote is not None:
        st = _proxy_state(st, news)
        if withdrawn is not None:
            kept.append(withdrawn)
            st = replace(st, state=CANCELED, assignee=None)
        requests = []
    requests = [r for r in requests if r.id > restarted]
    if requests and st.state not in TERMINAL:
        st = replace(st, cancel_requested=requests[-1].text or "cancel requested")
    return replace(st, history=tuple(sorted(kept, key=lambda e: e.id)))


def _proxy_of(created: Event) -> dict[str, Any] | None:
    remote = created.data.get("remote")
    if not isinstance(remote, dict):
        return None
    peer, request = remote.get("peer"), remote.get("request")
    if not (isinstance(peer, str) and isinstance(request, str)):
        return None
    return {"peer": peer, "request": request, "state": "sent"}


def _proxy_state(st: TaskState, news: list[Event]) -> TaskState:
    """A proxy's state: the latest word of its peer about its request (latest by the
    id of the parcel that brought it: the peer's own order)."""
    assert st.remote is not None
    remote = dict(st.remote)
    mine = [e for e in news if e.data.get("request") == remote["request"]]
    for event in sorted(mine, key=lambda e: (str(e.data.get("parcel") or ""), e.id)):
        if event.data.get("state") not in REMOTE_STATES:
            continue
        task_id = event.data.get("task_id") or remote.get("task_id")
        remote = {"peer": remote["peer"], "request": remote["request"], "task_id": task_id}
        remote.update((k, event.data[k]) for k in _REMOTE_KEYS if event.data.get(k) is not None)
        remote["task_id"] = task_id
    state = REMOTE_STATES[remote["state"]]
    holder = remote.get("asker") if state == INPUT_REQUIRED else remote.get("holder")
    assignee = f"{remote['peer']}:{holder}" if holder else None
    return replace(st, state=state, assignee=assignee, lease_until=None, step=None,
                   remote={k: v for k, v in remote.items() if v is not None})  # fmt: skip


def revise(task: Task, change: dict[str, Any]) -> Task:
    """The task after a plan edit (``task.edited`` / ``task.depends`` data).

    Edits are not state events: they apply in id order, the latest value wins.
    Malformed values are ignored, as a reader must not fail on another's edit.
    """
    out = task
    title = change.get("title")
    if isinstance(title, str) and title.strip() and len(title) <= 200 and _ONE_LINE(title):
        out = replace(out, title=title)
    priority = change.get("priority")
    if isinstance(priority, int) and not isinstance(priority, bool) and 0 <= priority <= 9:
        out = replace(out, priority=priority)
    if isinstance(change.get("body"), str) and len(change["body"]) <= MAX_BODY:
        out = replace(out, body=change["body"])
    labels = _merged(out.labels, change, "labels")
    depends_on = _merged(out.depends_on, change, "depends_on")
    return replace(out, labels=labels, depends_on=depends_on)


def _merged(current: tuple[str, ...], change: dict[str, Any], key: str) -> tuple[str, ...]:
    valid = _LABEL if key == "labels" else _TASK_ID
    added, removed = change.get(f"add_{key}"), change.get(f"remove_{key}")
    add = [v for v in added if isinstance(v, str) and valid(v)] if isinstance(added, list) else []
    remove = {v for v in removed if isinstance(v, str)} if isinstance(removed, list) else set()
    return tuple(dict.fromkeys([*(v for v in current if v not in remove), *add]))


def _seq(event: Event) -> int:
    value = event.data.get("seq")
    return value if isinstance(value, int) and not isinstance(value, bool) else -1


# -- reading -------------------------------------------------------------------


def state_to_json(st: TaskState) -> dict[str, Any]:
    """A folded state as the index keeps it (everything but the history)."""
    return {
        "task": st.task.to_record(), "state": st.state, "assignee": st.assignee,
        "lease_until": st.lease_until, "seq": st.seq, "cancel_requested": st.cancel_requested,
        "step": st.step, "attempts": st.attempts, "last_step": st.last_step,
        "superseded_by": st.superseded_by, "remote": st.remote,
    }  # fmt: skip


def state_from_json(d: dict[str, Any]) -> TaskState:
    return TaskState(
        task=Task.from_record(d["task"]), state=d["state"], assignee=d["assignee"],
        lease_until=d["lease_until"], seq=d["seq"], cancel_requested=d["cancel_requested"],
        step=d["step"], attempts=d["attempts"], last_step=d["last_step"],
        superseded_by=d["superseded_by"], remote=d.get("remote"),
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
        "lease_until": clock.format_time(st.lease_until) if st.lease_until else None,
        "lease_expired": False, "cancel_requested": st.cancel_requested,
        "superseded_by": st.superseded_by, "remote": _remote_summary(st.remote),
    }  # fmt: skip


def _remote_summary(remote: dict[str, Any] | None) -> dict[str, Any] | None:
    if remote is None:
        return None
    return {k: remote[k] for k in ("peer", "task_id", "state") if k in remote}


def as_of(stored: dict[str, Any], now_ms: int) -> dict[str, Any]:
    """A stored summary as of ``now``: a working task whose lease ran out is submitted."""
    lease = stored.get("lease_until")
    if stored["state"] == WORKING and lease and clock.parse_time(lease) <= now_ms:
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
