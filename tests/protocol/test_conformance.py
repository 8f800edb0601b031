"""Run the language-neutral fixtures of protocol/conformance against this implementation.

Each fixture is a .factory/ tree (plus, for merges, two more trees committed on two
branches and merged with plain `git merge`) and the state it must fold to.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import commit_on_factory, gf, git

ROOT = Path(__file__).resolve().parents[2] / "protocol" / "conformance"
FIXTURES = sorted(p.name for p in ROOT.iterdir() if (p / "expected.json").is_file())


def _files(tree: Path) -> dict[str, bytes]:
    return {p.relative_to(tree).as_posix(): p.read_bytes() for p in tree.rglob("*") if p.is_file()}


def _build(fixture: Path, repo: Path) -> None:
    commit_on_factory(repo, _files(fixture / "tree"), message="fixture: tree")
    if (fixture / "ours").is_dir():
        git(repo, "branch", "theirs", "factory")
        commit_on_factory(repo, _files(fixture / "ours"), message="fixture: ours")
        commit_on_factory(repo, _files(fixture / "theirs"), message="fixture: theirs",
                          ref="refs/heads/theirs")
        wt = repo.parent / "merge-wt"
        git(repo, "worktree", "add", "-q", str(wt), "factory")
        git(wt, "merge", "-q", "--no-edit", "theirs")


@pytest.mark.parametrize("name", FIXTURES)
def test_fixture_folds_to_its_expected_state(name: str, tmp_path: Path) -> None:
    fixture = ROOT / name
    expected = json.loads((fixture / "expected.json").read_text())
    repo = tmp_path / "repo"
    git(tmp_path, "init", "-q", str(repo))
    _build(fixture, repo)
    code = 4 if expected["invalid"] else 0
    # `log` names invalid log records; `status` names every invalid record.
    bad_log = any(i["path"].startswith(".factory/log/") for i in expected["invalid"])
    log = json.loads(gf(repo, "log", "--json", code=4 if bad_log else 0).stdout)
    assert log == expected["log"]
    status = json.loads(gf(repo, "status", "--json", code=code).stdout)
    found = [{"path": e["path"], "field": e["field"]} for e in status["invalid"]]
    assert found == expected["invalid"]
    assert status["records"].get("event", 0) == len(expected["log"])
    assert status["factory"] == "conformance"
    if "tasks" in expected:
        env = {"GITFACTORY_NOW": expected["now"]}
        tasks = json.loads(gf(repo, "task", "list", "--json", env=env).stdout)
        found_tasks = [{"id": t["id"], "state": t["state"], "assignee": t["assignee"]}
                       for t in sorted(tasks, key=lambda t: t["id"])]
        assert found_tasks == expected["tasks"]
        ready = json.loads(gf(repo, "ready", "--json", env=env).stdout)
        assert [t["id"] for t in ready] == expected["ready"]
    for agent, messages in expected.get("inboxes", {}).items():
        got = json.loads(gf(repo, "mail", "inbox", "--as", agent, "--limit", "0", "--json").stdout)
        assert [{"id": m["id"], "read": m["read"], "acked": m["acked"]} for m in got] == messages
    for thread, message_ids in expected.get("threads", {}).items():
        got = json.loads(gf(repo, "mail", "thread", thread, "--json").stdout)
        assert [m["id"] for m in got] == message_ids


def test_every_fixture_is_run() -> None:
    assert set(FIXTURES) >= {"basic-log", "fold-order", "invalid-records", "union-merge", "mail"}
