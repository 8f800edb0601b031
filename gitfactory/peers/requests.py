"""Task requests between factories: taking one in, and the news and answers about it.

A request becomes a task of this plan (``accept.tasks: auto``) or waits for a human
(``ask``: `gitfactory task requests`, `task accept`, `task reject`). The task's
``task.created`` event names its origin (peer, request parcel, the requester's proxy
task), which is how its news finds the way back (:mod:`gitfactory.peers.news`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gitfactory.config.peers import ASK, AUTO
from gitfactory.errors import FactoryError
from gitfactory.peers.work import ACTOR, DELIVERED, NOTED, PENDING, REJECTED, Arrival, Outcome, Work
from gitfactory.plan.tasks import INPUT_REQUIRED, REMOTE_NEWS
from gitfactory.store import clock, ids, parcels, records
from gitfactory.store.log import Draft, stamp
from gitfactory.store.records import INBOX, OUTBOX, TASK

if TYPE_CHECKING:
    from gitfactory.plan.tasks import Task


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
    data = {key: parcel.get(key) for key in _NEWS if parcel.get(key) is not None}
    data.update(peer=arrival.peer.name, task_id=parcel.get("task_id"), request=about.id,
                parcel=parcel.id)  # fmt: skip
    text = f"{arrival.peer.name}: {parcel.get('state')}"
    event = stamp(Draft(kind=REMOTE_NEWS, actor=ACTOR, task=proxy, text=text, data=data))
    out = Outcome(NOTED, task=proxy, events=[event], receipt=False)
    question = parcel.get("question")
    if parcel.get("state") == INPUT_REQUIRED and isinstance(question, str):
        _ask_requester(work, arrival, parcel, proxy, question, out)
    return out


_NEWS = ("state", "step", "holder", "question", "asker", "merge", "reason")


def _ask_requester(work: Work, arrival: Arrival, parcel: parcels.Parcel, proxy: str,
                   question: str, out: Outcome) -> None:  # fmt: skip
    """The peer's task asks a question: it reaches whoever asked for the task here,
    once per question."""
    from gitfactory.mail.messages import compose, delivery
    from gitfactory.plan import decisions

    try:
        st = decisions.load(work.factory, proxy)
    except FactoryError:
        return
    if (st.remote or {}).get("question") == question and st.state == INPUT_REQUIRED:
        return  # told already
    asker = parcel.get("asker")
    peer = arrival.peer.name
    sender = f"{peer}:{asker}" if isinstance(asker, str) else f"{peer}:{ACTOR}"
    body = (f"{question.rstrip()}\n\n---\nAsked on {peer}'s task {parcel.get('task_id')}, "
            f"requested here as task {proxy}.\nAnswer with: gitfactory task answer "
            f"{proxy[:8]} 'TEXT'\n")  # fmt: skip
    try:
        message = compose(work.factory, sender=sender, to=[st.task.requester],
                          subject=f"Question from {peer}: {st.task.title}"[:200], body=body,
                          task=proxy)  # fmt: skip
    except FactoryError:
        return  # a requester that is no address (a plain-git client's): the proxy shows it
    out.files[message.path] = records.encode(message.to_record(), records.MESSAGE)
    out.events.append(
        delivery(
            message,
            ACTOR,
            f"peer:{peer}",
            False,
            f"a question of factory {peer!r} on a task requested there",
        )
    )


def answered(work: Work, arrival: Arrival, parcel: parcels.Parcel) -> Outcome:
    """The answer to a question asked on a task the peer requested."""
    from gitfactory.plan import decisions
    from gitfactory.plan.tasks import DEFAULT_LEASE_MS

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


# -- a person decides on a request kept for them (accept.tasks: ask) -------------------

ACCEPTED, DECLINED = "peer.request.accepted", "peer.request.rejected"


def decide(factory: Any, text: str, actor: str, reason: str | None = None) -> dict[str, Any]:
    """Accept (``reason`` None) or reject a pending request: the task it becomes (on
    accept), an event, and a receipt for the peer, in one commit decided at its tip."""
    from gitfactory.config import factory_yaml
    from gitfactory.peers import listing
    from gitfactory.plan.decisions import TaskNotFoundError
    from gitfactory.store.branch import Change

    factory.require_tip()
    config = factory_yaml.load(factory)
    out: dict[str, Any] = {}

    def build(snap: Any) -> Change | None:
        factory.index.refresh(str(snap.tip) if snap.tip else None)
        waiting = {p.id: p for p in listing.pending_requests(factory)}
        wanted = ids.typed(text, "request", TaskNotFoundError)
        found = [i for i in waiting if i.startswith(wanted)]
        if not found:
            _decided_already(factory, wanted)
        request_id = ids.pick("request", text, found, TaskNotFoundError,
                              listing="`gitfactory task requests`",
                              describe=lambda some: [f"{i[:10]} ({waiting[i].sender}: "
                                                     f"{waiting[i].get('task')['title']})"
                                                     for i in some])  # fmt: skip
        parcel = waiting[request_id]
        files: dict[str, bytes] = {}
        data: dict[str, Any] = {"peer": parcel.sender, "request": parcel.id}
        if reason is None:
            task, files, created = made(parcel.sender, parcel, actor)
            files[created.path] = records.encode(created.to_record())
            data["task"] = task.id
            outcome, record, note = DELIVERED, task.id, ""
        else:
            data["reason"] = reason
            outcome, record, note = REJECTED, None, reason or "rejected by a person"
        receipt = parcels.new(config.name, parcel.sender, parcels.RECEIPT, actor,
                              parcel=parcel.id, outcome=outcome, record=record,
                              reason=note or None)  # fmt: skip
        kind = ACCEPTED if reason is None else DECLINED
        event = stamp(Draft(kind=kind, actor=actor, task=data.get("task"),
                            text=f"{parcel.sender}: {parcel.get('task')['title']}"[:500],
                            data=data))  # fmt: skip
        files[event.path] = records.encode(event.to_record())
        files[receipt.outbox_path()] = receipt.encode()
        out.clear()
        out.update(data, outcome=outcome, title=parcel.get("task")["title"])
        verb = "accept" if reason is None else "reject"
        return Change(files, f"peers: {verb} {parcel.sender}'s request {parcel.id[:8]}",
                      trailers=[("Factory-Record", f"event {event.id}"),
                                ("Factory-Record", f"parcel {receipt.id}")])  # fmt: skip

    factory.store.transact(build)
    return out


def _decided_already(factory: Any, wanted: str) -> None:
    """Refuse, saying so, a decision on a request that a person already decided."""
    from gitfactory.plan.decisions import IllegalMoveError

    row = factory.index.db.execute(
        "SELECT kind, actor, json_extract(data, '$.request'), json_extract(data, '$.task') "
        "FROM events WHERE kind IN (?, ?) AND substr(json_extract(data, '$.request'), 1, ?) = ? "
        "ORDER BY id LIMIT 1",
        (ACCEPTED, DECLINED, len(wanted), wanted),
    ).fetchone()
    if row is None:
        return
    kind, actor, request, task = row
    if kind == ACCEPTED:
        raise IllegalMoveError(
            f"request {request[:10]} was accepted already, by {actor}: it is task {task[:8]}",
            hint=f"gitfactory task show {task[:8]}",
        )
    raise IllegalMoveError(
        f"request {request[:10]} was rejected already, by {actor}",
        hint="the requester can send it again with `task add --in`",
    )


def withdrawn(work: Work, arrival: Arrival, parcel: parcels.Parcel) -> Outcome:
    """The requester no longer needs a task it asked for: its holder here is asked to
    stop (``task.cancel_requested``), or a request still waiting for a person leaves
    the queue."""
    request = str(parcel.get("request"))
    peer = arrival.peer.name
    if parcels.find(work.factory, INBOX, request) is None:
        return Outcome(REJECTED, f"withdraws request {request}, which {peer!r} never sent us")
    reason = str(parcel.get("text") or "")
    why = f"{peer} withdrew its request" + (f": {reason}" if reason else "")
    actor = f"{peer}:{parcel.by}"
    task_id = origin_task(work.factory, peer, request)
    if task_id is None:
        event = stamp(Draft(kind=DECLINED, actor=actor, text=why[:500],
                            data={"peer": peer, "request": request, "reason": why}))  # fmt: skip
        return Outcome(DELIVERED, why, events=[event])
    event = stamp(Draft(kind="task.cancel_requested", actor=actor, task=task_id, text=why[:4000]))
    return Outcome(DELIVERED, why, record=task_id, task=task_id, events=[event])
