"""The board in a real headless Chromium (the distribution's, driven by Playwright):
the demo factory's tasks in their columns, a task added with the CLI appearing
without a reload, a question answered in the browser, the graph and task pages.

Each page is saved as a screenshot under the test's temp dir (board.png, task.png,
graph.png, agents.png, log.png). Skipped, with the reason, where no Chromium or no
Playwright is installed (`.ci/run` installs both).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.board.conftest import Served
from tests.conftest import gf, gf_json, wait_for

CHROMIUM = os.environ.get("GITFACTORY_CHROMIUM") or next(
    (p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None
)
# CI installs Chromium and sets GITFACTORY_BROWSER_TESTS=required: there, a missing
# browser fails the run instead of skipping these tests.
REQUIRED = os.environ.get("GITFACTORY_BROWSER_TESTS") == "required"
if CHROMIUM is None:
    if REQUIRED:
        raise RuntimeError("GITFACTORY_BROWSER_TESTS=required but no Chromium is installed")
    pytest.skip("no Chromium on this machine (apt-get install chromium; .ci/run does)",
                allow_module_level=True)  # fmt: skip
from playwright import sync_api  # noqa: E402  (the test extra installs it)

# A page follows the branch within a second; a loaded test machine gets much longer.
LIVE_MS = 30_000
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The README's demo factory, run to the end (both of its tasks completed)."""
    base = tmp_path_factory.mktemp("demo")
    gf(base, "demo", str(base / "demo"))
    return base / "demo" / "stats"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Any, demo: Path, serve: type[Served]) -> Iterator[Any]:
    board = serve(demo)
    context = browser.new_context(viewport={"width": 1500, "height": 950})
    tab = context.new_page()
    tab.set_default_timeout(LIVE_MS)
    tab.goto(board.url)  # the printed address: the token becomes a cookie
    tab.base = board.base
    yield tab
    context.close()


def column(page: Any, key: str) -> Any:
    return page.locator(f"section.column[data-column='{key}']")


def test_the_demo_factory_shows_in_its_columns(page: Any, demo: Path, tmp_path: Path) -> None:
    asking = gf_json(demo, "task", "add", "Choose a licence", "--label", "docs")["id"]
    gf(demo, "task", "claim", asking, "--as", "coder/ada")
    gf(demo, "task", "ask", asking, "MIT or Apache-2.0?", "--as", "coder/ada")
    page.goto(page.base + "/")
    done = column(page, "completed")
    for title in ("Fix the off-by-one in stats.mean", "Document mean and spread in the README"):
        assert done.get_by_text(title).count() == 1
    card = column(page, "input_required").locator(".card", has_text="Choose a licence")
    assert card.locator(".question").inner_text() == "MIT or Apache-2.0?"
    assert "coder/ada" in card.inner_text()
    # Filters: by label, by text.
    page.goto(page.base + "/?label=docs")
    assert page.locator(".card").count() == 1
    page.goto(page.base + "/?text=stats.mean")
    assert page.locator(".card").all_inner_texts()[0].startswith("Fix the off-by-one")
    page.goto(page.base + "/")
    page.screenshot(path=str(tmp_path / "board.png"), full_page=True)


def test_a_task_added_with_the_cli_appears_without_a_reload(page: Any, demo: Path) -> None:
    page.goto(page.base + "/")
    page.wait_for_selector("#live.on")  # the event stream is open
    page.evaluate("window.loadedOnce = true")  # gone if the page were reloaded
    gf(demo, "task", "add", "Appears while you watch", "--priority", "0")
    ready = column(page, "ready")
    ready.locator(".card", has_text="Appears while you watch").wait_for()
    assert page.evaluate("window.loadedOnce") is True
    # The log page follows too.
    page.goto(page.base + "/log")
    page.wait_for_selector("#live.on")
    gf(demo, "log", "append", "note", "seen live in the log")
    page.locator("table.log", has_text="seen live in the log").wait_for()


def test_a_question_answered_in_the_browser_unblocks_the_task(
    page: Any, demo: Path, tmp_path: Path
) -> None:
    task = gf_json(demo, "task", "add", "Name the release")["id"]
    gf(demo, "task", "claim", task, "--as", "coder/ada")
    gf(demo, "task", "ask", task, "Which version number?", "--as", "coder/ada")
    page.goto(page.base + f"/tasks/{task}")
    assert page.locator(".question-text").inner_text() == "Which version number?"
    form = page.locator("form[data-action$='/answer']")
    assert form.is_visible()
    form.locator("textarea").fill("1.4.0, please")
    form.locator("button").click()
    wait_for(lambda: gf_json(demo, "task", "show", task)["state"] == "working",
             "the answer to move the task back to working")  # fmt: skip
    answered = [e for e in gf_json(demo, "log", "--task", task) if e["kind"] == "task.answered"]
    assert [e["text"] for e in answered] == ["1.4.0, please"]
    assert str(answered[0]["actor"]).startswith("human/")
    # The page follows: the question is gone, the answer box hides, the timeline has it.
    page.locator(".task-page[data-column='working']").wait_for()
    assert not form.is_visible()
    assert page.locator(".question-text").count() == 0
    page.screenshot(path=str(tmp_path / "task.png"), full_page=True)


def test_the_graph_task_agents_and_log_pages_render(page: Any, demo: Path, tmp_path: Path) -> None:
    first = gf_json(demo, "task", "add", "Design the schema")["id"]
    second = gf_json(demo, "task", "add", "Write the migration", "--depends-on", first)["id"]
    gf_json(demo, "task", "add", "Ship it", "--depends-on", second)
    page.goto(page.base + "/graph?all=1")
    nodes = page.locator("svg.graph g.node")
    assert nodes.count() == len(gf_json(demo, "task", "list"))
    assert page.locator("svg.graph path.edge").count() >= 3
    x = {t: page.locator(f"g.node[data-task='{t}']").bounding_box()["x"] for t in (first, second)}
    assert x[first] < x[second]  # a task stands right of what it depends on
    page.screenshot(path=str(tmp_path / "graph.png"), full_page=True)
    fix = next(t["id"] for t in gf_json(demo, "task", "list") if t["title"].startswith("Fix"))
    page.goto(page.base + f"/tasks/{fix}")
    heads = page.locator(".stretch-head").all_inner_texts()
    assert any(h.startswith("test") and "failure" in h for h in heads)
    assert any(h.startswith("merge") and "success" in h for h in heads)
    assert page.locator(".gate.fail").count() == 1
    page.locator(".gate.fail a", has_text="report").click()
    assert "AssertionError: 2 != 2.5" in page.locator("pre.artifact").inner_text()
    page.goto(page.base + "/agents")
    assert page.locator("table.runs tr", has_text="reviewer/rex").count() >= 2
    page.screenshot(path=str(tmp_path / "agents.png"), full_page=True)
    page.goto(page.base + "/log?kind=gate")
    kinds = set(page.locator("table.log td.kind").all_inner_texts())
    assert kinds == {"gate.result", "gate.scenario"}
    page.screenshot(path=str(tmp_path / "log.png"), full_page=True)
