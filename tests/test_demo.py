"""The README's main job: `gitfactory demo` runs end to end, offline."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from conftest import gf, gf_json, git


def test_demo_runs_the_daemon_to_the_end(tmp_path: Path) -> None:
    target = tmp_path / "demo"
    proc = gf(tmp_path, "demo", str(target))
    assert "timeline (gitfactory log):" in proc.stdout
    assert "started  coder/ada" in proc.stdout and "started  factory/gate" in proc.stdout
    repo = target / "stats"
    events = gf_json(repo, "log")
    tasks = {t["title"]: t for t in gf_json(repo, "task", "list")}
    fix = tasks["Fix the off-by-one in stats.mean"]
    docs = tasks["Document mean and spread in the README"]
    assert fix["state"] == docs["state"] == "completed"

    # Each task went implement -> test -> review, each step started by the daemon.
    for task in (fix, docs):
        steps = [e["data"]["step"] for e in events
                 if e["kind"] == "dispatch.started" and e["task"] == task["id"]]
        assert steps == ["implement", "test", "review"]
    # The second task waited for the first one to be completed.
    order = [(e["kind"], e["task"]) for e in events]
    assert order.index(("task.claimed", docs["id"])) > max(
        i for i, (k, t) in enumerate(order) if k == "task.step_done" and t == fix["id"])
    kinds = [(e["actor"], e["kind"]) for e in events]
    assert kinds.count(("reviewer/rex", "review.approved")) == 2
    assert kinds.count(("reviewer/rex", "mail.acked")) == 2
    assert kinds[-1] == ("factory/daemon", "daemon.stopped")

    # The work is on the tasks' branches; the docs branch builds on the fix.
    branches = git(repo, "branch", "--list", "task/*", "--format=%(refname:short)").split()
    fix_branch = next(b for b in branches if b.startswith(f"task/{fix['id'][:8]}"))
    docs_branch = next(b for b in branches if b.startswith(f"task/{docs['id'][:8]}"))
    assert "/ len(values)" in git(repo, "show", f"{fix_branch}:stats.py")
    assert "/ len(values)" in git(repo, "show", f"{docs_branch}:stats.py")
    assert "## Functions" in git(repo, "show", f"{docs_branch}:README.md")
    # The user's checkout still has the bug: agents worked in their own worktrees,
    # which are gone now that the tasks are finished.
    assert "BUG" in (repo / "stats.py").read_text()
    assert git(repo, "status", "--porcelain") == ""
    assert [p.name for p in (target / "worktrees").iterdir()] in ([], [".trash"])
    artifacts = gf_json(repo, "artifact", "list")
    assert {a["name"] for a in artifacts} >= {"transcript-implement-1.log", "transcript-review-1.log"}
    # One commit per event, plus the configuration and one per transcript kept.
    assert int(git(repo, "rev-list", "--count", "factory")) == len(events) + 1 + len(artifacts)
    answers = gf_json(repo, "mail", "inbox", "--as", "coder/ada")
    assert len(answers) == 2 and all(a["subject"].startswith("Re: Ready for review") for a in answers)
    body = gf_json(repo, "mail", "read", answers[0]["id"], "--as", "coder/ada")["body"]
    assert body.startswith("Approved:")


def test_demo_json_output(tmp_path: Path) -> None:
    out = json.loads(gf(tmp_path, "demo", str(tmp_path / "d"), "--json").stdout)
    assert out["repo"] == str(tmp_path / "d" / "stats")
    assert out["events"][-1]["kind"] == "daemon.stopped"


def test_demo_refuses_a_non_empty_directory(tmp_path: Path) -> None:
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("mine\n")
    proc = gf(tmp_path, "demo", str(tmp_path / "full"), code=2)
    assert "not empty" in proc.stderr
    assert (tmp_path / "full" / "keep.txt").read_text() == "mine\n"


def test_git_factory_subcommand(factory_repo: Path) -> None:
    bindir = Path(sys.executable).parent
    if not (bindir / "git-factory").exists():
        # Not installed as a package (e.g. run from a source tree): make the shim.
        bindir = factory_repo.parent / "bin"
        bindir.mkdir()
        shim = bindir / "git-factory"
        shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m gitfactory "$@"\n')
        shim.chmod(0o755)
    env = {**os.environ, "PATH": f"{bindir}{os.pathsep}{os.environ['PATH']}"}
    proc = subprocess.run(["git", "factory", "log", "--json"], cwd=factory_repo, env=env,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)[0]["kind"] == "factory.init"
    assert shutil.which("git") is not None
