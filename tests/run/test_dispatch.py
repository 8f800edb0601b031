"""The daemon dispatching real scripted agents into real worktrees: work lands on the
task's branch, steps advance, timeouts kill whole process groups, failures retry per
the workflow, gates decide, and the user's checkout is never touched."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from conftest import (
    AGENT,
    checkout_state,
    commit_on_factory,
    configure,
    finished,
    gf,
    gf_json,
    git,
    wait_for,
)


def branch_of(repo: Path, task: str) -> str:
    return next(b for b in git(repo, "branch", "--format=%(refname:short)").split()
                if b.startswith(f"task/{task[:8]}"))


def test_agents_work_in_their_worktrees_and_steps_advance(factory_repo: Path, tmp_path: Path) -> None:
    r = factory_repo
    root = configure(r, tmp_path, "      implement:\n        role: coder\n        timeout: 60s\n")
    before = checkout_state(r)
    ids = {mode: gf_json(r, "task", "add", f"Task by {mode}")["id"]
           for mode in ("stepdone", "trailer", "exit0", "exit3", "dirty")}
    proc = gf(r, "daemon", "--burst")
    assert "started  coder/ada implement" in proc.stdout

    states = {t["id"]: t["state"] for t in gf_json(r, "task", "list")}
    assert [states[ids[m]] for m in ("stepdone", "trailer", "exit0", "exit3")] == [
        "completed", "completed", "completed", "failed"]
    ends = finished(r)
    assert [ends[ids[m]]["how"] for m in ("stepdone", "trailer", "exit0", "exit3")] == [
        "step_done", "trailer", "exit_code", "exit_code"]
    assert ends[ids["exit3"]]["exit_code"] == 3
    for mode, task in ids.items():
        # The work is a real commit on the task's own branch, made in its own worktree.
        branch = next(b for b in git(r, "branch", "--format=%(refname:short)").split()
                      if b.startswith(f"task/{task[:8]}"))
        assert git(r, "show", f"{branch}:work.txt") == "done by coder/ada\n"
        # What the agent left uncommitted is committed for it (issue 11).
        subject = "Work coder/ada left uncommitted" if mode == "dirty" else f"work on {task}"
        assert git(r, "log", "-1", "--format=%s", branch).startswith(subject)
        if mode == "dirty":
            assert git(r, "show", f"{branch}:scratch.txt") == "notes the agent did not commit\n"
        # Finished: its worktree is gone, nothing in it was left uncommitted.
        assert not (root / branch.removeprefix("task/")).exists()
        transcript = Path(str(ends[task]["transcript"])).read_text()
        assert f"coder/ada on Task by {mode}" in transcript
        # ... and the transcript is kept as an artifact of the task, in git.
        kept = gf(r, "artifact", "get", str(ends[task]["artifact"])).stdout
        assert kept == transcript
    step_done = [e for e in gf_json(r, "log", "--kind", "task.step_done")]
    assert {e["actor"] for e in step_done} == {"coder/ada"}
    assert next(e for e in step_done if e["task"] == ids["stepdone"])["text"] == "by hand"
    assert gf_json(r, "log", "--kind", "worktree.kept") == []
    assert len(gf_json(r, "log", "--kind", "worktree.removed")) == 5
    assert ends[ids["dirty"]]["rescued"] == git(r, "rev-parse", branch_of(r, ids["dirty"])).strip()
    assert checkout_state(r) == before  # the user's checkout, byte for byte


def test_a_timeout_kills_the_whole_process_group(factory_repo: Path, tmp_path: Path) -> None:
    r = factory_repo
    root = configure(r, tmp_path, "      implement:\n        role: coder\n        timeout: 2s\n"
                     "        on_timeout: failed\n")
    task = gf_json(r, "task", "add", "Task that will hang")["id"]
    started = time.monotonic()
    gf(r, "daemon", "--burst")
    assert time.monotonic() - started < 250  # the agent would hang for 300 s
    end = finished(r)[task]
    assert end["how"] == "timeout" and end["outcome"] == "timeout"
    assert gf_json(r, "task", "show", task)["state"] == "failed"
    child = int((root / f"child-{task[:8]}.pid").read_text())
    wait_for(lambda: not Path(f"/proc/{child}").exists()
             or "Z" in Path(f"/proc/{child}/stat").read_text(), "the agent's child to die")


def test_a_crashing_agent_fails_the_step_and_the_workflow_retries(
    factory_repo: Path, tmp_path: Path
) -> None:
    r = factory_repo
    configure(r, tmp_path, "      implement:\n        role: coder\n        max_attempts: 2\n"
              "        on_failure: implement\n")
    task = gf_json(r, "task", "add", "Task that will crash")["id"]
    gf(r, "daemon", "--burst")
    runs = [e for e in gf_json(r, "log", "--kind", "dispatch.started") if e["task"] == task]
    assert [e["data"]["attempt"] for e in runs] == [1, 2]
    shown = gf_json(r, "task", "show", task)
    assert shown["state"] == "failed"
    done = [e for e in gf_json(r, "log", "--kind", "task.step_done") if e["task"] == task]
    assert done[-1]["data"]["why"] == "implement: attempt limit of 2 reached"
    assert done[0]["text"] == "exit code 1"


def test_gates_run_in_the_tasks_worktree_and_decide(factory_repo: Path, tmp_path: Path) -> None:
    r = factory_repo
    steps = ("      implement:\n        role: coder\n        on_success: check\n"
             "      check:\n        gate: test -f work.txt && grep -q coder/ada work.txt\n"
             "        on_failure: failed\n")
    configure(r, tmp_path, steps)
    good = gf_json(r, "task", "add", "Task done well")["id"]
    gf(r, "daemon", "--burst")
    assert gf_json(r, "task", "show", good)["state"] == "completed"
    gate = [e for e in gf_json(r, "log", "--kind", "dispatch.finished")
            if e["data"]["agent"] == "factory/gate"]
    assert gate and gate[0]["data"]["outcome"] == "success"


def test_kill_9_of_the_daemon_mid_dispatch_finishes_every_task_exactly_once(
    factory_repo: Path, tmp_path: Path
) -> None:
    r = factory_repo
    configure(r, tmp_path, "      implement:\n        role: coder\n        timeout: 60s\n")
    tasks = [gf_json(r, "task", "add", f"Task slow {n}")["id"] for n in range(3)]
    agent_log = tmp_path / "agents.log"
    go = tmp_path / "go"  # until it exists, slow runs do not end
    env = {**os.environ, "AGENT_LOG": str(agent_log), "AGENT_SLEEP": "0.6",
           "AGENT_WAIT_FOR": str(go)}
    for n, delay in enumerate((0.0, 1.0, 0.7, 1.5, 0.5, 1.2), start=1):
        daemon = subprocess.Popen([sys.executable, "-m", "gitfactory", "daemon"], cwd=r, env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        # Killed only once it is up (its daemon.started is written), and the first one
        # while a run it started is still going: that run must outlive it.
        wait_for(lambda n=n: len(gf_json(r, "log", "--kind", "daemon.started")) == n,
                 f"daemon {n} to start")
        if n == 1:
            wait_for(lambda: gf_json(r, "log", "--kind", "dispatch.started"), "a run to start")
        time.sleep(delay)
        daemon.send_signal(signal.SIGKILL)
        daemon.wait()
        go.touch()
    subprocess.run([sys.executable, "-m", "gitfactory", "daemon", "--burst"], cwd=r, env=env,
                   check=True, capture_output=True, timeout=120)

    states = {t["id"]: t["state"] for t in gf_json(r, "task", "list")}
    assert all(states[t] == "completed" for t in tasks), states
    for task in tasks:
        done = [e for e in gf_json(r, "log", "--task", task) if e["kind"] == "task.step_done"]
        assert len(done) == 1  # completed exactly once
        commits = git(r, "log", "--all", "--format=%s").splitlines().count(f"work on {task}")
        assert commits == 1  # the work was done once
    # Some runs outlived the daemon that started them and were ended by the next one.
    events = gf_json(r, "log")
    started_by_session: dict[str, int] = {}
    session = 0
    handed_over = 0
    for e in events:
        if e["kind"] == "daemon.started":
            session += 1
        elif e["kind"] in ("dispatch.started", "dispatch.adopted"):
            started_by_session.setdefault(e["data"]["run"], session)
        elif e["kind"] == "dispatch.finished" and e["data"]["run"] in started_by_session:
            handed_over += started_by_session[e["data"]["run"]] != session
        elif e["kind"] == "dispatch.finished":  # the daemon died before it wrote the start
            assert e["data"]["how"] in ("never_started", "exit_code", "step_done"), e
    # Six daemons killed, then the burst: seven sessions, each one's start on the log.
    assert session == 7, [(e["kind"], e["time"]) for e in events
                          if e["kind"].startswith("daemon.")]
    assert handed_over >= 1
    # No two processes ever worked on the same task at the same time.
    working: dict[str, str] = {}
    for line in agent_log.read_text().splitlines():
        what, task, pid = line.split()
        if what == "start":
            assert task not in working, f"{task} started twice at once"
            working[task] = pid
        else:
            assert working.pop(task) == pid
    assert json.loads(gf(r, "daemon", "status", "--json").stdout)["running"] is False


def test_a_pooled_worktree_is_re_pointed_at_the_task(factory_repo: Path, tmp_path: Path) -> None:
    r = factory_repo
    root = configure(r, tmp_path, "      implement:\n        role: coder\n", extra="  pool: 1\n")
    gf(r, "daemon", "--max-ticks", "1")  # idle: it fills the pool
    assert len(list((root / ".pool").iterdir())) == 1
    (root / ".pool" / "idle-1" / "leftover.txt").write_text("from an earlier task\n")
    task = gf_json(r, "task", "add", "Task done from the pool")["id"]
    gf(r, "daemon", "--burst")
    [start] = gf_json(r, "log", "--kind", "dispatch.started")
    assert start["data"]["pooled_worktree"] is True
    assert gf_json(r, "task", "show", task)["state"] == "completed"
    branch = start["data"]["branch"]
    assert git(r, "show", f"{branch}:work.txt") == "done by coder/ada\n"
    assert "leftover.txt" not in git(r, "ls-tree", "--name-only", branch)
    assert len(list((root / ".pool").iterdir())) == 1  # refilled when idle again


def test_setup_and_the_concurrency_limit(factory_repo: Path, tmp_path: Path) -> None:
    r = factory_repo
    (r / ".env").write_text("SECRET=from-the-main-checkout\n")  # untracked, as .env files are
    (r / ".git" / "info" / "exclude").write_text("setup-marker.txt\n")  # as a .gitignore would
    extra = ("  max_concurrent: 1\n  setup:\n    copy: [.env]\n"
             "    command: echo prepared > setup-marker.txt\n")
    script = tmp_path / "agent2.py"
    script.write_text(AGENT)
    configure(r, tmp_path, "      implement:\n        role: coder\n", extra=extra)
    # A second agent of the same role: with max_concurrent 1 they still never overlap.
    config = git(r, "show", "factory:.factory/factory.yaml").replace(
        "workflows:", f"  bo:\n    role: coder\n    command: {sys.executable} {script}\nworkflows:")
    commit_on_factory(r, {".factory/factory.yaml": config.encode()})
    tasks = [gf_json(r, "task", "add", f"Task slow {n}")["id"] for n in range(3)]
    agent_log = tmp_path / "agents.log"
    gf(r, "daemon", "--burst", env={"AGENT_LOG": str(agent_log), "AGENT_SLEEP": "0.3"})
    assert all(gf_json(r, "task", "show", t)["state"] == "completed" for t in tasks)
    lines = agent_log.read_text().split("\n")[:-1]
    assert [w.split()[0] for w in lines] == ["start", "end"] * 3  # one at a time
    agents = {e["data"]["agent"] for e in gf_json(r, "log", "--kind", "dispatch.started")}
    assert agents <= {"coder/ada", "coder/bo"}
    for task in tasks:
        branch = next(b for b in git(r, "branch", "--format=%(refname:short)").split()
                      if b.startswith(f"task/{task[:8]}"))
        # The setup ran in the new worktree; what it made is not part of the work.
        assert "setup-marker.txt" not in git(r, "ls-tree", "--name-only", branch)
    # The agent found both; the copied file and the (ignored) setup output are not
    # uncommitted work, so the finished tasks' worktrees were removed.
    for end in finished(r).values():
        transcript = Path(str(end["transcript"])).read_text()
        assert "found .env: SECRET=from-the-main-checkout" in transcript
        assert "found setup-marker.txt: prepared" in transcript
    assert len(gf_json(r, "log", "--kind", "worktree.removed")) == 3


FIXER = r'''
import os, subprocess
from pathlib import Path
prompt = Path(os.environ["GITFACTORY_PROMPT_FILE"]).read_text()
told = "work.txt needs the word fixed" in prompt
Path("work.txt").write_text("fixed\n" if told else "first try\n")
subprocess.run(["git", "add", "work.txt"], check=True)
subprocess.run(["git", "commit", "-qm", "attempt"], check=True)
'''


def test_a_failed_gates_report_goes_into_the_next_attempts_prompt(
    factory_repo: Path, tmp_path: Path
) -> None:
    r = factory_repo
    script = tmp_path / "fixer.py"
    script.write_text(FIXER)
    steps = ("      implement:\n        role: coder\n        max_attempts: 2\n"
             "        on_success: check\n"
             "      check:\n        gate: grep -q fixed work.txt || "
             "{ echo 'work.txt needs the word fixed'; exit 1; }\n"
             "        on_failure: implement\n")
    configure(r, tmp_path, steps)
    config = git(r, "show", "factory:.factory/factory.yaml").replace(
        f"{tmp_path / 'agent.py'}", str(script))
    commit_on_factory(r, {".factory/factory.yaml": config.encode()})
    task = gf_json(r, "task", "add", "Fix it")["id"]
    gf(r, "daemon", "--burst")
    assert gf_json(r, "task", "show", task)["state"] == "completed"
    starts = [e["data"] for e in gf_json(r, "log", "--kind", "dispatch.started")]
    assert [(s["step"], s["attempt"]) for s in starts] == [
        ("implement", 1), ("check", 1), ("implement", 2), ("check", 2)]
    first = (r / ".git" / "gitfactory" / "runs" / starts[0]["run"] / "prompt.md").read_text()
    second = (r / ".git" / "gitfactory" / "runs" / starts[2]["run"] / "prompt.md").read_text()
    assert "This is the first step." in first and "needs the word" not in first
    assert "The gate `check` failed" in second and "work.txt needs the word fixed" in second
