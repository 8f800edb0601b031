"""What a person does from the board: answer a question, retry, cancel, change a
priority. Each is the library call the CLI makes for the same command (a proxy of a
task asked of a peer factory goes to the peer, as `task answer` and `task cancel`
do), and lands as an ordinary record."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gitfactory.errors import UsageError
from gitfactory.plan import decisions, edits, steps
from gitfactory.store import clock

if TYPE_CHECKING:
    from gitfactory.store.factory import Factory

ANSWER_LEASE = "15m"  # as `task answer`'s default
TEXT_MAX = 20_000  # characters of an answer or a reason


def answer(factory: Factory, text: str, actor: str, reply: str) -> dict[str, Any]:
    task_id = _task(factory, text)
    reply = _text(reply, "answer", required=True)
    if decisions.load(factory, task_id).remote is not None:
        from gitfactory.peers import asking

        parcel = asking.answer(factory, task_id, actor, reply)
        return {"id": task_id, "peer": parcel.to, "answer": parcel.id}
    lease = clock.parse_duration(ANSWER_LEASE, "lease")
    st = decisions.answer(factory, task_id, actor, reply, lease)
    return {"id": task_id, "state": st.state, "assignee": st.assignee}


def retry(factory: Factory, text: str, actor: str, step: str | None, reason: str) -> dict[str, Any]:
    task_id = _task(factory, text)
    st = steps.restart(
        factory, task_id, actor, str(step) if step else None, _text(reason, "reason")
    )
    return {"id": task_id, "state": st.state, "step": st.step}


def cancel(factory: Factory, text: str, actor: str, reason: str) -> dict[str, Any]:
    task_id = _task(factory, text)
    reason = _text(reason, "reason")
    if decisions.load(factory, task_id).remote is not None:
        from gitfactory.peers import asking

        parcel = asking.withdraw(factory, task_id, actor, reason)
        return {"id": task_id, "state": "canceled", "peer": parcel.to, "withdraw": parcel.id}
    st = decisions.cancel(factory, task_id, actor, reason)
    return {"id": task_id, "state": st.state, "cancel_requested": st.cancel_requested}


def reprioritise(factory: Factory, text: str, actor: str, priority: Any) -> dict[str, Any]:
    task_id = _task(factory, text)
    text = str(priority).strip()
    value = int(text) if text.isascii() and text.isdigit() else -1
    if not 0 <= value <= 9:
        raise UsageError(f"priority must be a whole number from 0 to 9, not {str(priority)[:20]!r}")
    st = edits.edit(factory, task_id, actor, {"priority": value})
    return {"id": task_id, "state": st.state, "priority": st.task.priority}


def _task(factory: Factory, text: str) -> str:
    factory.require_tip()
    factory.index.refresh()
    return decisions.resolve(factory, text)


def _text(value: Any, what: str, required: bool = False) -> str:
    text = str(value or "").strip()
    if required and not text:
        raise UsageError(f"the {what} is empty: write it in the box")
    if len(text) > TEXT_MAX:
        raise UsageError(f"the {what} is {len(text):,} characters; at most {TEXT_MAX:,}")
    return text
