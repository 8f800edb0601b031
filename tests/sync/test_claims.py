"""Claims on many clones: the remote decides (DESIGN I4). Exactly one clone's claim
gets its push in; the others are told who holds the task, and nothing starts on a
claim the remote does not have."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from tests.conftest import gf, gf_json, git
from tests.sync.conftest import bare_remote, make_clones, records, set_sync

QUICK = """\
  quick:
    steps:
      implement:
        role: coder
        on_success: done
"""

# A racing agent: a real program asking for work with `gitfactory next` until there is
# none, noting each task it starts, then ending its step.
AGENT = r'''
import json, subprocess, sys
agent, started, errors = sys.argv[1], sys.argv[2], sys.argv[3]

def gf(*args):
    return subprocess.run([sys.executable, "-m", "gitfactory", *args],
                          capture_output=True, text=True)

failures = 0
while True:
    got = gf("next", "--as", agent, "--json")
    if got.returncode == 3:
        break
    if got.returncode != 0:
        with open(errors, "a") as fh:
            fh.write(f"next {got.returncode}: {got.stderr}\n")
        failures += 1
        if failures > 20:
            sys.exit(1)
        continue
    task = json.loads(got.stdout)["task"]["id"]
    with open(started, "a") as fh:
        fh.write(f"{task} {agent}\n")
    done = gf("step", "done", task, "--as", agent, "--note", "done")
    if done.returncode != 0:
        with open(errors, "a") as fh:
            fh.write(f"done {done.returncode}: {done.stderr}\n")
        sys.exit(1)
'''


def with_quick_workflow(clone: Path) -> None:
    text = git(clone, "show", "factory:.factory/factory.yaml")
    gf(clone, "config", "edit", "--file", "-", input=text + QUICK)


def add_tasks(clone: Path, n: int) -> list[str]:
    return [gf(clone, "task", "add", f"task {i}", "--workflow", "quick").stdout.strip()
            for i in range(n)]


def claims_of(clone: Path) -> Counter[str]:
    """task id -> how many task.claimed events the whole history holds for it."""
    return Counter(e["task"] for e in gf_json(clone, "log", "--json", "--kind", "task.claimed"))


def with_tasks(tmp: Path, names: tuple[str, ...], n: int) -> tuple[Path, list[Path], list[str]]:
    """A bare remote, clones of one factory with the quick workflow, ``n`` tasks added
    on the first, every clone synced: (remote, clones, task ids)."""
    bare = bare_remote(tmp)
    clones = make_clones(tmp, bare.as_uri(), names)
    with_quick_workflow(clones[0])
    ids = add_tasks(clones[0], n)
    for clone in clones:
        gf(clone, "sync")
    return bare, clones, ids


def test_two_clones_race_for_one_task_and_one_wins(tmp_path: Path) -> None:
    _, (a, b), (first, second) = with_tasks(tmp_path, ("a", "b"), 2)
    gf(a, "task", "claim", first, "--as", "coder/ada")
    lost = gf(b, "task", "claim", first, "--as", "coder/bob", code=1)
    assert "coder/ada" in lost.stderr  # the loser is told the holder
    assert claims_of(b)[first] == 1  # and its claim was never written
    # `next` on the losing clone moves on to the next ready task
    got = gf_json(b, "next", "--as", "coder/bob", "--json")
    assert got["task"]["id"] == second
    gf(a, "sync")
    assert gf_json(a, "task", "show", second, "--json")["assignee"] == "coder/bob"


def test_a_claim_with_the_remote_away_is_tentative_until_a_sync(tmp_path: Path) -> None:
    bare, (a, b), (one, two) = with_tasks(tmp_path, ("a", "b"), 2)
    bare.rename(tmp_path / "away.git")
    before = git(a, "rev-parse", "factory")
    proc = gf(a, "next", "--as", "coder/ada", code=6)
    assert "tentative" in proc.stderr and "nothing may start" in proc.stderr
    assert git(a, "rev-parse", "factory") == before  # written nowhere
    shown = gf(a, "status").stdout
    assert f"tentative claim of {one[:8]} for coder/ada" in shown
    assert "origin unreachable since" in shown
    (tmp_path / "away.git").rename(bare)
    report = gf_json(a, "sync", "--json")
    assert report["claims_confirmed"] == [{"task": one, "agent": "coder/ada"}]
    assert gf_json(a, "status", "--json")["sync"]["tentative"] == []
    assert gf_json(a, "task", "show", one, "--json")["assignee"] == "coder/ada"
    # a tentative claim that another clone beat meanwhile is reported lost
    git(a, "remote", "set-url", "origin", str(tmp_path / "nowhere.git"))
    gf(b, "task", "claim", two, "--as", "coder/bob")
    gf(a, "task", "claim", two, "--as", "coder/ada", code=6)
    git(a, "remote", "set-url", "origin", bare.as_uri())
    report = gf_json(a, "sync", "--json")
    assert [c["task"] for c in report["claims_lost"]] == [two]
    assert "coder/bob" in report["claims_lost"][0]["why"]


def test_offline_claims_local_start_at_once(tmp_path: Path) -> None:
    bare = bare_remote(tmp_path)
    (a,) = make_clones(tmp_path, bare.as_uri(), ("a",), remote_yaml=None)
    set_sync(a, "  remote: origin\n  offline_claims: local\n")
    with_quick_workflow(a)
    (one,) = add_tasks(a, 1)
    gf(a, "sync")
    bare.rename(tmp_path / "away.git")
    gf(a, "task", "claim", one, "--as", "coder/ada")
    assert gf_json(a, "task", "show", one, "--json")["assignee"] == "coder/ada"
    (tmp_path / "away.git").rename(bare)
    gf(a, "sync")
    assert records(a) == records(bare)


def storm(tmp_path: Path, url: str, rounds: int, tasks: int) -> None:
    clones = make_clones(tmp_path, url)
    with_quick_workflow(clones[0])
    gf(clones[0], "sync")
    script = tmp_path / "agent.py"
    script.write_text(AGENT)
    for r in range(rounds):
        ids = add_tasks(clones[r % 3], tasks)
        for clone in (clones[r % 3], *clones):
            gf(clone, "sync")
        started = tmp_path / f"started-{r}.txt"
        errors = tmp_path / f"errors-{r}.txt"
        agents = [
            subprocess.Popen([sys.executable, str(script), f"coder/{clone.name}{n}",
                              str(started), str(errors)], cwd=clone)
            for clone in clones for n in range(3)
        ]
        codes = [p.wait(timeout=900) for p in agents]
        trouble = errors.read_text() if errors.exists() else ""
        assert codes == [0] * 9, trouble
        lines = [line.split() for line in started.read_text().splitlines()]
        starts = Counter(task for task, _ in lines)
        # every task started exactly once, by the agent whose claim the remote has
        assert set(starts) == set(ids) and set(starts.values()) == {1}, trouble
        for clone in (*clones, *clones):
            gf(clone, "sync")
        assert records(clones[0]) == records(clones[1]) == records(clones[2])
        claims = claims_of(clones[0])
        assert all(claims[t] == 1 for t in ids)
        holders = {e["task"]: e["actor"]
                   for e in gf_json(clones[1], "log", "--json", "--kind", "task.claimed")}
        assert {t: holders[t] for t in ids} == {task: agent for task, agent in lines}
        done = gf_json(clones[2], "task", "list", "--json", "--state", "completed")
        assert set(ids) <= {t["id"] for t in done}


@pytest.mark.slow
def test_claim_storm_three_clones_three_agents_each(
    tmp_path: Path, shared_remote: tuple[str, Path]
) -> None:
    url, _ = shared_remote
    storm(tmp_path, url, rounds=3, tasks=60)


def test_a_claim_refuses_a_remote_branch_that_is_no_commit(tmp_path: Path) -> None:
    bare, (a,), (one,) = with_tasks(tmp_path, ("a",), 1)
    tree = git(a, "rev-parse", "factory^{tree}").strip()
    (bare / "refs" / "heads" / "factory").write_text(tree + "\n")
    proc = gf(a, "task", "claim", one, "--as", "coder/ada", code=1)
    assert "points at a tree" in proc.stderr


def test_a_tentative_claim_can_be_withdrawn(tmp_path: Path) -> None:
    bare, (a,), (one,) = with_tasks(tmp_path, ("a",), 1)
    bare.rename(tmp_path / "away.git")
    gf(a, "task", "claim", one, "--as", "coder/ada", code=6)
    assert "withdrew the tentative claim" in gf(a, "task", "release", one, "--as", "coder/ada").stdout
    (tmp_path / "away.git").rename(bare)
    assert gf_json(a, "sync", "--json")["claims_confirmed"] == []
    assert gf_json(a, "task", "show", one, "--json")["state"] == "submitted"
