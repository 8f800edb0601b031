"""The daemon says what it waits for (issue 12): a base branch with no commit, no
agent for a role with ready work, a merge held by a dirty checkout, a question, a
failed dependency. Each is printed once with its fix, `status` lists it, and
`daemon --burst` exits 4 when only blocked work is left. A failed run's console line
shows why and the end of its output."""

from __future__ import annotations

import sys
from pathlib import Path

from conftest import commit_on_factory, configure, gf, gf_json, git, shown_ids

IMPLEMENT_AND_MERGE = ("      implement:\n        role: coder\n        on_success: merge\n"
                       "      merge:\n        action: merge\n        on_failure: failed\n")


def test_a_repository_without_commits_waits_for_one_instead_of_failing_tasks(
    empty_repo: Path, tmp_path: Path
) -> None:
    r = empty_repo
    gf(r, "init")
    configure(r, tmp_path, "      implement:\n        role: coder\n")
    tid = gf_json(r, "task", "add", "Write the first file")["id"]
    proc = gf(r, "daemon", "--burst", code=4)
    assert "the base branch 'main' has no commit yet" in proc.stdout
    assert "fix: make a first commit on main: git commit --allow-empty" in proc.stdout
    assert "stopped: the work left waits on 1 thing only you can change" in proc.stdout
    # Nothing was started, nothing failed: the task still waits.
    assert gf_json(r, "task", "show", tid)["state"] == "submitted"
    assert gf_json(r, "log", "--kind", "dispatch.started") == []
    blockers = gf_json(r, "status")["blockers"]
    assert [(b["cause"], b["subject"], b["tasks"]) for b in blockers] == [("base", "main", [tid])]
    # The fix it names works.
    git(r, "commit", "-q", "--allow-empty", "-m", "first commit")
    gf(r, "daemon", "--burst")
    assert gf_json(r, "task", "show", tid)["state"] == "completed"
    assert gf_json(r, "status")["blockers"] == []


def test_no_agent_for_a_role_with_ready_work(factory_repo: Path) -> None:
    r = factory_repo  # `init` configures no agents
    tid = gf_json(r, "task", "add", "Fix it")["id"]
    proc = gf(r, "daemon", "--burst", code=4)
    assert "waits for an agent of role 'coder', and factory.yaml configures none" in proc.stdout
    assert "gitfactory next --as coder/NAME" in proc.stdout
    status = gf(r, "status").stdout
    assert "blocked   1 ready task waits for an agent of role 'coder'" in status
    # The daemon that keeps running says it once, not every tick.
    proc = gf(r, "daemon", "--max-ticks", "3")
    assert proc.stdout.count("waits for an agent of role 'coder'") == 1
    # Taken by hand, the task is no longer blocked.
    gf(r, "task", "claim", tid, "--as", "coder/ada")
    assert gf_json(r, "status")["blockers"] == []
    gf(r, "daemon", "--burst")


def test_a_merge_held_by_a_dirty_checkout_is_named_with_its_fix(
    factory_repo: Path, tmp_path: Path
) -> None:
    r = factory_repo  # its checkout of main has uncommitted changes (see conftest.repo)
    configure(r, tmp_path, IMPLEMENT_AND_MERGE)
    tid = gf_json(r, "task", "add", "Task to merge")["id"]
    proc = gf(r, "daemon", "--burst", code=4)
    short = shown_ids(r)[tid]
    assert f"waiting  the merge of task {short} (Task to merge) into main waits" in proc.stdout
    assert "uncommitted changes (app.py" in proc.stdout
    assert f"fix: commit or stash the changes in {r}" in proc.stdout
    assert gf_json(r, "task", "show", tid)["step"] == "merge"
    assert [b["cause"] for b in gf_json(r, "status")["blockers"]] == ["merge"]
    git(r, "stash", "-q")
    proc = gf(r, "daemon", "--burst")
    assert gf_json(r, "task", "show", tid)["state"] == "completed"


def test_questions_and_failed_dependencies_block_and_say_how_to_go_on(
    factory_repo: Path, tmp_path: Path
) -> None:
    r = factory_repo
    configure(r, tmp_path, "      implement:\n        role: coder\n")
    first = gf_json(r, "task", "add", "First")["id"]
    then = gf_json(r, "task", "add", "Then", "--depends-on", first)["id"]
    asking = gf_json(r, "task", "add", "Asking")["id"]
    gf(r, "task", "claim", asking, "--as", "coder/bob")
    gf(r, "task", "ask", asking, "Which database?", "--as", "coder/bob")
    gf(r, "task", "claim", first, "--as", "coder/bob")
    gf(r, "step", "done", first, "--outcome", "failure", "--as", "coder/bob")
    assert gf_json(r, "task", "show", first)["state"] == "failed"
    proc = gf(r, "daemon", "--burst", code=4)
    short = shown_ids(r)
    assert f"task {short[asking]} (Asking) waits for an answer: Which database?" in proc.stdout
    assert f"gitfactory task answer {short[asking]}" in proc.stdout
    assert f"1 task waits for task {short[first]} (First), which failed" in proc.stdout
    assert f"fix: gitfactory task retry {short[first]}" in proc.stdout
    causes = {b["cause"]: b["tasks"] for b in gf_json(r, "status")["blockers"]}
    assert causes == {"answer": [asking], "dependency": [then]}


def test_a_failed_runs_line_shows_why_and_the_end_of_its_output(
    factory_repo: Path, tmp_path: Path
) -> None:
    r = factory_repo
    configure(r, tmp_path, "      implement:\n        role: fixer\n        max_attempts: 2\n"
              "        on_failure: implement\n",
              agents=f"  bob:\n    role: fixer\n    command: {sys.executable} no-such-agent.py\n")
    tid = gf_json(r, "task", "add", "Task for bob")["id"]
    proc = gf(r, "daemon", "--burst")
    short = shown_ids(r)[tid]
    lines = proc.stdout.splitlines()
    ends = [n for n, x in enumerate(lines) if f"finished fixer/bob implement of {short}:" in x]
    assert len(ends) == 2
    first, last = lines[ends[0]], lines[ends[1]]
    assert first.endswith("failure: exit code 2; next: implement")
    assert last.endswith(f"failure: exit code 2; the task failed: `gitfactory task retry "
                         f"{short}` once the cause is fixed")
    # The end of what the command printed, under each line: here, Python's complaint.
    said = lines[ends[1] + 1].split("  ", 1)[1]  # after the time
    assert said.startswith("         | ") and "can't open file" in said


def test_a_task_at_a_command_gate_waits_for_no_agent(factory_repo: Path) -> None:
    r = factory_repo
    tid = gf_json(r, "task", "add", "At the gate")["id"]
    gf(r, "step", "done", tid, "--override", "--reason", "go", "--as", "human/lead")
    assert gf_json(r, "task", "show", tid)["step"] == "test"  # a command gate: the factory runs it
    assert "role ''" not in gf(r, "status").stdout
    assert [b for b in gf_json(r, "status")["blockers"] if tid in b["tasks"]] == []


def test_a_daemon_that_cannot_read_factory_yaml_says_so_and_logs_its_stop(
    factory_repo: Path,
) -> None:
    r = factory_repo
    commit_on_factory(r, {".factory/factory.yaml": b"protocol: '0.3'\nname: [unclosed\n"})
    proc = gf(r, "daemon", "--burst", code=2)
    assert "factory.yaml" in proc.stderr
    kinds = [e["kind"] for e in gf_json(r, "log") if e["kind"].startswith("daemon.")]
    assert kinds == ["daemon.started", "daemon.stopped"]
