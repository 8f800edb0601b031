"""Session summaries: what a finished task went through, as one record, and the history
document generated from those records.

A summary is an event of kind ``session.summary`` (actor ``factory/docs``, ``task`` set)
whose text is one line for people and whose data holds the facts, taken from the task's
own events: its steps and their outcomes, the runs of agents and gates, who worked on it,
its artifacts and, when there is one, its merge. ``history.md`` is a pure function of
the summaries (:func:`history`): the same records give the same bytes on every machine,
so the file can be deleted, damaged or conflict in a merge and is always rebuilt as it
was. Nothing here reads or writes git: :mod:`gitfactory.knowledge.documents` does.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from gitfactory.errors import UsageError
from gitfactory.plan.tasks import COMPLETED, MOVES, STEP_ENDS, TERMINAL, TaskState
from gitfactory.store import clock
from gitfactory.store.log import Draft, Event

if TYPE_CHECKING:
    from collections.abc import Iterable

SUMMARY = "session.summary"
ACTOR = "factory/docs"
HISTORY_SESSIONS = 200  # entries history.md shows; older ones are counted, not shown
_MAX_ITEMS = 100  # steps, runs and artifacts kept in one summary (a record is <= 1 MiB)
_MAX_NOTE = 500
_RUN_FIELDS = ("agent", "step", "outcome", "how", "duration_ms", "artifact")
_MERGE_FIELDS = ("strategy", "target", "status", "commit")
_TIME = re.compile(r"^(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2})")
_PREAMBLE = (
    "The sessions of this factory, newest first: one entry per finished task, from its\n"
    "`session.summary` record. This file is generated: `gitfactory docs regenerate`\n"
    "rewrites it from the records, so edits made here do not last."
)


def summary(st: TaskState, artifacts: list[dict[str, Any]]) -> Draft:
    """The summary of a finished task from its state with history (``decisions.load(...,
    history=True)``) and its artifact manifests."""
    task = st.task
    if st.state not in TERMINAL:
        raise UsageError(
            f"task {task.id[:8]} is {st.state}: only a finished task has a session to summarize",
            hint="summaries are written when a task is completed, failed, canceled or rejected",
        )
    moves = [e for e in st.history if e.kind in MOVES]
    last = moves[-1] if moves else None  # the move that ended it: nothing follows a final one
    finished = last.time if last else task.created
    steps = [_step(e) for e in st.history if e.kind in STEP_ENDS]
    runs = [{k: e.data.get(k) for k in _RUN_FIELDS}
            for e in st.history if e.kind == "dispatch.finished"]  # fmt: skip
    agents = {e.actor for e in st.history if e.kind == "task.claimed"}
    agents |= {r["agent"] for r in runs if isinstance(r["agent"], str)}
    data: dict[str, Any] = {
        "title": task.title, "state": st.state, "workflow": task.workflow,
        "requester": task.requester, "created": task.created, "finished": finished,
        "duration_ms": max(clock.parse_time(finished) - clock.parse_time(task.created), 0),
        "reason": _reason(last), "steps": steps[-_MAX_ITEMS:], "runs": runs[-_MAX_ITEMS:],
        "agents": sorted(agents), "attempts": dict(st.attempts),
        "artifacts": [{k: a.get(k) for k in ("id", "name", "size", "step")}
                      for a in artifacts][-_MAX_ITEMS:],
    }  # fmt: skip
    merges = [e for e in st.history if e.kind == "merge.result"]
    if merges:
        data["merge"] = {k: merges[-1].data.get(k) for k in _MERGE_FIELDS}
    return Draft(kind=SUMMARY, actor=ACTOR, task=task.id, text=_line(data), data=data)


def _step(e: Event) -> dict[str, Any]:
    d = e.data
    return {
        "step": d.get("step"), "outcome": d.get("outcome"), "next": d.get("next"),
        "why": d.get("why"), "by": e.actor, "note": e.text[:_MAX_NOTE], "time": e.time,
        **({"override": True} if e.kind == "task.overridden" else {}),
    }  # fmt: skip


def _reason(last: Event | None) -> str:
    if last is None:
        return ""
    if last.kind in STEP_ENDS:
        return _str(last.data.get("why"))
    return last.text[:_MAX_NOTE]


def _line(data: dict[str, Any]) -> str:
    """One line for `gitfactory log`: title, end, duration, steps, agents."""
    steps = ", ".join(_step_word(s) for s in data["steps"][-12:])
    text = f"{_inline(data['title'])[:100]}: {data['state']} in {_duration(data['duration_ms'])}"
    text += f" after {steps}" if steps else ""
    text += f" (by {', '.join(data['agents'][:6])})" if data["agents"] else ""
    return text


def _step_word(step: Any) -> str:
    name, outcome = _str(step.get("step")) or "?", _str(step.get("outcome"))
    return name if outcome == "success" else f"{name} ({outcome or 'ended'})"


# -- history.md ---------------------------------------------------------------------------


def history(newest_first: Iterable[Event], total: int) -> bytes:
    """history.md: ``newest_first`` summaries as entries, and a note counting the
    ``total`` summaries that exist beyond them."""
    shown = list(newest_first)
    lines = ["# History", "", _PREAMBLE, ""]
    if not shown:
        lines += ["No finished sessions yet.", ""]
    for event in shown:
        lines += [*_entry(event), ""]
    older = total - len(shown)
    if older > 0:
        lines += [f"{older} older session(s) are not shown here: "
                  f"`gitfactory log --kind {SUMMARY}` lists them all.", ""]  # fmt: skip
    return ("\n".join(lines).rstrip("\n") + "\n").encode("utf-8")


def entries(text: str) -> str:
    """The entries of a history document (its first ``## `` heading on), or ''."""
    match = re.search(r"^## ", text, re.MULTILINE)
    return text[match.start() :].strip() if match else ""


def _entry(event: Event) -> list[str]:
    """One session: a heading, how it ended, then a line for each kind of fact. Every
    field is checked: a summary written by another program must not break the file."""
    d = event.data
    when = _when(d.get("finished")) or _when(event.time)
    title = _inline(_str(d.get("title"))) or "(untitled)"
    state = _str(d.get("state")) or "finished"
    took = f" after {_duration(d['duration_ms'])}" if _is_int(d.get("duration_ms")) else ""
    task = f"task {event.task[:8]}" if event.task else "no task"
    by = f", requested by {_str(d.get('requester'))}" if _str(d.get("requester")) else ""
    lines = [f"## {when} · {title}", "", f"{state}{took}; {task}{by}."]
    steps = _dicts(d.get("steps"))
    reason = _inline(_str(d.get("reason")))
    if reason and state != COMPLETED and all(_inline(_str(s.get("why"))) != reason for s in steps):
        lines += [f"- why: {reason}"]  # a cancel's or reject's reason (a step's is below)
    if steps:
        lines += ["- steps: " + " -> ".join(_step_text(s) for s in steps)]
    for s in steps:
        if _str(s.get("note")):
            step, who = _str(s.get("step")) or "?", _str(s.get("by")) or "?"
            lines += [f"- note on {step} by {who}: {_inline(_str(s.get('note')))}"]
    agents = [a for a in d.get("agents") or [] if isinstance(a, str)]
    if agents:
        lines += [f"- agents: {', '.join(agents)}"]
    artifacts = _dicts(d.get("artifacts"))
    if artifacts:
        lines += ["- artifacts: " + ", ".join(_artifact_text(a) for a in artifacts)]
    merge = d.get("merge")
    if isinstance(merge, dict):
        how = f"{_str(merge.get('strategy')) or 'merge'} into {_str(merge.get('target')) or '?'}"
        commit = _str(merge.get("commit"))[:12]
        at = f" at {commit}" if commit else ""
        lines += [f"- merge: {how}: {_str(merge.get('status')) or 'merged'}{at}"]
    return lines


def _step_text(s: dict[str, Any]) -> str:
    name, outcome = _str(s.get("step")) or "?", _str(s.get("outcome")) or "ended"
    why = _inline(_str(s.get("why")))
    return f"{name}: {outcome}" + (f" ({why})" if why and outcome != "success" else "")


def _artifact_text(a: dict[str, Any]) -> str:
    size = f"{a['size']:,} bytes, " if _is_int(a.get("size")) else ""
    return f"{_inline(_str(a.get('name'))) or '?'} ({size}id {_str(a.get('id'))[-8:] or '?'})"


# -- small helpers ------------------------------------------------------------------------


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _dicts(value: Any) -> list[dict[str, Any]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _inline(text: str) -> str:
    """Free text on one markdown line (titles and notes come from anyone)."""
    return " ".join(text.split())[:300]


def _when(value: Any) -> str:
    match = _TIME.match(value) if isinstance(value, str) else None
    return f"{match.group(1)} {match.group(2)} UTC" if match else ""


def _duration(ms: int) -> str:
    s = max(ms, 0) // 1000
    for unit, size, sub, sub_size in (("d", 86400, "h", 3600), ("h", 3600, "m", 60)):
        if s >= size:
            return f"{s // size}{unit} {s % size // sub_size:02d}{sub}"
    return f"{s // 60}m {s % 60:02d}s" if s >= 60 else f"{s}s"
