"""The production plan: adding tasks, the ready queue, claims with leases, and every
decision about a task, taken at exactly the commit it is written on (see :func:`act`).

The task model and the fold of its events are in :mod:`gitfactory.plan.tasks`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from gitfactory.errors import FactoryError, InvalidRecordError, UsageError
from gitfactory.plan import states
from gitfactory.plan.lookup import TaskNotFoundError as TaskNotFoundError
from gitfactory.plan.lookup import resolve as resolve
from gitfactory.plan.tasks import (
    COMPLETED,
    DEFAULT_LEASE_MS,
    DEFAULT_PRIORITY,
    INPUT_REQUIRED,
    MOVES,
    SUBMITTED,
    TERMINAL,
    WORKING,
    Task,
    TaskState,
    fold,
    satisfied,
    state_from_json,
)
from gitfactory.store import clock, ids, records
from gitfactory.store.log import Draft, clip, stamp

if TYPE_CHECKING:
    from gitfactory.store.branch import Change, Snapshot
    from gitfactory.store.factory import Factory


class IllegalMoveError(FactoryError):
    """The task's state does not allow this; the message names the legal moves."""


class ClaimedError(FactoryError):
    """Another agent holds the task's lease."""


class RefusedError(FactoryError):
    """The workflow does not let this actor take or end this step (a ``task.refused``
    event records the attempt)."""


# Why an actor may not take the move on the state it is decided on (None: it may),
# and what to do instead.
Check = Callable[[TaskState], "tuple[str, str] | None"]


def refused(
    st: TaskState, actor: str, verb: str, why: tuple[str, str]
) -> tuple[list[Draft], FactoryError]:
    """The record of a refused attempt, and the error the caller gets."""
    reason, hint = why
    draft = Draft(kind="task.refused", actor=actor, text=reason,
                  data={"verb": verb, "step": st.step, "state": st.state})  # fmt: skip
    return [draft], RefusedError(reason, hint=hint)


def load(factory: Factory, task_id: str, history: bool = False) -> TaskState:
    """The task's state as the index folded it (with its events if ``history``)."""
    if history:
        record = factory.index.task_record(task_id)
        if record is None:
            raise TaskNotFoundError(f"no task {task_id}")
        return fold(Task.from_record(record), factory.index.task_events(task_id))
    data = states.task_state(factory, task_id)
    if data is None:
        raise TaskNotFoundError(f"no task {task_id}")
    return state_from_json(data)


def all_states(factory: Factory) -> list[TaskState]:
    return [state_from_json(d) for d in states.task_states(factory)]


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
    from gitfactory.store.branch import Change

    factory.require_tip()
    if workflow is not None:  # a task that follows no workflow there is would stop every reader
        from gitfactory.config import factory_yaml

        factory_yaml.load(factory).workflow(workflow)
    factory.index.refresh()
    deps = tuple(dict.fromkeys(resolve(factory, d) for d in depends_on))
    task = Task(
        id=ids.random_id(), title=title.strip(), requester=requester,
        created=clock.format_time(clock.now_ms()), priority=priority,
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
        subject=f"task: add {task.id[:6]} {clip(task.title, 60)}",
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
        return isinstance(task_id, str) and states.task_state(self.factory, task_id) is not None

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
    outcome: list[FactoryError | None] = [None]
    factory.require_tip()
    factory.store.transact(lambda snap: decided(factory, task_id, decide, snap, outcome))
    if outcome[0] is not None:
        raise outcome[0]
    factory.index.refresh()
    return load(factory, task_id)


def decided(
    factory: Factory,
    task_id: str,
    decide: Decision,
    snap: Snapshot,
    outcome: list[FactoryError | None],
) -> Change | None:
    """The change ``decide`` makes to the task as folded at ``snap`` (None: nothing to
    write); the error to raise once it is written goes into ``outcome``."""
    from gitfactory.store.branch import Change

    factory.index.refresh(str(snap.tip) if snap.tip else None)
    st = load(factory, task_id)
    if st.remote is not None:
        outcome[0] = proxy_error(st)
        return None
    # One time for the decision and the events: the fold judges a move by its
    # event's time, so a lease decided on one clock reading and stamped with
    # another (ids stay monotonic when the clock steps back) could void it.
    now = ids.next_ms()
    drafts, outcome[0] = decide(st, now)
    if not drafts:
        return None
    events = []
    for n, draft in enumerate(drafts):
        data = {**draft.data, "seq": st.seq + n} if draft.kind in MOVES else draft.data
        events.append(stamp(replace(draft, task=task_id, data=data), now))
    return Change(
        files={e.path: records.encode(e.to_record()) for e in events},
        subject=f"task: {' + '.join(e.kind[5:] for e in events)} {task_id[:6]} "
                f"by {events[-1].actor}",
        trailers=[("Factory-Record", f"event {e.id}") for e in events],
    )  # fmt: skip


def proxy_error(st: TaskState) -> IllegalMoveError:
    """Why a proxy task takes no local move (SPEC §20)."""
    assert st.remote is not None
    peer = st.remote["peer"]
    theirs = st.remote.get("task_id")
    what = f"{peer}'s task {theirs[:8]}" if theirs else f"a task requested of {peer}"
    write = f"write to {peer}: gitfactory mail send '{peer}:human/*' -s ... --body ..."
    if st.state == INPUT_REQUIRED:
        write = f"answer its question with `gitfactory task answer {st.task.id[:8]} TEXT`; " + write
    return IllegalMoveError(
        f"task {st.task.id[:8]} stands for {what}: it moves only when that task does",
        hint=write,
    )


def illegal(st: TaskState, verb: str, now: int) -> IllegalMoveError:
    state = st.effective(now)
    legal = st.legal_moves(now)
    moves = f"legal now: {', '.join(legal)}" if legal else "it is final: no move is legal"
    what = "of task" if verb == MOVES["task.step_done"].verb else "task"
    again = "reopen" if state == COMPLETED else "retry"
    hint = (f"a person gives it another go: gitfactory task {again} {st.task.id[:8]} "
            "[--from STEP]" if state in TERMINAL and again in legal else None)  # fmt: skip
    return IllegalMoveError(
        f"cannot {verb} {what} {st.task.id[:8]}: it is {state}; {moves}", hint=hint
    )


def expiry_draft(st: TaskState, actor: str) -> Draft:
    return Draft(
        kind="task.expired",
        actor=actor,
        data={"holder": st.assignee},
        text=f"lease of {st.assignee} ran out",
    )


def expire_leases(factory: Factory, actor: str) -> list[str]:
    """Write ``task.expired`` for every working task whose lease ran out: the sweep
    that puts abandoned work back in the queue (the daemon runs it every tick)."""

    def decide(st: TaskState, now: int) -> tuple[list[Draft], FactoryError | None]:
        return ([expiry_draft(st, actor)] if st.expired(now) else []), None

    factory.index.refresh()
    expired = []
    for task_id in states.lapsed(factory, clock.now_ms()):
        if act(factory, task_id, decide).state == SUBMITTED:
            expired.append(task_id)
    return expired


def claim(
    factory: Factory,
    task_id: str,
    agent: str,
    lease_ms: int = DEFAULT_LEASE_MS,
    step_of: Callable[[TaskState], str] | None = None,
    check: Check | None = None,
) -> TaskState:
    """Take the task for ``agent`` until the lease runs out; exactly one claimer wins.

    ``step_of`` names the workflow step being claimed (recorded with the claim);
    ``check`` may refuse the claim on the state it is decided on.
    """
    return act(factory, task_id, claiming(factory, task_id, agent, lease_ms, step_of, check))


def claimed_on(factory: Factory, task_id: str) -> str | None:
    """The clone whose daemon made the claim in effect (``data.clone``), or None."""
    claims = [e for e in load(factory, task_id, history=True).history if e.kind == "task.claimed"]
    clone = claims[-1].data.get("clone") if claims else None
    return clone if isinstance(clone, str) else None


def claiming(
    factory: Factory,
    task_id: str,
    agent: str,
    lease_ms: int = DEFAULT_LEASE_MS,
    step_of: Callable[[TaskState], str] | None = None,
    check: Check | None = None,
    clone: str | None = None,
) -> Decision:
    """The decision of :func:`claim`, for a caller that commits it another way (a
    claim arbitrated by a remote, :mod:`gitfactory.plan.arbiter`).

    ``clone``: the claim is a daemon's, for an agent of factory.yaml that every clone's
    daemon runs; the task held by that address is ours only if this clone claimed it.
    """

    def decide(st: TaskState, now: int) -> tuple[list[Draft], FactoryError | None]:
        data: dict[str, Any] = {"lease_until": now + lease_ms}
        if step_of is not None:
            data["step"] = step_of(st)
        if clone is not None:
            data["clone"] = clone
        claimed = Draft(kind="task.claimed", actor=agent, data=data)
        if st.expired(now):
            return [expiry_draft(st, agent), claimed], None
        if st.state == WORKING and st.assignee == agent:
            if clone is not None and claimed_on(factory, task_id) not in (clone, None):
                return [], ClaimedError(
                    f"task {task_id[:8]} is held by {agent} in another clone of this factory"
                )
            return [], None  # already ours: claiming again is a no-op
        if st.state == WORKING:
            return [], ClaimedError(
                f"task {task_id[:8]} is claimed by {st.assignee} until "
                f"{clock.format_time(st.lease_until or 0)}",
                hint="pick another task (`gitfactory ready`) or wait for the lease to run out",
            )
        if st.state != SUBMITTED:
            return [], illegal(st, "claim", now)
        why = check(st) if check is not None else None
        if why is not None:
            return refused(st, agent, "claim", why)
        blocking = [d for d in st.task.depends_on if not satisfied(d, _Lookup(factory))]
        if blocking:
            return [], IllegalMoveError(
                f"cannot claim task {task_id[:8]}: waiting for "
                f"{', '.join(b[:8] for b in blocking)} to be completed"
            )
        return [claimed], None

    return decide


def holder_move(
    factory: Factory,
    task_id: str,
    agent: str,
    kind: str,
    text: str = "",
    lease_ms: int | None = None,
    data_of: Callable[[TaskState], dict[str, Any]] | None = None,
    check: Check | None = None,
) -> TaskState:
    """A move only the lease holder may make (heartbeat, release, ask, finish a step).

    ``data_of`` adds data computed from the state the move is decided on; ``check``
    may refuse the move there.
    """
    move = MOVES[kind]

    def decide(st: TaskState, now: int) -> tuple[list[Draft], FactoryError | None]:
        if st.expired(now):
            stale = FactoryError(
                f"cannot {move.verb} task {task_id[:8]}: the lease of {st.assignee} ran out at "
                f"{clock.format_time(st.lease_until or 0)}; the task is back in the queue",
                hint="claim it again if it is still ready",
            )
            return [expiry_draft(st, agent)], stale
        if st.state not in move.sources:
            return [], illegal(st, move.verb, now)
        if st.assignee != agent:
            what = "of task" if kind == "task.step_done" else "task"
            return [], ClaimedError(
                f"cannot {move.verb} {what} {task_id[:8]}: it is held by {st.assignee}, not {agent}"
            )
        why = check(st) if check is not None else None
        if why is not None:
            return refused(st, agent, move.verb, why)
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
            return [], illegal(st, "cancel", now)
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
            return [], illegal(st, "answer", now)
        return [
            Draft(
                kind="task.answered", actor=actor, text=text, data={"lease_until": now + lease_ms}
            )
        ], None

    return act(factory, task_id, decide)
