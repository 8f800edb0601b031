"""What agents, branches and the user's own git state can do to the daemon: it goes on,
loses no one's work, writes nowhere it should not, and never touches the user's index."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import (
    checkout_state,
    configure,
    finished,
    gf,
    gf_json,
    git,
    project_with_agent,
    wait_for,
)


def use_agent(repo: Path, tmp: Path, code: str) -> None:
    """Replace the scripted agent that `configure` wrote by this program."""
    (tmp / "agent.py").write_text(code)


def test_an_agent_that_deletes_its_worktree_does_not_stop_the_daemon(
    factory_repo: Path, tmp_path: Path
) -> None:
    r = factory_repo
    configure(r, tmp_path, "      implement:\n        role: coder\n        timeout: 60s\n")
    use_agent(r, tmp_path, "import os, shutil\nshutil.rmtree(os.getcwd())\n")
    task = gf_json(r, "task", "add", "Delete me")["id"]
    gf(r, "daemon", "--burst")  # once exit 70, and again at every start
    assert gf_json(r, "task", "show", task)["state"] == "completed"  # it exited 0


def test_commits_on_a_detached_head_keep_their_worktree(factory_repo: Path, tmp_path: Path) -> None:
    r = factory_repo
    root = configure(r, tmp_path, "      implement:\n        role: coder\n")
    use_agent(r, tmp_path, "import subprocess\nfrom pathlib import Path\n"
              "subprocess.run(['git', 'checkout', '-q', '--detach'], check=True)\n"
              "Path('work.txt').write_text('precious\\n')\n"
              "subprocess.run(['git', 'add', 'work.txt'], check=True)\n"
              "subprocess.run(['git', 'commit', '-qm', 'precious work'], check=True)\n")
    task = gf_json(r, "task", "add", "Detach")["id"]
    gf(r, "daemon", "--burst")
    [kept] = gf_json(r, "log", "--kind", "worktree.kept", "--task", task)
    assert "commits that no branch holds" in kept["text"]
    worktree = Path(kept["data"]["worktree"])
    assert git(worktree, "log", "-1", "--format=%s").strip() == "precious work"
    assert worktree.parent == root


def test_a_detached_head_in_the_users_checkout_makes_work_wait(
    factory_repo: Path, tmp_path: Path
) -> None:
    r = factory_repo
    configure(r, tmp_path, "      implement:\n        role: coder\n", extra="  pool: 1\n")
    git(r, "checkout", "-q", "--detach")  # a rebase or a bisect, say; no dispatch.base
    task = gf_json(r, "task", "add", "Later")["id"]
    proc = gf(r, "daemon", "--burst", code=4)  # it stops, saying what the work waits for
    assert "detached HEAD" in proc.stdout and "fix: set dispatch.base" in proc.stdout
    assert gf_json(r, "task", "show", task)["state"] == "submitted"  # not failed
    [waiting] = gf_json(r, "log", "--kind", "dispatch.waiting")
    assert "detached HEAD" in waiting["text"]
    git(r, "checkout", "-q", "main")
    gf(r, "daemon", "--burst")
    assert gf_json(r, "task", "show", task)["state"] == "completed"


SETUP_CHECK = """
import sys
from pathlib import Path
print("set up:", Path("setup-marker.txt").exists(), flush=True)
sys.exit(0 if Path("setup-marker.txt").exists() else 1)
"""


def test_setup_runs_again_after_it_failed(factory_repo: Path, tmp_path: Path) -> None:
    r = factory_repo
    flag = tmp_path / "fail-once"
    flag.write_text("x")
    (r / ".git" / "info" / "exclude").write_text("setup-marker.txt\n")
    extra = ("  setup:\n"
             f"    command: if [ -e {flag} ]; then rm {flag}; exit 1; fi; echo ok > setup-marker.txt\n")
    configure(r, tmp_path, "      implement:\n        role: coder\n        max_attempts: 2\n"
              "        on_failure: implement\n", extra=extra)
    use_agent(r, tmp_path, SETUP_CHECK)
    task = gf_json(r, "task", "add", "Setup")["id"]
    gf(r, "daemon", "--burst")  # one burst: a failed setup is work done, the retry is next
    assert gf_json(r, "task", "show", task)["state"] == "completed"
    assert "set up: True" in Path(finished(r)[task]["transcript"]).read_text()  # type: ignore[arg-type]


def test_setup_copy_writes_only_inside_the_worktree(factory_repo: Path, tmp_path: Path) -> None:
    r = factory_repo
    (r / ".env").write_text("SECRET=user\n")  # untracked in the user's checkout
    victim = tmp_path / "victim.txt"
    victim.write_text("victim content\n")
    # The base branch (an agent's work, say) tracks .env as a symlink to a file outside.
    other = tmp_path / "other"
    git(r, "worktree", "add", "-q", "-b", "base2", str(other))
    os.symlink(str(victim), other / ".env")
    git(other, "add", ".env")
    git(other, "commit", "-qm", "symlink")
    git(r, "worktree", "remove", str(other))
    configure(r, tmp_path, "      implement:\n        role: coder\n",
              extra="  base: base2\n  setup:\n    copy: [.env]\n")
    gf_json(r, "task", "add", "Through a symlink")
    gf(r, "daemon", "--burst")
    assert victim.read_text() == "victim content\n"

    configure(r, tmp_path, "      implement:\n        role: coder\n",
              extra=f"  setup:\n    copy: ['../{r.name}/.env']\n")
    task = gf_json(r, "task", "add", "Up and out")["id"]
    gf(r, "daemon", "--burst")
    assert not (tmp_path / "worktrees" / r.name / ".env").exists()
    [failed] = gf_json(r, "log", "--kind", "dispatch.failed", "--task", task)
    assert "is not a file inside" in failed["text"]


def test_setup_never_writes_the_users_index(factory_repo: Path, tmp_path: Path) -> None:
    r = factory_repo
    configure(r, tmp_path, "      implement:\n        role: coder\n",
              extra="  setup:\n    command: git add -A\n")
    before = checkout_state(r)
    gf_json(r, "task", "add", "Setup that stages")
    # As when the daemon is started from a git hook or alias: GIT_INDEX_FILE is set.
    gf(r, "daemon", "--burst", env={"GIT_INDEX_FILE": str(r / ".git" / "index")})
    assert checkout_state(r) == before


# The daemon, killed with SIGKILL at one chosen instant: after a gate's result is
# committed, before the step it ends is (the window a crash can fall into).
CRASH_AT = """
import os, signal, sys
from gitfactory.run import dispatch, runs
from gitfactory.cli import main

point = sys.argv[1]
if point == "gate_judged":  # a gate's result is committed; the step it ends is not
    ending = dispatch.Dispatcher._end_step
    def end_step(self, st, agent, *args):
        if agent == runs.GATE_AGENT:
            os.kill(os.getpid(), signal.SIGKILL)
        ending(self, st, agent, *args)
    dispatch.Dispatcher._end_step = end_step
elif point == "after_step_done":  # the agent's step is ended; dispatch.finished is not
    ending = dispatch.Dispatcher._end_step
    def end_step(self, *args):
        ending(self, *args)
        os.kill(os.getpid(), signal.SIGKILL)
    dispatch.Dispatcher._end_step = end_step
else:  # the run is over and recorded; its worktree is not removed yet
    end = dispatch.Dispatcher._end
    def _end(self, *args, **kw):
        end(self, *args, **kw)
        os.kill(os.getpid(), signal.SIGKILL)
    dispatch.Dispatcher._end = _end
sys.argv = ["gitfactory", "daemon", "--burst"]
main()
"""


def crash_daemon(repo: Path, tmp: Path, point: str) -> None:
    """Run the daemon, and SIGKILL it at ``point`` (fault injection, in a real process)."""
    crasher = tmp / "crash.py"
    crasher.write_text(CRASH_AT)
    killed = subprocess.run([sys.executable, str(crasher), point], cwd=repo,
                            capture_output=True)
    assert killed.returncode == -signal.SIGKILL, killed.stderr


def test_a_gate_judged_before_a_crash_is_not_judged_twice(
    factory_repo: Path, tmp_path: Path
) -> None:
    r = factory_repo
    configure(r, tmp_path, "      implement:\n        role: coder\n        on_success: check\n"
              "      check:\n        gate: 'echo checked'\n")
    task = gf_json(r, "task", "add", "Checked")["id"]
    crash_daemon(r, tmp_path, "gate_judged")
    assert len(gf_json(r, "log", "--kind", "gate.result", "--task", task)) == 1
    gf(r, "daemon", "--burst")  # recovers the run
    assert gf_json(r, "task", "show", task)["state"] == "completed"
    assert len(gf_json(r, "log", "--kind", "gate.result", "--task", task)) == 1
    reports = [a for a in gf_json(r, "artifact", "list", task) if a["name"].startswith("report-")]
    assert len(reports) == 1


LEAVES_A_CHILD = """
import os, subprocess, time
from pathlib import Path
here = Path(os.environ["GITFACTORY_WORKTREE"], "..")
child = subprocess.Popen(["sleep", "300"])  # left behind when this agent exits
(here / "child.pid").write_text(str(child.pid))
while not (here / "go").exists():  # the test says when to exit
    time.sleep(0.05)
(here / "agent.pid").write_text(str(os.getpid()))
"""


def killed_once_running(repo: Path, started: Path) -> None:
    """Start a daemon and SIGKILL it once its agent has written ``started``: the
    agent's run outlives the daemon that started it."""
    daemon = subprocess.Popen([sys.executable, "-m", "gitfactory", "daemon"], cwd=repo,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(started.exists, "the agent to start")
    finally:
        daemon.kill()
        daemon.wait()


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.parametrize("ends", ["under the next daemon", "while no daemon watched"])
def test_what_a_run_that_outlived_its_daemon_leaves_behind_ends_with_it(
    factory_repo: Path, tmp_path: Path, ends: str
) -> None:
    r = factory_repo
    root = configure(r, tmp_path, "      implement:\n        role: coder\n        timeout: 120s\n")
    use_agent(r, tmp_path, LEAVES_A_CHILD)
    task = gf_json(r, "task", "add", "Leaves a child")["id"]
    killed_once_running(r, root / "child.pid")  # the agent outlives its daemon
    child = int((root / "child.pid").read_text())
    try:
        if ends == "while no daemon watched":
            (root / "go").touch()
            wait_for(lambda: (root / "agent.pid").exists()
                     and not alive(int((root / "agent.pid").read_text())), "the agent to exit")
            gf(r, "daemon", "--burst")
        else:  # adopted by the next daemon, and ends while it watches
            burst = subprocess.Popen([sys.executable, "-m", "gitfactory", "daemon", "--burst"],
                                     cwd=r, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            wait_for(lambda: gf_json(r, "log", "--kind", "dispatch.adopted"), "the adoption")
            (root / "go").touch()
            assert burst.wait(timeout=300) == 0
        assert finished(r)[task]["outcome"] == "success"
        wait_for(lambda: not alive(child), "what the run left behind to end")
    finally:
        if alive(child):
            os.kill(child, signal.SIGKILL)


def test_a_crash_while_a_run_ends_leaves_one_record_and_no_worktree(
    factory_repo: Path, tmp_path: Path
) -> None:
    r = factory_repo
    root = configure(r, tmp_path, "      implement:\n        role: coder\n")
    for point in ("after_step_done", "after_end"):
        task = gf_json(r, "task", "add", f"Crash {point}")["id"]
        crash_daemon(r, tmp_path, point)
        gf(r, "daemon", "--burst")  # recovers
        assert gf_json(r, "task", "show", task)["state"] == "completed"
        assert len(gf_json(r, "log", "--kind", "dispatch.finished", "--task", task)) == 1, point
        assert not [p for p in root.iterdir() if p.name.startswith(task[:8])], point


def test_agents_find_gitfactory_when_the_daemon_was_started_by_its_full_path(
    tmp_path: Path,
) -> None:
    r = project_with_agent(
        tmp_path, "#!/bin/sh\necho x > out.txt && git add out.txt && git commit -qm out && "
        "gitfactory step done \"$GITFACTORY_TASK\" --note 'by the agent'\n",
        "an agent that ends its own step")
    tid = gf_json(r, "task", "add", "Write out.txt")["id"]
    # A virtualenv that is not activated: its bin folder is not on PATH.
    bare = {"PATH": "/usr/bin:/bin"}
    assert subprocess.run(["sh", "-c", "command -v gitfactory"], env=bare,
                          capture_output=True).returncode != 0
    gf(r, "daemon", "--burst", code=None, env=bare)
    done = [e for e in gf_json(r, "log", "--kind", "task.step_done") if e["task"] == tid]
    assert done and done[0]["actor"] == "coder/agent" and done[0]["text"] == "by the agent"


IMPERSONATES_A_PERSON = f"""
import os, subprocess
from pathlib import Path
Path("work.txt").write_text("evil\\n")
subprocess.run(["git", "add", "work.txt"], check=True)
subprocess.run(["git", "commit", "-qm", "evil"], check=True)
task = os.environ["GITFACTORY_TASK"]
env = {{k: v for k, v in os.environ.items() if k not in ("GITFACTORY_AGENT", "GITFACTORY_RUN")}}
for argv in (["step", "done", task, "--override", "--reason", "lgtm", "--as", "human/boss"],
             ["step", "done", task, "--override", "--reason", "lgtm"],
             ["task", "retry", task, "--as", "human/boss"]):
    proc = subprocess.run([{sys.executable!r}, "-m", "gitfactory", *argv], env=env,
                          capture_output=True, text=True)
    Path(os.environ["GITFACTORY_WORKTREE"], "..", "refused.txt").open("a").write(
        f"{{proc.returncode}} {{proc.stderr}}\\n")
"""


def test_an_agent_cannot_act_as_a_person_by_dropping_its_identity(
    factory_repo: Path, tmp_path: Path
) -> None:
    r = factory_repo
    root = configure(r, tmp_path, "      implement:\n        role: coder\n        on_success: check\n"
                     "      check:\n        gate: \"false\"\n        on_failure: failed\n")
    use_agent(r, tmp_path, IMPERSONATES_A_PERSON)
    task = gf_json(r, "task", "add", "Sneak past the gate")["id"]
    gf(r, "daemon", "--burst")
    said = (root / "refused.txt").read_text()
    assert said.count("from inside run") == 3, said
    assert gf_json(r, "log", "--kind", "task.overridden") == []
    assert gf_json(r, "task", "show", task)["state"] == "failed"  # the gate said no
    # A person outside any run still may.
    gf(r, "task", "retry", task, "--as", "human/lead")


WAITS_FOR_GO = """
import os, subprocess, time
from pathlib import Path
here = Path(os.environ["GITFACTORY_WORKTREE"], "..")
(here / "agent.pid").write_text(str(os.getpid()))
while not (here / "go").exists():
    time.sleep(0.05)
Path("work.txt").write_text("done\\n")
subprocess.run(["git", "add", "work.txt"], check=True)
subprocess.run(["git", "commit", "-qm", "work"], check=True)
"""


def test_a_cancel_asked_while_no_daemon_watched_the_run_is_kept(
    factory_repo: Path, tmp_path: Path
) -> None:
    r = factory_repo
    root = configure(r, tmp_path, "      implement:\n        role: coder\n        timeout: 120s\n"
                     "        on_success: merge\n      merge:\n        action: merge\n")
    use_agent(r, tmp_path, WAITS_FOR_GO)
    main = git(r, "rev-parse", "main")
    task = gf_json(r, "task", "add", "Cancel me")["id"]
    killed_once_running(r, root / "agent.pid")
    gf(r, "task", "cancel", task, "--reason", "stop it", "--as", "human/lead")
    (root / "go").touch()
    pid = int((root / "agent.pid").read_text())
    wait_for(lambda: not alive(pid), "the agent to end with no daemon watching")
    gf(r, "daemon", "--burst")
    assert gf_json(r, "task", "show", task)["state"] == "canceled"
    assert finished(r)[task]["how"] == "canceled"
    assert git(r, "rev-parse", "main") == main  # nothing merged
