"""Honest step outcomes (issue 11): work an agent leaves uncommitted is committed for it
and merged, an agent that changes nothing fails a step that must change the project,
and a merge of a branch with no change of its own is a failure, never "already merged"."""

from __future__ import annotations

import sys
from pathlib import Path

from conftest import commit_on_factory, finished, gf, gf_json, git

# A scripted coder. By the task's title: "leaves" edits and creates files and exits 0
# without committing (as a coding CLI without permission to run git does); "nothing"
# does nothing; "claims" runs `step done` without a commit, then exits 0 having
# changed nothing; "secret" also writes the .env the setup copied in.
CODER = r'''
import os, subprocess, sys
from pathlib import Path

task = os.environ["GITFACTORY_TASK"]
title = Path(os.environ["GITFACTORY_PROMPT_FILE"]).read_text().splitlines()[0]
if "leaves" in title or "secret" in title:
    Path("app.py").write_text("print('changed by the agent')\n")
    Path("docs").mkdir(exist_ok=True)
    Path("docs/new.md").write_text("a new file nobody committed\n")
if "secret" in title:
    Path(".env").write_text("TOKEN=do-not-commit\n")
if "rewinds" in title:
    subprocess.run(["git", "reset", "-q", "--hard", "HEAD~1"], check=True)
if "conflict" in title:
    def git(*args):
        return subprocess.run(["git", *args], capture_output=True).returncode
    Path("c.txt").write_text("A\n"); git("add", "c.txt"); git("commit", "-qm", "a")
    git("checkout", "-q", "-b", "side", "HEAD~1")
    Path("c.txt").write_text("B\n"); git("add", "c.txt"); git("commit", "-qm", "b")
    git("checkout", "-q", os.environ["GITFACTORY_BRANCH"])
    assert git("merge", "-q", "side") != 0  # left with a conflict
if "claims" in title:
    done = subprocess.run([sys.executable, "-m", "gitfactory", "step", "done", task],
                          capture_output=True, text=True)
    print(f"step done said {done.returncode}: {done.stderr.strip()}", flush=True)
'''


def setup(repo: Path, tmp: Path, *, requires_change: bool = True, agent: str = "",
          extra: str = "") -> None:
    (tmp / "coder.py").write_text(CODER)
    need = "        requires_change: true\n" if requires_change else ""
    config = (
        f'protocol: "0.3"\nname: test\ndispatch:\n  worktrees: ../worktrees\n  kill_grace: 1s\n'
        f"{extra}agents:\n  ada:\n    role: coder\n"
        f"    command: {sys.executable} {tmp / 'coder.py'}\n{agent}"
        "workflows:\n  default:\n    steps:\n"
        f"      implement:\n        role: coder\n{need}        on_success: merge\n"
        "        on_failure: failed\n"
        "      merge:\n        action: merge\n        into: release\n        on_failure: failed\n"
    )
    commit_on_factory(repo, {".factory/factory.yaml": config.encode()})
    git(repo, "branch", "release")


def step_ends(repo: Path, task: str) -> list[dict[str, object]]:
    return [{**e["data"], "text": e["text"]} for e in gf_json(repo, "task", "show", task)["history"]
            if e["kind"] == "task.step_done"]


def test_uncommitted_work_is_committed_for_the_agent_and_merged(
    factory_repo: Path, tmp_path: Path
) -> None:
    r = factory_repo
    setup(r, tmp_path)
    task = gf_json(r, "task", "add", "Agent leaves its work uncommitted")["id"]
    before = git(r, "rev-parse", "release").strip()
    gf(r, "daemon", "--burst")
    assert gf_json(r, "task", "show", task)["state"] == "completed"
    # The work is on the target, in a commit by the agent that says it was rescued.
    assert git(r, "show", "release:app.py") == "print('changed by the agent')\n"
    assert git(r, "show", "release:docs/new.md") == "a new file nobody committed\n"
    rescued = finished(r)[task]["rescued"]
    assert isinstance(rescued, str)
    assert git(r, "log", "-1", "--format=%an|%(trailers:key=Factory-Rescued,valueonly)",
               rescued).strip() == "coder/ada|true"
    assert git(r, "merge-base", "--is-ancestor", rescued, "release") == ""
    assert before != git(r, "rev-parse", "release").strip()
    implement = step_ends(r, task)[0]
    assert implement["outcome"] == "success" and implement["rescued"] == rescued


def test_an_agent_that_does_nothing_fails_a_step_that_must_change(
    factory_repo: Path, tmp_path: Path
) -> None:
    r = factory_repo
    setup(r, tmp_path)
    task = gf_json(r, "task", "add", "Agent does nothing")["id"]
    before = git(r, "rev-parse", "release")
    gf(r, "daemon", "--burst")
    shown = gf_json(r, "task", "show", task)
    assert shown["state"] == "failed"
    [implement] = step_ends(r, task)
    assert implement["outcome"] == "failure" and "no change was made" in str(implement["text"])
    assert finished(r)[task]["how"] == "no_change"
    assert git(r, "rev-parse", "release") == before
    assert not [e for e in gf_json(r, "log", "--kind", "merge.result") if e["task"] == task]


def test_step_done_without_a_change_is_refused_and_the_step_fails(
    factory_repo: Path, tmp_path: Path
) -> None:
    r = factory_repo
    setup(r, tmp_path)
    task = gf_json(r, "task", "add", "Agent claims success")["id"]
    gf(r, "daemon", "--burst")
    transcript = Path(str(finished(r)[task]["transcript"])).read_text()
    assert "step done said 1" in transcript and "no change was made" in transcript
    refused = [e for e in gf_json(r, "task", "show", task)["history"]
               if e["kind"] == "task.refused"]
    assert len(refused) == 1 and refused[0]["actor"] == "coder/ada"
    assert gf_json(r, "task", "show", task)["state"] == "failed"


def test_files_the_setup_copies_in_are_never_committed(factory_repo: Path, tmp_path: Path) -> None:
    r = factory_repo
    (r / ".env").write_text("TOKEN=the-users\n")
    setup(r, tmp_path, extra="  setup:\n    copy: [.env]\n")
    task = gf_json(r, "task", "add", "Agent with a secret")["id"]
    gf(r, "daemon", "--burst")
    assert gf_json(r, "task", "show", task)["state"] == "completed"
    assert git(r, "show", "release:app.py") == "print('changed by the agent')\n"
    assert ".env" not in git(r, "ls-tree", "-r", "--name-only", "release").split()
    rescued = str(finished(r)[task]["rescued"])
    assert ".env" not in git(r, "show", "--name-only", "--format=", rescued).split()


def test_on_uncommitted_fail_fails_the_step_and_keeps_the_work(
    factory_repo: Path, tmp_path: Path
) -> None:
    r = factory_repo
    setup(r, tmp_path, agent="    on_uncommitted: fail\n")
    task = gf_json(r, "task", "add", "Agent leaves its work uncommitted")["id"]
    gf(r, "daemon", "--burst")
    [implement] = step_ends(r, task)
    assert implement["outcome"] == "failure"
    assert "left uncommitted changes" in str(implement["text"])
    assert finished(r)[task]["how"] == "uncommitted"
    assert "app.py" in str(implement["text"])
    assert "rescued" not in finished(r)[task]
    # Nothing is thrown away: the worktree with the work is kept.
    [kept] = [e for e in gf_json(r, "log", "--kind", "worktree.kept") if e["task"] == task]
    assert (Path(kept["data"]["worktree"]) / "docs" / "new.md").exists()


def test_a_branch_with_no_change_of_its_own_is_not_already_merged(
    factory_repo: Path, tmp_path: Path
) -> None:
    r = factory_repo
    setup(r, tmp_path, requires_change=False)
    task = gf_json(r, "task", "add", "Agent does nothing")["id"]
    before = git(r, "rev-parse", "release")
    gf(r, "daemon", "--burst")
    assert gf_json(r, "task", "show", task)["state"] == "failed"
    [merged] = [e["data"] for e in gf_json(r, "log", "--kind", "merge.result")
                if e["task"] == task]
    assert merged["status"] == "empty" and merged["pass"] is False
    assert "no change of its own" in str(step_ends(r, task)[-1]["text"])
    assert git(r, "rev-parse", "release") == before


def test_moving_the_branch_back_is_no_change(factory_repo: Path, tmp_path: Path) -> None:
    r = factory_repo
    setup(r, tmp_path, extra="  base: release\n")
    second = git(r, "commit-tree", "release^{tree}", "-p", "release", "-m", "second").strip()
    git(r, "update-ref", "refs/heads/release", second)
    task = gf_json(r, "task", "add", "Agent rewinds its branch")["id"]
    gf(r, "daemon", "--burst")
    [implement] = step_ends(r, task)
    assert implement["outcome"] == "failure" and "no change was made" in str(implement["text"])
    assert gf_json(r, "task", "show", task)["state"] == "failed"


def test_a_conflicted_merge_left_behind_is_not_committed(
    factory_repo: Path, tmp_path: Path
) -> None:
    r = factory_repo
    setup(r, tmp_path)
    task = gf_json(r, "task", "add", "Agent leaves a conflict")["id"]
    gf(r, "daemon", "--burst")
    [implement] = step_ends(r, task)
    assert implement["outcome"] == "failure" and "merge" in str(implement["text"])
    assert finished(r)[task]["how"] == "uncommitted" and "rescued" not in finished(r)[task]
    assert "<<<<<<<" not in git(r, "log", "-p", "--all", "--", "c.txt")
