"""The plan adapts: edits, dependencies and cycles, split, supersede (issue 3)."""

from __future__ import annotations

from pathlib import Path

from conftest import gf, gf_json


def add(repo: Path, title: str, *args: str) -> str:
    return gf_json(repo, "task", "add", title, *args)["id"]


def test_edit_keeps_every_version_in_the_log(factory_repo: Path) -> None:
    tid = add(factory_repo, "Old title", "--label", "a")
    gf(factory_repo, "task", "edit", tid, "--title", "New title", "--priority", "0",
       "--add-label", "b", "--remove-label", "a", "--body", "Now with a body")
    shown = gf_json(factory_repo, "task", "show", tid)
    assert (shown["title"], shown["priority"], shown["labels"], shown["body"]) == (
        "New title", 0, ["b"], "Now with a body\n")
    edits = [e for e in shown["history"] if e["kind"] == "task.edited"]
    assert edits[0]["data"]["title"] == "New title"
    # The task record itself is unchanged: the old version is still there.
    listed = gf_json(factory_repo, "log", "--task", tid)
    assert listed[0]["kind"] == "task.created" and listed[0]["text"] == "Old title"
    gf(factory_repo, "task", "edit", tid, code=2)  # nothing to change


def test_dependencies_can_change_and_a_cycle_is_refused_by_name(factory_repo: Path) -> None:
    a, b, c = add(factory_repo, "a"), add(factory_repo, "b"), add(factory_repo, "c")
    gf(factory_repo, "task", "depend", b, "--on", a)
    gf(factory_repo, "task", "depend", c, "--on", b)
    proc = gf(factory_repo, "task", "depend", a, "--on", c, code=1)
    assert "would make a cycle" in proc.stderr
    assert f"{a[:8]} -> {c[:8]} -> {b[:8]} -> {a[:8]}" in proc.stderr
    proc = gf(factory_repo, "task", "depend", a, "--on", a, code=1)
    assert "cannot depend on itself" in proc.stderr
    assert [t["id"] for t in gf_json(factory_repo, "ready")] == [a]
    gf(factory_repo, "task", "depend", b, "--remove", a)
    assert sorted(t["id"] for t in gf_json(factory_repo, "ready")) == sorted([a, b])


def test_split_makes_subtasks_the_parent_waits_for(factory_repo: Path) -> None:
    big = add(factory_repo, "Big job", "--priority", "1")
    kids = gf_json(factory_repo, "task", "split", big, "--into", "part one", "--into",
                   "part two")["ids"]
    ready = {t["id"] for t in gf_json(factory_repo, "ready")}
    assert ready == set(kids)
    shown = gf_json(factory_repo, "task", "show", kids[0])
    assert shown["parent"] == big and shown["priority"] == 1
    assert gf_json(factory_repo, "task", "show", big)["depends_on"] == kids


def test_supersede_moves_dependents_to_the_successor(factory_repo: Path) -> None:
    old = add(factory_repo, "old approach")
    after = add(factory_repo, "after", "--depends-on", old)
    new = add(factory_repo, "new approach")
    out = gf_json(factory_repo, "task", "supersede", old, "--by", new)
    assert out["state"] == "canceled"
    assert after not in {t["id"] for t in gf_json(factory_repo, "ready")}
    # Completing the successor frees the dependent of the superseded task.
    gf(factory_repo, "next", "--as", "coder/x", "--role", "coder")
    gf(factory_repo, "step", "done", new, "--as", "coder/x")
    for agent in ("human/lead", "reviewer/r", "human/lead"):  # a person stands in for gates
        if agent.startswith("human/"):
            gf(factory_repo, "step", "done", new, "--as", agent, "--override", "--reason", "ok")
        else:
            gf(factory_repo, "next", "--as", agent)
            gf(factory_repo, "step", "done", new, "--as", agent)
    assert gf_json(factory_repo, "task", "show", new)["state"] == "completed"
    assert after in {t["id"] for t in gf_json(factory_repo, "ready")}
    gf(factory_repo, "task", "edit", old, "--title", "x", code=1)  # final
