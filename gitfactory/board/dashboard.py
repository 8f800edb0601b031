"""What `gitfactory top` shows: one frame of the factory at work, as plain values."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gitfactory.board import views

if TYPE_CHECKING:
    from gitfactory.store.factory import Factory

READY_SHOWN = 8
RECENT = 12


def frame(factory: Factory) -> dict[str, Any]:
    """Counts by column, the running steps, the ready queue, what blocks work (with its
    fix), the questions waiting, and the newest events."""
    from gitfactory.config import factory_yaml
    from gitfactory.run import blockers

    board = views.board(factory, shown=READY_SHOWN)
    columns = {c["key"]: c for c in board["columns"]}
    agents = views.agents(factory)
    asking = columns["input_required"]["cards"]
    found = blockers.find(factory)
    events = views.log(factory, limit=RECENT)["events"]
    return {
        "factory": factory_yaml.load(factory).name, "tip": board["tip"], "now": board["now"],
        "daemon": agents["daemon"], "counts": {k: c["count"] for k, c in columns.items()},
        "running": agents["running"], "held": agents["held"],
        "ready": columns["ready"]["cards"], "ready_total": columns["ready"]["count"],
        "questions": asking, "blockers": [b.to_json() for b in found if b.cause != "answer"],
        "events": events,
    }  # fmt: skip
