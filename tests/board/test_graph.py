"""The graph's layout: what a reader of the picture relies on."""

from __future__ import annotations

import re

from gitfactory.board import graph


def card(task: str, *deps: str) -> dict[str, object]:
    return {"id": task, "title": task.upper(), "depends_on": list(deps), "column": "waiting"}


def test_tasks_stand_right_of_their_dependencies_and_no_edge_runs_under_a_task() -> None:
    cards = [card("a"), card("b", "a"), card("c", "a", "b"), card("d", "c", "a"), card("e")]
    g = graph.layout(cards)
    at = {n["id"]: n for n in g["nodes"]}
    for c in cards:
        for dep in c["depends_on"]:  # type: ignore[attr-defined]
            assert at[dep]["x"] < at[str(c["id"])]["x"]
    assert at["e"]["y"] >= g["separate_from"]  # on its own, below the connected plan
    for edge in g["edges"]:
        # Every straight stretch of an edge (through a hidden slot) misses every task.
        for x1, y, x2 in re.findall(r"L?(\d+),(\d+) L(\d+),\2", edge["path"]):
            for n in g["nodes"]:
                inside_y = n["y"] <= int(y) <= n["y"] + g["node_h"]
                overlap_x = int(x1) < n["x"] + g["node_w"] and int(x2) > n["x"]
                assert not (inside_y and overlap_x), (edge, n["id"])
    skipping = next(e for e in g["edges"] if (e["from"], e["to"]) == ("a", "c"))
    assert " L" in skipping["path"]  # routed around b, not through it


def test_a_dense_plan_is_drawn_quickly_with_every_edge() -> None:
    import time

    cards = [card(f"t{i:03d}", *(f"t{j:03d}" for j in range(i))) for i in range(300)]
    started = time.process_time()
    g = graph.layout(cards)
    assert len(g["edges"]) == 300 * 299 // 2  # every dependency drawn
    # Routing is bounded (a dense plan needs a cube of slots): CPU seconds, not minutes.
    assert time.process_time() - started < 30
