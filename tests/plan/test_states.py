"""Task states in the index are the plan's fold of the records, whatever happened to
the index: written by racing processes, rebuilt, or following a rewritten branch."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

from conftest import gf, gf_json, git


def _by_id(repo: Path) -> dict[str, dict[str, Any]]:
    return {t["id"]: t for t in gf_json(repo, "task", "list")}


def _folded_from_scratch(repo: Path, task_id: str) -> tuple[str, str | None]:
    # `task show` folds the task's events straight from the raw rows, not from the
    # stored state: the two must agree.
    shown = gf_json(repo, "task", "show", task_id)
    return shown["state"], shown["assignee"]


def test_racing_writers_leave_the_states_every_fold_agrees_on(factory_repo: Path) -> None:
    r = factory_repo
    tasks = [gf_json(r, "task", "add", f"Task {n}")["id"] for n in range(6)]
    claimers = [
        subprocess.Popen(
            [sys.executable, "-m", "gitfactory", "next", "--as", f"coder/c{n}", "--json"],
            cwd=r, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for n in range(4)
    ]  # fmt: skip
    for proc in claimers:
        proc.communicate(timeout=300)
        assert proc.returncode == 0
    listed = _by_id(r)
    assert sorted(listed) == sorted(tasks)
    assert sum(1 for t in listed.values() if t["state"] == "working") == 4
    assert len({t["assignee"] for t in listed.values() if t["assignee"]}) == 4
    for task_id, row in listed.items():
        assert _folded_from_scratch(r, task_id) == (row["state"], row["assignee"])
    ready = [t["id"] for t in gf_json(r, "ready")]
    assert sorted(ready) == sorted(t for t, row in listed.items() if row["state"] == "submitted")


def test_a_rebuilt_index_answers_the_same(factory_repo: Path) -> None:
    r = factory_repo
    first = gf_json(r, "task", "add", "First")["id"]
    gf_json(r, "task", "add", "Second", "--depends-on", first)
    gf(r, "task", "claim", first, "--as", "coder/ada")
    queries = [["task", "list", "--json"], ["ready", "--json"]]
    before = [gf(r, *q).stdout for q in queries]
    counts = gf_json(r, "status")["tasks"]["by_state"]
    gf(r, "index", "rebuild")
    assert [gf(r, *q).stdout for q in queries] == before
    assert gf_json(r, "status")["tasks"]["by_state"] == counts


def test_states_follow_a_branch_rewound_and_moved_forward_again(factory_repo: Path) -> None:
    r = factory_repo
    kept = gf_json(r, "task", "add", "Kept")["id"]
    old_tip = git(r, "rev-parse", "factory").strip()
    gone = gf_json(r, "task", "add", "Gone later")["id"]
    gf(r, "task", "claim", kept, "--as", "coder/ada")
    new_tip = git(r, "rev-parse", "factory").strip()
    assert _by_id(r)[kept]["state"] == "working" and gone in _by_id(r)

    git(r, "update-ref", "refs/heads/factory", old_tip)  # history rewritten by hand
    assert {t: row["state"] for t, row in _by_id(r).items()} == {kept: "submitted"}
    assert gf_json(r, "status")["tasks"]["by_state"] == {"submitted": 1}

    git(r, "update-ref", "refs/heads/factory", new_tip)
    states = {t: row["state"] for t, row in _by_id(r).items()}
    assert states == {kept: "working", gone: "submitted"}
