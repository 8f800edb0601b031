"""One task as a person reads it: its steps as a timeline (each attempt, the gates'
verdicts with their reports, the merge), its mail, its artifacts, its question."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gitfactory.board import views
from gitfactory.plan import decisions, tasks
from gitfactory.store import clock
from gitfactory.store.log import Event, EventQuery

if TYPE_CHECKING:
    from gitfactory.store.factory import Factory

# Events that open a new stretch of the timeline: someone takes the task at a step,
# or a person starts it again.
_OPENS = frozenset({"task.claimed", *tasks.RESTARTS})
_ENDS = tasks.STEP_ENDS


def task_page(factory: Factory, text: str) -> dict[str, Any]:
    """Everything the task page shows, for the task ``text`` names (any unique prefix)."""
    factory.require_tip()
    factory.index.refresh()
    task_id = decisions.resolve(factory, text)
    st = decisions.load(factory, task_id, history=True)
    now = clock.now_ms()
    t = st.task
    (card,) = views.all_cards(factory, now, only=task_id)
    short = factory.index.short_ids("tasks", [task_id, *t.depends_on])
    return {
        "id": task_id, "short": short[task_id], "title": t.title, "body": t.body,
        "state": st.effective(now), "column": card["column"], "step": card["step"],
        "attempt": card["attempt"], "holder": card["holder"], "role": card["role"],
        "lease_until": card["lease_until"], "priority": t.priority, "labels": list(t.labels),
        "requester": t.requester, "created": t.created, "workflow": t.workflow,
        "depends_on": [{"id": d, "short": short[d], **_state_of(factory, d)}
                       for d in t.depends_on],
        "remote": st.remote, "cancel_requested": st.cancel_requested,
        "question": views.question(factory, task_id) if card["column"] == "input_required"
        else None,
        "stretches": stretches(st.history), "mail": mail(factory, task_id),
        "artifacts": [a.to_record() for a in _artifacts(factory, task_id)],
        "final": st.state in tasks.TERMINAL,
        "why_final": views.why_ended(factory, task_id) if st.state in tasks.TERMINAL else None,
        "retryable": st.state in (tasks.FAILED, tasks.CANCELED, tasks.REJECTED),
    }  # fmt: skip


def _state_of(factory: Factory, task_id: str) -> dict[str, Any]:
    from gitfactory.plan import states

    found = states.task_state(factory, task_id)
    if found is None:
        return {"state": "unknown", "title": ""}
    return {"state": str(found["state"]), "title": str(found["task"].get("title", ""))}


def stretches(history: tuple[Event, ...] | list[Event]) -> list[dict[str, Any]]:
    """The history cut where someone takes the task at a step: each stretch says the
    step, its attempt, who did it, how it ended and where the task went, with its
    events (gate verdicts and the merge among them)."""
    out: list[dict[str, Any]] = []
    current = _stretch("created", None, None)
    for e in history:
        if e.kind in _OPENS and (current["events"] or current["step"] != "created"):
            out.append(current)
            step = e.data.get("step") if e.kind == "task.claimed" else "retried"
            current = _stretch(str(step or "?"), e.actor, e.time)
        _note(current, e)
    out.append(current)
    return out


def _stretch(step: str, who: str | None, since: str | None) -> dict[str, Any]:
    return {"step": step, "who": who, "since": since, "attempt": None, "outcome": None,
            "next": None, "why": None, "duration_ms": None, "gates": [], "merge": None, "said": [],
            "events": []}  # fmt: skip


def _note(s: dict[str, Any], e: Event) -> None:
    d = e.data
    row: dict[str, Any] = {
        "kind": e.kind,
        "actor": e.actor,
        "time": e.time,
        "text": e.text,
        "id": e.id,
    }
    if e.kind == "dispatch.started":
        s["attempt"] = d.get("attempt")
        s["who"] = d.get("agent") or s["who"]
    elif e.kind == "dispatch.finished":
        s["duration_ms"] = d.get("duration_ms")
        row["artifact"] = d.get("artifact")
    elif e.kind in _ENDS:
        s["outcome"], s["next"], s["why"] = d.get("outcome"), d.get("next"), d.get("why")
    elif e.kind == "gate.result":
        gate = {"gate": d.get("gate"), "pass": bool(d.get("pass")), "summary": d.get("summary"),
                "reasons": list(d.get("reasons") or []), "score": d.get("score"),
                "report": d.get("report"), "transcript": d.get("transcript")}  # fmt: skip
        s["gates"].append(gate)
        row["gate"] = gate
    elif e.kind == "merge.result":
        s["merge"] = {"pass": bool(d.get("pass")), "commit": d.get("commit"),
                      "branch": d.get("branch"), "conflicts": list(d.get("conflicts") or []),
                      "text": e.text}  # fmt: skip
    elif e.kind in tasks.RESTARTS:
        s["why"] = e.text
    elif e.kind in ("task.asked", "task.answered"):
        verb = "asks" if e.kind == "task.asked" else "answers"
        s["said"].append({"who": e.actor, "verb": verb, "text": e.text})
    elif e.kind.startswith("review."):  # a reviewer's verdict, in the reviewer's words
        s["said"].append({"who": e.actor, "verb": e.kind.split(".", 1)[1], "text": e.text})
    s["events"].append(row)


def mail(factory: Factory, task_id: str) -> list[dict[str, Any]]:
    """The messages about the task, oldest first."""
    from gitfactory.store import index_mail

    delivered = factory.index.events(EventQuery(kind="mail.delivered", task=task_id))
    out = []
    for _, e in delivered:
        record = index_mail.message(factory.index.db, str(e.data.get("message", "")))
        if record is not None:
            out.append({"id": record.get("id"), "from": record.get("from"),
                        "to": list(record.get("to") or []), "subject": record.get("subject"),
                        "body": record.get("body", ""), "time": e.time})  # fmt: skip
    return out


def _artifacts(factory: Factory, task_id: str) -> list[Any]:
    from gitfactory.knowledge import artifacts

    return artifacts.listing(factory, task_id)


SHOWN_BYTES = 2_000_000  # an artifact larger than this is offered as a download only


def artifact(factory: Factory, text: str) -> tuple[dict[str, Any], bytes, str | None]:
    """An artifact's record, its bytes, and its text where it is text that a page can
    show (never as HTML: an agent wrote it)."""
    from gitfactory.board import pages
    from gitfactory.knowledge import artifacts

    factory.require_tip()
    factory.index.refresh()
    found, data = artifacts.get(factory, text)
    shown = None
    if len(data) <= SHOWN_BYTES and b"\0" not in data[:8192]:
        try:
            shown = pages.clean(data.decode("utf-8"))
        except UnicodeDecodeError:
            shown = None
    record = found.to_record()
    record["diff"] = shown is not None and pages.is_diff(found.name, shown)
    return record, data, shown
