"""Asking a peer factory for work (SPEC §20): the request and its proxy task, and
the answer to a question the peer's task asks.

`gitfactory task add --in api TITLE` writes, in one commit, a *proxy* task of our
plan (its ``task.created`` event names the peer and the request) and the request
parcel in our outbox for the peer. The proxy is a task like any other for reading
and for dependencies, but only the peer's word moves it (:mod:`gitfactory.plan.tasks`),
so a local task that depends on it becomes ready when the peer's task completes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gitfactory.errors import InvalidRecordError, UsageError
from gitfactory.plan import decisions
from gitfactory.plan.tasks import INPUT_REQUIRED, Task
from gitfactory.store import actors, clock, ids, parcels, records
from gitfactory.store.log import Draft, stamp

if TYPE_CHECKING:
    from collections.abc import Callable

    from gitfactory.plan.tasks import TaskState
    from gitfactory.store.branch import Change, Snapshot
    from gitfactory.store.factory import Factory
    from gitfactory.store.log import Event

ANSWER_SENT = "task.answer_sent"  # our answer to a proxy's question left for the peer


def request(
    factory: Factory,
    peer: str,
    *,
    title: str,
    requester: str,
    body: str = "",
    priority: int = 2,
    labels: tuple[str, ...] = (),
) -> tuple[Task, parcels.Parcel]:
    """Ask ``peer`` for a task: the proxy task here and the request parcel, one commit."""
    from gitfactory.config import factory_yaml
    from gitfactory.store.branch import Change

    factory.require_tip()
    config = factory_yaml.load(factory)
    if peer not in config.peers:
        raise UsageError(
            f"factory {peer!r} is not a peer of this one",
            hint=f"add it under peers: in factory.yaml (`gitfactory peers --help`); "
            f"peers now: {', '.join(sorted(config.peers)) or 'none'}",
        )
    task = Task(
        id=ids.random_id(), title=title.strip(), requester=requester,
        created=clock.format_time(clock.now_ms()), priority=priority,
        labels=tuple(dict.fromkeys(labels)), body=body.rstrip() + "\n" if body.strip() else "",
    )  # fmt: skip
    asked: dict[str, Any] = {"title": task.title, "priority": priority}
    if task.body:
        asked["body"] = task.body
    if task.labels:
        asked["labels"] = list(task.labels)
    try:
        records.validate(records.TASK, task.path, task.to_record())
        parcel = parcels.new(config.name, peer, parcels.REQUEST, requester, task=asked,
                             proxy=task.id)  # fmt: skip
    except InvalidRecordError as exc:
        raise UsageError(f"{exc.field or 'task'}: {exc.reason}") from None
    event = stamp(Draft(kind="task.created", actor=requester, text=task.title, task=task.id,
                        data={"remote": {"peer": peer, "request": parcel.id}}))  # fmt: skip
    factory.store.write(Change(
        files={task.path: records.encode(task.to_record(), records.TASK),
               event.path: records.encode(event.to_record()),
               parcel.outbox_path(): parcel.encode()},
        subject=f"task: ask {peer} for {task.id[:6]} {task.title[:50]}",
        trailers=[("Factory-Record", f"task {task.id}"), ("Factory-Record", f"event {event.id}"),
                  ("Factory-Record", f"parcel {parcel.id}")],
    ))  # fmt: skip
    return task, parcel


def answer(factory: Factory, proxy_id: str, actor: str, text: str) -> parcels.Parcel:
    """Answer the question the peer's task asks, through its proxy here."""
    if not text.strip():
        raise UsageError("an empty answer", hint="give the answer's text")

    def write(st: TaskState, own: str) -> tuple[parcels.Parcel, Event, str]:
        remote = st.remote or {}
        if st.state != INPUT_REQUIRED or not remote.get("task_id"):
            raise decisions.IllegalMoveError(
                f"task {proxy_id[:8]} asks no question now (it is {st.state})",
                hint="`gitfactory task show` shows what its peer last said",
            )
        peer = str(remote["peer"])
        parcel = parcels.new(own, peer, parcels.ANSWER, actor, text=text,
                             request=remote["request"], task_id=remote["task_id"])  # fmt: skip
        event = stamp(Draft(kind=ANSWER_SENT, actor=actor, task=proxy_id, text=text[:4000],
                            data={"peer": peer, "parcel": parcel.id}))  # fmt: skip
        return parcel, event, f"task: answer {peer}'s question on {proxy_id[:6]}"

    return _on_proxy(factory, proxy_id, write)


def withdraw(factory: Factory, proxy_id: str, actor: str, reason: str) -> parcels.Parcel:
    """A person withdraws a request: the proxy is canceled here (what waits for it
    is stuck, as for any canceled task), and the peer is asked to stop its task."""
    from gitfactory.plan.tasks import OVERRIDER_ROLE, TERMINAL

    if actors.role(actor) != OVERRIDER_ROLE:
        raise UsageError(
            f"only a person (human/NAME) withdraws a request, not {actor}",
            hint="a person decides that a peer's work is no longer needed",
        )

    def write(st: TaskState, own: str) -> tuple[parcels.Parcel, Event, str]:
        remote = st.remote or {}
        if st.state in TERMINAL:
            raise decisions.IllegalMoveError(f"task {proxy_id[:8]} is {st.state} already")
        peer = str(remote["peer"])
        parcel = parcels.new(own, peer, parcels.WITHDRAW, actor, request=remote["request"],
                             task_id=remote.get("task_id"), text=reason or None)  # fmt: skip
        event = stamp(Draft(kind="task.canceled", actor=actor, task=proxy_id, text=reason,
                            data={"withdrawn": {"peer": peer, "parcel": parcel.id}}))  # fmt: skip
        return parcel, event, f"task: withdraw the request to {peer} for {proxy_id[:6]}"

    return _on_proxy(factory, proxy_id, write)


def _on_proxy(
    factory: Factory,
    proxy_id: str,
    write: Callable[[TaskState, str], tuple[parcels.Parcel, Event, str]],
) -> parcels.Parcel:
    """One commit, decided on the proxy as folded at the tip it lands on: the parcel
    for its peer and the event here that ``write`` makes of it (or refuses)."""
    from gitfactory.config import factory_yaml

    factory.require_tip()
    own = factory_yaml.load(factory).name
    sent: list[parcels.Parcel] = []

    def build(snap: Snapshot) -> Change | None:
        from gitfactory.store.branch import Change

        factory.index.refresh(str(snap.tip) if snap.tip else None)
        parcel, event, subject = write(decisions.load(factory, proxy_id), own)
        sent[:] = [parcel]
        return Change(
            {parcel.outbox_path(): parcel.encode(), event.path: records.encode(event.to_record())},
            subject,
            trailers=[("Factory-Record", f"parcel {parcel.id}"),
                      ("Factory-Record", f"event {event.id}")],
        )  # fmt: skip

    factory.store.transact(build)
    return sent[0]
