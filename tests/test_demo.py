"""The README's main job: `gitfactory demo` runs end to end, offline."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from conftest import gf, gf_json, git


def test_demo_runs_two_agents_to_a_reviewed_fix(tmp_path: Path) -> None:
    target = tmp_path / "demo"
    proc = gf(tmp_path, "demo", str(target))
    assert "timeline (gitfactory log):" in proc.stdout
    repo = target / "stats"
    events = gf_json(repo, "log")
    kinds = [(e["actor"], e["kind"]) for e in events]
    assert kinds[0] == ("human/demo-user", "factory.init")
    assert ("coder/ada", "fix.committed") in kinds
    assert ("reviewer/rex", "review.approved") in kinds
    # They talked by mail: the request was read and acknowledged, and answered.
    assert kinds[-1] == ("reviewer/rex", "mail.delivered")
    assert ("reviewer/rex", "mail.acked") in kinds
    runs = [e for e in events if e["kind"] == "test.run"]
    assert [r["data"]["passed"] for r in runs] == [False, True]
    # The fix is a real commit on the coder's branch, and the tests pass there.
    fix = next(e for e in events if e["kind"] == "fix.committed")
    assert git(repo, "rev-parse", "fix/mean").strip() == fix["data"]["commit"]
    assert "/ len(values)" in git(repo, "show", "fix/mean:stats.py")
    # The user's checkout still has the bug: agents worked in their own worktrees.
    assert "BUG" in (repo / "stats.py").read_text()
    assert git(repo, "status", "--porcelain") == ""
    assert int(git(repo, "rev-list", "--count", "factory")) == len(events)
    [answer] = gf_json(repo, "mail", "inbox", "--as", "coder/ada")
    assert answer["subject"] == "Re: Ready for review: fix/mean"
    body = gf_json(repo, "mail", "read", answer["id"], "--as", "coder/ada")["body"]
    assert body.startswith("Approved: the tests pass")


def test_demo_json_output(tmp_path: Path) -> None:
    out = json.loads(gf(tmp_path, "demo", str(tmp_path / "d"), "--json").stdout)
    assert out["repo"] == str(tmp_path / "d" / "stats")
    assert [e["kind"] for e in out["events"]][-2:] == ["review.approved", "mail.delivered"]


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
