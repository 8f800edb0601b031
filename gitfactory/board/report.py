"""`gitfactory report --html`: one self-contained HTML file (inline CSS and SVG, no
script, nothing fetched) of the factory or of one task, to attach to a PR or a chat.

The factory's report holds the board, the open plan's graph, and in full the tasks
that need a look (working, asking, failed) and the most recent others; a task's
report holds the task, its graph neighbourhood, and its text artifacts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gitfactory import __version__
from gitfactory.board import graph, pages, timeline, views
from gitfactory.store import clock

if TYPE_CHECKING:
    from gitfactory.store.factory import Factory

IN_FULL = 50  # tasks of a factory report shown with their timelines
ARTIFACT_MAX = 64_000  # bytes of one artifact put in the file
ARTIFACTS_MAX = 2_000_000  # bytes of artifacts in one file
WATCH = ("working", "input_required", "failed")


def html(factory: Factory, task: str | None = None) -> tuple[str, dict[str, Any]]:
    """The report's HTML, and what it holds (for the command's summary)."""
    from gitfactory.config import factory_yaml

    factory.require_tip()
    refresh = factory.index.refresh()
    board = None
    if task is None:
        board = views.board(factory)
        chosen = _in_full(board)
        drawn = graph.plan_graph(factory)
        if not drawn["nodes"]:  # nothing open: the whole plan is more telling than nothing
            drawn = graph.plan_graph(factory, everything=True)
        title = f"Factory report: {factory_yaml.load(factory).name}"
    else:
        page = timeline.task_page(factory, task)
        chosen = [page["id"]]
        drawn = graph.plan_graph(factory, around=page["id"])
        title = f"Task {page['short']}: {page['title']} (factory {factory_yaml.load(factory).name})"
    pages_ = [timeline.task_page(factory, t) for t in chosen]
    artifacts = _artifacts(factory, pages_)
    text = pages.render(
        "report.html", pages.Links(report=True), css=pages.asset("board.css"), page="report",
        title=title, factory=factory_yaml.load(factory).name, tip=refresh.tip,
        made=clock.format_time(clock.now_ms()), version=__version__, board=board, g=drawn,
        tasks=pages_, artifacts=artifacts,
        left_out=(board["total"] - len(pages_)) if board else 0,
    )  # fmt: skip
    return text, {"tasks": len(pages_), "artifacts": sum(a["text"] is not None for a in artifacts),
                  "graph": drawn["shown"], "bytes": len(text.encode())}  # fmt: skip


def _in_full(board: dict[str, Any]) -> list[str]:
    """The tasks a factory report shows in full: those that need a look first, then
    the most recently created."""
    cards = [c for column in board["columns"] for c in column["cards"]]
    first = [c for c in cards if c["column"] in WATCH]
    rest = sorted((c for c in cards if c["column"] not in WATCH),
                  key=lambda c: c["created"], reverse=True)  # fmt: skip
    return [c["id"] for c in [*first, *rest][:IN_FULL]]


def _artifacts(factory: Factory, shown: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The shown tasks' artifacts, with their text where it is small and text."""
    out, budget = [], ARTIFACTS_MAX
    for page in shown:
        for record in page["artifacts"]:
            entry = {**record, "text": None, "diff": False, "why": "too large"}
            if record["size"] <= min(ARTIFACT_MAX, budget):
                _, _, text = timeline.artifact(factory, record["id"])
                if text is None:
                    entry["why"] = "not text"
                else:
                    entry.update(text=text, diff=pages.is_diff(record["name"], text))
                    budget -= record["size"]
            elif record["size"] <= ARTIFACT_MAX:
                entry["why"] = "the file holds enough already"
            out.append(entry)
    return out
