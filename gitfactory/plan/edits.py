"""Plan edits: retitle, reprioritise, relabel, add or remove dependencies, split,
supersede. Every edit is a new event; every past version of the plan stays in the log.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from gitfactory.errors import FactoryError, InvalidRecordError, UsageError
from gitfactory.plan import decisions, tasks
from gitfactory.plan.tasks import TaskState
from gitfactory.store.log import Draft

if TYPE_CHECKING:
    from gitfactory.store.factory import Factory


class CycleError(FactoryError):
    """A dependency would close a cycle; the message names it."""


def find_cycle(states: Iterable[TaskState], task_id: str, new_deps: Iterable[str]) -> list[str]:
    """The cycle that ``task_id`` depending on ``new_deps`` would close, or []."""
    graph = {s.task.id: list(s.task.depends_on) for s in states}
    for dep in new_deps:
        path = _path(graph, dep, task_id)
        if path:
            return [task_id, *path]
    return []


def _path(graph: dict[str, list[str]], start: str, goal: str) -> list[str]:
    stack: list[tuple[str, list[str]]] = [(start, [start])]
    seen = set()
    while stack:
        node, path = stack.pop()
        if node == goal:
            return path
        if node in seen:
            continue
        seen.add(node)
        stack.extend((nxt, [*path, nxt]) for nxt in graph.get(node, ()))
    return []


def _final(st: TaskState, verb: str) -> decisions.IllegalMoveError | None:
    """The refusal to change a final task, or None."""
    if st.state not in tasks.TERMINAL:
        return None
    return decisions.IllegalMoveError(
        f"cannot {verb} task {st.task.id[:8]}: it is {st.state}; it is final",
        hint="add a follow-up task that refers to it instead",
    )


def edit(factory: Factory, task_id: str, actor: str, change: dict[str, Any]) -> TaskState:
    """Write a ``task.edited`` event; refused on a final task."""
    if not change:
        raise UsageError("nothing to change", hint="give --title, --priority, --label, ...")

    def decide(st: TaskState, now: int) -> tuple[list[Draft], FactoryError | None]:
        refused = _final(st, "edit")
        if refused is not None:
            return [], refused
        wrong = _check_edit(st, change)
        if wrong is not None:
            return [], wrong
        return [Draft(kind="task.edited", actor=actor, data=change)], None

    return decisions.act(factory, task_id, decide)


def _check_edit(st: TaskState, change: dict[str, Any]) -> UsageError | None:
    """The edited task must still be a valid task record (the checks of `task add`)."""
    from gitfactory.store import records

    record = st.task.to_record()
    for key in ("title", "priority", "body"):
        if key in change:
            record[key] = change[key]
    labels = [v for v in record.get("labels", []) if v not in change.get("remove_labels", [])]
    record["labels"] = list(dict.fromkeys([*labels, *change.get("add_labels", [])]))
    try:
        records.validate(records.TASK, st.task.path, record)
    except InvalidRecordError as exc:
        return UsageError(f"{exc.field or 'task'}: {exc.reason}; nothing was changed")
    return None


def _check_titles(titles: list[str]) -> None:
    for title in titles:
        if not title.strip() or len(title) > 200 or "\n" in title or "\r" in title:
            raise UsageError(
                f"title {title[:40]!r}: one line of 1 to 200 characters; nothing was added"
            )


def depend(
    factory: Factory, task_id: str, actor: str, add: list[str], remove: list[str]
) -> TaskState:
    """Add or remove dependencies; a new one that would close a cycle is refused."""

    def decide(st: TaskState, now: int) -> tuple[list[Draft], FactoryError | None]:
        refused = _final(st, "change")
        if refused is not None:
            return [], refused
        if task_id in add:
            return [], CycleError(f"task {task_id[:8]} cannot depend on itself")
        cycle = find_cycle(decisions.all_states(factory), task_id, add)
        if cycle:
            return [], CycleError(
                "refused: the dependency would make a cycle: " + " -> ".join(c[:8] for c in cycle),
                hint="remove one of these dependencies first (task depend ID --remove DEP)",
            )
        data = {k: v for k, v in (("add_depends_on", add), ("remove_depends_on", remove)) if v}
        return [Draft(kind="task.depends", actor=actor, data=data)], None

    return decisions.act(factory, task_id, decide)


def split(factory: Factory, task_id: str, actor: str, titles: list[str]) -> list[str]:
    """Split a task: new subtasks (parent = it), and the task now waits for all of them."""
    parent = decisions.load(factory, task_id)
    refused = _final(parent, "split")
    if refused is not None:
        raise refused
    if parent.remote is not None:  # its dependencies could never change the peer's task
        raise decisions.proxy_error(parent)
    _check_titles(titles)  # all of them before any is added
    children = [
        decisions.add(factory, title=title, requester=actor, parent=task_id,
                 priority=parent.task.priority, labels=parent.task.labels,
                 workflow=parent.task.workflow).id
        for title in titles
    ]  # fmt: skip
    depend(factory, task_id, actor, children, [])
    return children


def supersede(
    factory: Factory, task_id: str, actor: str, successor: str, reason: str = ""
) -> TaskState:
    """Replace a task by another: it is canceled, and what waited for it waits for the new one.

    The dependents are not rewritten: a dependency on a superseded task is satisfied
    when its successor is (see :func:`tasks.satisfied`), so this is one event, one commit.
    """
    if successor == task_id:
        raise UsageError("a task cannot supersede itself")
    after = decisions.load(factory, successor)
    if after.state in (tasks.FAILED, tasks.CANCELED, tasks.REJECTED):
        raise decisions.IllegalMoveError(
            f"task {successor[:8]} is {after.state}: what waits for {task_id[:8]} would wait "
            "for ever",
            hint="supersede it by a task that can still be completed",
        )
    states = decisions.all_states(factory)
    loop = _path({s.task.id: list(s.task.depends_on) for s in states}, successor, task_id)
    if loop:
        raise CycleError(
            f"refused: {successor[:8]} waits for {task_id[:8]} ("
            + " -> ".join(c[:8] for c in loop)
            + "), so it could never replace it",
            hint="remove that dependency first (task depend ID --remove DEP)",
        )

    def decide(st: TaskState, now: int) -> tuple[list[Draft], FactoryError | None]:
        if st.effective(now) == tasks.WORKING and st.assignee != actor:
            return [], decisions.IllegalMoveError(
                f"cannot supersede task {task_id[:8]}: {st.assignee} is working on it",
                hint="cancel it first (`task cancel`): its assignee will stop",
            )
        refused = _final(st, "supersede")
        if refused is not None:
            return [], refused
        pre = [decisions.expiry_draft(st, actor)] if st.expired(now) else []
        text = reason or f"superseded by {successor[:8]}"
        return [
            *pre,
            Draft(kind="task.canceled", actor=actor, text=text, data={"superseded_by": successor}),
        ], None

    return decisions.act(factory, task_id, decide)
