"""`gitfactory status`: the factory at a glance (tasks by state, holders, questions)."""

from __future__ import annotations

from pathlib import Path

from conftest import gf, gf_json, shown_ids


def test_status_shows_the_plan_holders_and_open_questions(factory_repo: Path) -> None:
    r = factory_repo
    ids = [gf_json(r, "task", "add", f"task {n}")["id"] for n in range(4)]
    blocked = gf_json(r, "task", "add", "after task 0", "--depends-on", ids[0])["id"]
    gf(r, "task", "claim", ids[0], "--as", "coder/ada")
    gf(r, "task", "claim", ids[1], "--as", "coder/bob")
    gf(r, "task", "ask", ids[1], "Which parser: the old or the new one?", "--as", "coder/bob")
    gf(r, "task", "cancel", ids[2], "--as", "human/h")

    plan = gf_json(r, "status")["tasks"]
    assert plan["by_state"] == {"submitted": 2, "working": 1, "input_required": 1, "canceled": 1}
    assert plan["ready"] == 1  # task 3; the one after task 0 waits for it
    assert [(t["id"], t["assignee"]) for t in plan["working"]] == [(ids[0], "coder/ada")]
    [asking] = plan["input_required"]
    assert asking["id"] == ids[1] and asking["question"] == "Which parser: the old or the new one?"
    assert blocked not in [t["id"] for t in plan["working"] + plan["input_required"]]

    text = gf(r, "status").stdout
    short = shown_ids(r)
    assert "tasks     submitted 2, working 1, input_required 1, canceled 1; 1 ready" in text
    assert f"working {short[ids[0]]}  coder/ada" in text
    assert f"asking  {short[ids[1]]}  coder/bob" in text
    assert "question: Which parser: the old or the new one?" in text


def test_a_lapsed_lease_counts_as_back_in_the_queue(factory_repo: Path) -> None:
    r = factory_repo
    tid = gf_json(r, "task", "add", "t")["id"]
    gf(r, "task", "claim", tid, "--as", "coder/ada", "--lease", "1m")
    later = {"GITFACTORY_NOW": "2099-01-01T00:00:00Z"}
    plan = gf_json(r, "status", env=later)["tasks"]
    assert plan["by_state"] == {"submitted": 1} and plan["ready"] == 1 and plan["working"] == []
