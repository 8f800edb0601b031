"""Task requests between factories: taking one in, and the news and answers about it.

A request becomes a task of this plan (``accept.tasks: auto``) or waits for a human
(``ask``: `gitfactory task requests`, `task accept`, `task reject`). The task's
``task.created`` event names its origin (peer, request parcel, the requester's proxy
task), which is how its news finds the way back (:mod:`gitfactory.peers.news`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gitfactory.config.peers import ASK, AUTO
from gitfactory.peers.work import ACTOR, DELIVERED, NOTED, PENDING, REJECTED, Arrival, Outcome, Work
from gitfactory.store import clock, ids, parcels, records
from gitfactory.store.log import Draft, stamp
from gitfactory.store.records import INBOX, OUTBOX, TASK

if TYPE_CHECKING:
    from gitfactory.plan.tasks import Task

REMOTE = "task.remote"  # news of a requested task, on its proxy here


def take(work: Work, arrival: Arrival, parcel: parcels.Parcel) -> Outcome:
    peer = arrival.peer
    policy = peer.accept
    if policy.tasks not in (ASK, AUTO):
        why = f"peers.{peer.name}.accept.tasks is {policy.tasks!r}"
        return Outcome(REJECTED, f"{peer.name!r} may not request tasks here ({why})")
    asked: dict[str, Any] = parcel.get("task")
    labels = [str(x) for x in asked.get("labels") or []]
    if policy.labels is not None:
        refused = sorted(set(labels) - set(policy.labels))
        if refused:
            return Outcome(REJECTED, f"label(s) {', '.join(refused)} are not among those "
                                     f"peers.{peer.name}.accept.labels allows: "
                                     f"{', '.join(policy.labels) or 'none'}")  # fmt: skip
    if not work.within_limit(peer):
        return Outcome(REJECTED, f"{peer.name!r} sent its {policy.per_day} messages and "
                                 f"requests of the last 24 hours "
                                 f"(peers.{peer.name}.accept.per_day)")  # fmt: skip
    if policy.tasks == ASK:
        return Outcome(PENDING, "kept for a person of this factory to accept or reject")
    task, files, event = made(peer.name, parcel, ACTOR)
    return Outcome(DELIVERED, record=task.id, files=files, events=[event], task=task.id)


def made(peer: str, parcel: parcels.Parcel, actor: str) -> tuple[Task, dict[str, bytes], Any]:
    """The task a request becomes, its record file and its ``task.created`` event."""
    from gitfactory.plan.tasks import Task

    asked: dict[str, Any] = parcel.get("task")
    body = str(asked.get("body") or "")
    task = Task(
        id=ids.random_id(), title=str(asked["title"]).strip(),
        requester=f"{peer}:{parcel.by}", created=clock.format_time(clock.now_ms()),
        priority=int(asked.get("priority", 2)),
        labels=tuple(dict.fromkeys(str(x) for x in asked.get("labels") or [])),
        body=body.rstrip() + "\n" if body.strip() else "",
    )  # fmt: skip
    origin = {"peer": peer, "request": parcel.id, "proxy": parcel.get("proxy")}
    event = stamp(Draft(kind="task.created", actor=actor, text=task.title, task=task.id,
                        data={"origin": origin}))  # fmt: skip
    return task, {task.path: records.encode(task.to_record(), TASK)}, event


def origin_task(work_factory: Any, peer: str, request_id: str) -> str | None:
    """The task of this plan that ``peer``'s request became, if it became one."""
    row = work_factory.index.db.execute(
        "SELECT task FROM events WHERE kind = 'task.created' "
        "AND json_extract(data, '$.origin.peer') = ? "
        "AND json_extract(data, '$.origin.request') = ? LIMIT 1",
        (peer, request_id),
    ).fetchone()
    return str(row[0]) if row else None


def news(work: Work, arrival: Arrival, parcel: parcels.Parcel) -> Outcome:
    """How a task we asked of the peer is doing: an event on our proxy task."""
    about = parcels.find(work.factory, OUTBOX, str(parcel.get("request")))
    if about is None or about.to != arrival.peer.name or about.type != parcels.REQUEST:
        return Outcome(REJECTED, f"is news of request {parcel.get('request')}, which we "
                                 f"never sent {arrival.peer.name!r}")  # fmt: skip
    proxy = str(about.get("proxy"))
    data = {key: parcel.get(key) for key in ("state", "step", "question", "merge", "reason")
            if parcel.get(key) is not None}  # fmt: skip
    data.update(peer=arrival.peer.name, task_id=parcel.get("task_id"), request=about.id)
    text = f"{arrival.peer.name}: {parcel.get('state')}"
    event = stamp(Draft(kind=REMOTE, actor=ACTOR, task=proxy, text=text, data=data))
    return Outcome(NOTED, task=proxy, events=[event], receipt=False)


def answered(work: Work, arrival: Arrival, parcel: parcels.Parcel) -> Outcome:
    """The answer to a question asked on a task the peer requested."""
    from gitfactory.plan import decisions
    from gitfactory.plan.tasks import DEFAULT_LEASE_MS, INPUT_REQUIRED

    request = str(parcel.get("request"))
    if parcels.find(work.factory, INBOX, request) is None:
        return Outcome(REJECTED, f"answers on request {request}, which {arrival.peer.name!r} "
                                 "never sent us")  # fmt: skip
    task_id = origin_task(work.factory, arrival.peer.name, request)
    if task_id is None or task_id != parcel.get("task_id"):
        return Outcome(REJECTED, f"task {parcel.get('task_id')} is not the one request "
                                 f"{request} became")  # fmt: skip
    st = decisions.load(work.factory, task_id)
    if st.state != INPUT_REQUIRED:
        return Outcome(REJECTED, f"task {task_id[:8]} asks no question now (it is {st.state})")
    actor = f"{arrival.peer.name}:{parcel.by}"
    lease = clock.now_ms() + DEFAULT_LEASE_MS
    event = stamp(Draft(kind="task.answered", actor=actor, task=task_id,
                        text=str(parcel.get("text")),
                        data={"lease_until": lease, "seq": st.seq}))  # fmt: skip
    return Outcome(DELIVERED, record=task_id, task=task_id, events=[event])
