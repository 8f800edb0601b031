"""Naming a task: any unique prefix of its id, or ``peer:ID`` for the proxy of a task
asked of a peer factory (SPEC §20)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from gitfactory.errors import UsageError
from gitfactory.plan import states
from gitfactory.store import ids

if TYPE_CHECKING:
    from gitfactory.store.factory import Factory


class TaskNotFoundError(UsageError):
    """No task, or more than one, has an id starting with what was typed."""


def resolve(factory: Factory, text: str) -> str:
    """The full id of the task whose id starts with ``text`` (any unique prefix);
    ``peer:ID`` names the proxy of a task requested of a peer factory, by the peer's
    task id (or the proxy's own)."""
    if ":" in text:
        return _proxy(factory, *text.split(":", 1))
    wanted = ids.typed(text, "task", TaskNotFoundError)
    found = factory.index.ids_starting("tasks", wanted)
    return ids.pick("task", text, found, TaskNotFoundError, listing="`gitfactory task list`",
                    describe=lambda some: _described(factory, some))  # fmt: skip


def _proxy(factory: Factory, peer: str, text: str) -> str:
    wanted = ids.typed(text, "task", TaskNotFoundError)
    found = states.proxies(factory, peer, wanted)
    if not found:
        raise TaskNotFoundError(
            f"no task of {peer!r} known here as {text!r}",
            hint=f"ask {peer} for one with `gitfactory task add --in {peer} TITLE`, and "
            f"name it by its id there or here (`gitfactory task list` shows proxies)",
        )
    return ids.pick("task", f"{peer}:{text}", found, TaskNotFoundError,
                    listing="`gitfactory task list`",
                    describe=lambda some: _described(factory, some))  # fmt: skip


def _described(factory: Factory, task_ids: Sequence[str]) -> list[str]:
    """Tasks as an ambiguous id names them: short id and title."""
    short = factory.index.short_ids("tasks", task_ids)
    titles = {t: (factory.index.task_record(t) or {}).get("title", "") for t in task_ids}
    return [f"{short[t]} ({titles[t]})" for t in task_ids]


__all__ = ["TaskNotFoundError", "resolve"]
