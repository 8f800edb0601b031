"""`gitfactory report --html`: one file that holds everything it shows."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import gf, gf_json


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("demo")
    gf(base, "demo", str(base / "demo"))
    return base / "demo" / "stats"


def self_contained(text: str) -> None:
    assert "<script" not in text.lower()
    assert not re.search(r"""(src|href)=["'](?!#|data:)""", text), "a link that leaves the file"
    assert "<style>" in text and not re.search(r"url\((?!#)", text)  # nothing fetched


def test_the_factory_report_holds_board_graph_timelines_and_reports(
    demo: Path, tmp_path: Path
) -> None:
    docs = next(t for t in gf_json(demo, "task", "list") if t["title"].startswith("Document"))
    gf(demo, "task", "add", "<img src=x onerror=alert(1)> later", "--depends-on", docs["id"])
    out = tmp_path / "factory.html"
    said = gf(demo, "report", "--html", str(out)).stdout
    assert said.startswith(f"wrote {out}: 3 tasks in full")
    text = out.read_text()
    self_contained(text)
    assert "&lt;img src=x onerror=alert(1)&gt; later" in text
    for title in ("Fix the off-by-one in stats.mean", "Document mean and spread in the README"):
        assert title in text
    # The open plan's graph, inline SVG: the new task and the task it waits for.
    assert text.count('class="node ') == 2 and text.count('class="edge"') == 1
    assert "AssertionError: 2 != 2.5" in text  # the failed gate's report, inline
    anchors = set(re.findall(r'href="#([^"]+)"', text))
    ids = set(re.findall(r' id="([^"]+)"', text))
    assert anchors <= ids, f"links to nothing: {sorted(anchors - ids)[:5]}"


def test_a_task_report_and_its_errors(demo: Path, tmp_path: Path) -> None:
    fix = next(t for t in gf_json(demo, "task", "list") if t["title"].startswith("Fix"))
    held = gf_json(demo, "report", "--html", str(tmp_path / "t.html"), "--task", fix["id"][:6],
                   "--json")  # fmt: skip
    assert held["tasks"] == 1 and held["graph"] == 2 and held["artifacts"] >= 10
    text = (tmp_path / "t.html").read_text()
    self_contained(text)
    assert "Document mean and spread" in text  # its neighbour in the graph
    piped = gf(demo, "report", "--html", "-", "--task", fix["id"]).stdout
    assert piped.startswith("<!doctype html>")
    proc = gf(demo, "report", "--html", str(tmp_path), code=2)
    assert "is a folder" in proc.stderr
    proc = gf(demo, "report", "--html", str(tmp_path / "no" / "such" / "dir.html"), code=2)
    assert "cannot write" in proc.stderr
    proc = gf(demo, "report", "--html", str(tmp_path / "x.html"), "--task", "zzzz", code=2)
    assert "zzzz" in proc.stderr
