"""The README's main job: `gitfactory demo` runs end to end, offline."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

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

    def of(kind: str, task: dict[str, str]) -> list[dict[str, object]]:
        return [e["data"] for e in events if e["kind"] == kind and e["task"] == task["id"]]

    # The coder's first fix failed the tests gate, it was sent back with the report,
    # and its second attempt passed; then the judge, both scenarios and the review.
    assert [d["step"] for d in of("dispatch.started", fix)] == [
        "implement", "test", "implement", "test", "judge", "qa", "review"]
    assert [d["step"] for d in of("dispatch.started", docs)] == [
        "implement", "test", "judge", "qa", "review"]
    tests = [d for d in of("gate.result", fix) if d["gate"] == "tests"]
    assert [t["pass"] for t in tests] == [False, True]
    report = gf(repo, "artifact", "get", str(tests[0]["report"])).stdout
    assert "AssertionError: 2 != 2.5" in report
    second = of("dispatch.started", fix)[2]["run"]
    prompt = (repo / ".git/gitfactory/runs" / str(second) / "prompt.md").read_text()
    assert "The gate `test` failed" in prompt and "2 != 2.5" in prompt
    for task in (fix, docs):
        judged = [d for d in of("gate.result", task) if d["gate"] == "judge"]
        assert [(j["pass"], j["score"]) for j in judged] == [(True, 1.0)]
        played = sorted((d["scenario"], d["pass"]) for d in of("gate.scenario", task))
        assert played == [("mean-of-four.md", True), ("spread.md", True)]
        (merged,) = of("merge.result", task)
        assert merged["status"] == "merged" and merged["target"] == "main"
    # The second task waited for the first one to be completed.
    order = [(e["kind"], e["task"]) for e in events]
    assert order.index(("task.claimed", docs["id"])) > max(
        i for i, (k, t) in enumerate(order) if k == "task.step_done" and t == fix["id"])
    kinds = [(e["actor"], e["kind"]) for e in events]
    assert kinds.count(("reviewer/rex", "review.approved")) == 2
    assert kinds.count(("reviewer/rex", "mail.acked")) == 3  # one request per coder attempt
    assert kinds[-1] == ("factory/daemon", "daemon.stopped")

    # Both tasks are merged into main, through the user's clean checkout, which now
    # has the fix and the docs; the agents' worktrees are gone.
    assert "/ len(values)" in (repo / "stats.py").read_text()
    assert "## Functions" in (repo / "README.md").read_text()
    assert git(repo, "status", "--porcelain") == ""
    assert len(git(repo, "log", "--merges", "--format=%H", "main").split()) == 2
    assert not [p for p in git(repo, "ls-tree", "-r", "--name-only", "main").split()
                if p.startswith(".factory")]
    assert [p.name for p in (target / "worktrees").iterdir()] in ([], [".trash"])
    artifacts = gf_json(repo, "artifact", "list")
    assert {a["name"] for a in artifacts} >= {
        "transcript-implement-1.log", "report-test-1.md", "report-judge-1.md",
        "scenario-spread-1.log", "report-qa-1.md"}
    # Prompts carry the living documents; the second task's, the first task's history.
    later = of("dispatch.started", docs)[0]["run"]
    prompt = (repo / ".git/gitfactory/runs" / str(later) / "prompt.md").read_text()
    assert "### best-practices" in prompt and "Run the tests before you end a step" in prompt
    assert "### history" in prompt and fix["title"] in prompt.split("### history")[1]
    # The history document was regenerated from the two session summaries.
    history = gf(repo, "docs", "show", "history").stdout
    assert history.index(docs["title"]) < history.index(fix["title"])  # newest first
    assert "the history document, regenerated" in proc.stdout
    # Every event and artifact is a file of its own on the factory branch; a gate's
    # evidence (transcript, report, scenario outputs) and its records share commits.
    tree = git(repo, "ls-tree", "-r", "--name-only", "factory").split()
    assert len([p for p in tree if p.startswith(".factory/log/")]) == len(events)
    assert len([p for p in tree if p.startswith(".factory/artifacts/")]) == len(artifacts)
    assert int(git(repo, "rev-list", "--count", "factory")) < len(events) + len(artifacts)
    answers = gf_json(repo, "mail", "inbox", "--as", "coder/ada")
    assert_in_causal_order(proc.stdout, events)
    assert_summaries_hold_every_artifact(repo, events)
    assert len(answers) == 2 and all(a["subject"].startswith("Re: Ready for review") for a in answers)
    body = gf_json(repo, "mail", "read", answers[0]["id"], "--as", "coder/ada")["body"]
    assert body.startswith("Approved:")


def assert_in_causal_order(stdout: str, events: list[dict[str, Any]]) -> None:
    """The review's run ends before the merge it led to, in the progress lines, the log
    and the timeline (issue 12: the merge used to be done while the reviewer still ran)."""
    progress, timeline = stdout.split("timeline (gitfactory log):")
    merged = [e["task"] for e in events if e["kind"] == "merge.result"]
    assert len(merged) == 2
    for task in merged:
        words = [line.split() for line in progress.splitlines()]
        said = [w[:3] for w in words  # "started coder/ada implement 4w6ss[:]": the short id
                if len(w) > 3 and len(w[3].rstrip(":")) >= 5 and task.startswith(w[3].rstrip(":"))]
        assert [w for w in said if w[2] in ("review", "merge")] == [
            ["started", "reviewer/rex", "review"], ["finished", "reviewer/rex", "review"],
            ["merged", "factory/merge", "merge"]]
        mine = [(e["kind"], e["text"]) for e in events if e["task"] == task]
        review_ended = mine.index(("dispatch.finished", "reviewer/rex on review: step done"))
        assert review_ended < [k for k, _ in mine].index("merge.result")
    shown = [word for line in timeline.splitlines() for word in line.split()
             if word in ("review.approved", "merge.result")]
    assert shown == ["review.approved", "merge.result"] * 2


def assert_summaries_hold_every_artifact(repo: Path, events: list[dict[str, Any]]) -> None:
    """Each session summary names every artifact of its task (the review's transcript,
    kept when its run ended, used to be left out)."""
    summaries = [e for e in events if e["kind"] == "session.summary"]
    assert len(summaries) == 2
    for summary in summaries:
        kept = [a["name"] for a in gf_json(repo, "artifact", "list", summary["task"])]
        assert [a["name"] for a in summary["data"]["artifacts"]] == kept
        assert "transcript-review-1.log" in kept


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
