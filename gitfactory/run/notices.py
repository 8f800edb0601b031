"""What a person should hear of: notices found in the log, by the rules of ``notify:``.

A notice is an event of the log seen through a rule (an agent's question, a task
that failed, a gate that failed twice in a row, a merge conflict, a task waiting
at a person's step, a peer's request waiting, records deleted or changed). Each one
is sent once: its key (the event's id and the rule's) goes into a ``notify.sent``
record (or ``notify.failed``, with the reason), and a key that has a record is
never sent again, after any restart.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from gitfactory.config import notify
from gitfactory.plan import tasks
from gitfactory.store import clock
from gitfactory.store.log import Event, EventQuery

if TYPE_CHECKING:
    from gitfactory.config.factory_yaml import FactoryConfig
    from gitfactory.config.notify import Rule
    from gitfactory.store.factory import Factory

LOOKBACK_MS = 24 * 3600 * 1000  # a first round looks back this far (older news is old)
SENT, FAILED = "notify.sent", "notify.failed"
SOURCES = ("task.asked", *sorted(tasks.STEP_ENDS), *sorted(tasks.RESTARTS), "task.failed",
           "task.remote", "gate.result", "merge.result", "peer.received",
           "integrity.violated")  # fmt: skip
HUMAN_ROLE = "human"


@dataclass(frozen=True)
class Notice:
    event: str  # what happened: one of config.notify.EVENTS
    about: Event  # the record it comes from
    rule: Rule
    title: str
    text: str
    task: dict[str, Any] | None = field(default=None)

    @property
    def key(self) -> str:
        return f"{self.about.id}:{self.rule.id}"

    @property
    def act(self) -> str:
        """The command that acts on it."""
        short = (self.task or {}).get("short", "ID")
        return {
            notify.QUESTION: f'gitfactory task answer {short} "YOUR ANSWER"',
            notify.FAILED: f"gitfactory log --task {short}; then gitfactory task retry {short}",
            notify.GATE_FAILED_TWICE: f"gitfactory task show {short}",
            notify.MERGE_CONFLICT: f"gitfactory task show {short}",
            notify.HUMAN_STEP: f"gitfactory step done {short}",
            notify.PEER_REQUEST: "gitfactory task requests",
            notify.INTEGRITY: "gitfactory verify --repair",
        }.get(self.event, "gitfactory status")

    def payload(self, factory_name: str) -> dict[str, Any]:
        """The notification as the command and the webhook get it."""
        return {"key": self.key, "event": self.event, "factory": factory_name,
                "title": self.title, "text": self.text, "act": self.act, "time": self.about.time,
                "actor": self.about.actor, "record": self.about.id, "task": self.task}  # fmt: skip


class Finder:
    """Reads the log from where it last stopped; remembers what was sent."""

    def __init__(self) -> None:
        self.after_seq: int | None = None
        self.recorded: set[str] = set()

    def pending(self, factory: Factory, config: FactoryConfig) -> list[Notice]:
        factory.index.refresh()
        since = clock.now_ms() - LOOKBACK_MS
        first = self.after_seq is None
        if first:
            for kind in (SENT, FAILED):
                for _, e in factory.index.events(EventQuery(kind=kind, since_ms=since)):
                    self.recorded.add(str(e.data.get("key")))
        found: list[tuple[int, Event]] = []
        for kind in SOURCES:
            q = EventQuery(kind=kind, since_ms=since if first else None,
                           after_seq=None if first else self.after_seq)  # fmt: skip
            found.extend(factory.index.events(q))
        found.sort(key=lambda pair: pair[0])
        if found:
            self.after_seq = max(self.after_seq or 0, found[-1][0])
        elif first:
            last = factory.index.events(EventQuery(after_seq=0, limit=1))
            self.after_seq = last[0][0] if last else 0
        out = []
        for _, e in found:
            for event, title, text in _classify(factory, config, e):
                if not _current(factory, event, e):
                    continue  # answered, retried, moved on: old news is not sent
                task = _task(factory, e.task)
                for rule in config.notify:
                    notice = Notice(event, e, rule, title, text, task)
                    if rule.covers(event) and notice.key not in self.recorded:
                        out.append(notice)
        return out


def _classify(factory: Factory, config: FactoryConfig, e: Event) -> list[tuple[str, str, str]]:
    """(event, title, text) of what ``e`` means to a person, if anything."""
    d, title = e.data, _title(factory, e.task)
    if e.kind == "task.asked":
        return [(notify.QUESTION, f"{e.actor} asks about {title}", e.text)]
    if e.kind in tasks.STEP_ENDS or e.kind in tasks.RESTARTS:
        step = str(d.get("next") if e.kind in tasks.STEP_ENDS else d.get("step") or "")
        if step == tasks.FAILED:  # the reason and the words of the step that failed it
            said = ": ".join(p for p in (str(d.get("why") or ""), e.text) if p)
            return [(notify.FAILED, f"{title} failed", said)]
        if step and _role(factory, config, e.task, step) == HUMAN_ROLE:
            return [(notify.HUMAN_STEP, f"{title} waits for a person at {step}", e.text)]
        return []
    if e.kind == "task.failed" or (e.kind == "task.remote" and d.get("state") == tasks.FAILED):
        return [(notify.FAILED, f"{title} failed", str(d.get("reason") or e.text))]
    if e.kind == "gate.result" and d.get("pass") is False and _second_failure(factory, e):
        return [(notify.GATE_FAILED_TWICE, f"gate {d.get('gate')} failed twice on {title}",
                 str(d.get("summary") or e.text))]  # fmt: skip
    if e.kind == "merge.result" and d.get("pass") is False and d.get("conflicts"):
        files = ", ".join(str(c) for c in list(d["conflicts"])[:10])
        return [(notify.MERGE_CONFLICT, f"merge conflict on {title}", f"{e.text} ({files})")]
    if e.kind == "peer.received" and d.get("outcome") == "pending" and d.get("type") == "request":
        return [(notify.PEER_REQUEST, f"the factory {d.get('peer')} asks for a task", e.text)]
    if e.kind == "integrity.violated":
        return [(notify.INTEGRITY, "records were deleted or changed on the factory branch",
                 e.text)]  # fmt: skip
    return []


def _current(factory: Factory, event: str, e: Event) -> bool:
    """Whether what ``e`` says still holds: the question is still open, the task still
    failed, still at the person's step."""
    from gitfactory.plan import states

    if event == notify.PEER_REQUEST:  # still waiting for someone to accept or reject it
        from gitfactory.peers import listing

        return any(p.id == e.data.get("parcel") for p in listing.pending_requests(factory))
    if e.task is None or event not in (notify.QUESTION, notify.FAILED, notify.HUMAN_STEP):
        return True
    now = states.task_state(factory, e.task)
    if now is None:
        return False
    if event == notify.QUESTION:
        asked = factory.index.events(EventQuery(kind="task.asked", task=e.task, limit=1))
        return now["state"] == tasks.INPUT_REQUIRED and bool(asked) and asked[-1][1].id == e.id
    if event == notify.FAILED:
        return bool(now["state"] == tasks.FAILED)
    return now["state"] not in tasks.TERMINAL and now.get("step") == (
        e.data.get("next") if e.kind in tasks.STEP_ENDS else e.data.get("step")
    )


def _second_failure(factory: Factory, e: Event) -> bool:
    """Whether this failed gate result is its gate's second failure in a row on the
    task (since the task last started again)."""
    if e.task is None:
        return False
    streak = 0
    for _, r in factory.index.events(EventQuery(task=e.task)):
        if r.id > e.id:
            break
        if r.kind in tasks.RESTARTS:
            streak = 0
        elif r.kind == "gate.result" and r.data.get("gate") == e.data.get("gate"):
            streak = streak + 1 if r.data.get("pass") is False else 0
    return streak == 2


def _role(factory: Factory, config: FactoryConfig, task_id: str | None, step: str) -> str:
    record = factory.index.task_record(task_id) if task_id else None
    try:
        return config.workflow(record.get("workflow") if record else None).step(step).role
    except Exception:  # a step factory.yaml no longer has
        return ""


def _title(factory: Factory, task_id: str | None) -> str:
    record = factory.index.task_record(task_id) if task_id else None
    if record is None:
        return "a task" if task_id else "the factory"
    return f"{factory.index.short_id('tasks', str(task_id))} {record.get('title', '')!s}"


def _task(factory: Factory, task_id: str | None) -> dict[str, Any] | None:
    record = factory.index.task_record(task_id) if task_id else None
    if record is None:
        return None
    return {"id": task_id, "short": factory.index.short_id("tasks", str(task_id)),
            "title": record.get("title"), "requester": record.get("requester")}  # fmt: skip
