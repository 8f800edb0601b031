"""A new user's first hour, scripted (issue 12): a repository with no commits, a
factory made with `init --agent`, `doctor`, a typo in the agent's command, a retry
after the fix, and a merge held by the user's own uncommitted work. At each step the
user is told what is wrong and the one command that fixes it, and nothing is lost."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from conftest import gf, gf_json, git

AGENT = """#!/bin/sh
# A scripted coder: one file of work per task, committed on the task's branch.
echo "working on $GITFACTORY_TASK"
echo "done: $GITFACTORY_TASK" > "work-$GITFACTORY_TASK.txt"
git add "work-$GITFACTORY_TASK.txt" && git commit -qm "work on $GITFACTORY_TASK"
"""
REVIEW = "#!/bin/sh\necho 'looks good'\n"
SMOKE = "def test_the_project_imports():\n    assert True\n"


def test_the_first_hour(empty_repo: Path) -> None:
    r = empty_repo
    # The shipped tests gate runs `python -m pytest`: the venv's python is on PATH.
    env = {"PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]])}

    def run(*argv: str, code: int | None = 0) -> Any:
        return gf(r, *argv, code=code, env=env)

    def state(tid: str) -> str:
        return str(gf_json(r, "task", "show", tid, env=env)["state"])

    for name, text in (("agent.sh", AGENT), ("review.sh", REVIEW), ("test_smoke.py", SMOKE)):
        (r / name).write_text(text)
        (r / name).chmod(0o755)

    # 1. No commit yet: init works, and says what is missing.
    out = run("init", "--agent", "command:./agent.sh",
              "--agent", "reviewer/rex=command:./review.sh").stdout  # fmt: skip
    assert "agents: coder/agent, reviewer/rex" in out
    assert "git commit --allow-empty" in out
    first = gf_json(r, "task", "add", "Say hello", env=env)["id"]
    # The daemon refuses to dispatch, with the fix; the task is not failed.
    proc = run("daemon", "--burst", code=4)
    assert "the base branch 'main' has no commit yet" in proc.stdout
    assert "fix: make a first commit on main" in proc.stdout
    assert state(first) == "submitted"

    # 2. The first commit; doctor names what is left (the hook), then is clean.
    git(r, "add", ".")
    git(r, "commit", "-qm", "first commit")
    proc = run("doctor", code=1)
    assert "fix: gitfactory hooks install" in proc.stdout
    run("hooks", "install")
    assert run("doctor").stdout.splitlines()[-1] == "no problems"

    # 3. The first task goes all the way: implement, tests gate, review, merge.
    run("daemon", "--burst")
    assert state(first) == "completed"
    assert git(r, "show", f"main:work-{first}.txt") == f"done: {first}\n"

    # 4. A typo in the agent's command: doctor names it ...
    config = git(r, "show", "factory:.factory/factory.yaml")
    typo = r.parent / "typo.yaml"
    typo.write_text(config.replace("command: ./agent.sh", "command: ./agnet.sh"))
    run("config", "edit", "--file", str(typo))
    proc = run("doctor", code=1)
    assert "PROBLEM  agent coder/agent" in proc.stdout and "./agnet.sh" in proc.stdout
    # ... the task fails after the workflow's retries, the console says why ...
    second = gf_json(r, "task", "add", "Say goodbye", env=env)["id"]
    proc = run("daemon", "--burst")
    assert state(second) == "failed"
    lines = proc.stdout.splitlines()
    ends = [n for n, line in enumerate(lines) if "finished coder/agent implement" in line]
    assert len(ends) == 3  # the shipped workflow tries implement three times
    assert "failure: exit code 127" in lines[ends[-1]] and "task retry" in lines[ends[-1]]
    assert "agnet.sh" in lines[ends[-1] + 1]  # the end of what sh said
    # ... and once the command is fixed, `task retry` completes it.
    fixed = r.parent / "fixed.yaml"
    fixed.write_text(config)
    run("config", "edit", "--file", str(fixed))
    assert run("doctor").stdout.splitlines()[-1] == "no problems"
    run("task", "retry", second, "--reason", "agent command fixed")
    run("daemon", "--burst")
    assert state(second) == "completed"
    assert git(r, "show", f"main:work-{second}.txt") == f"done: {second}\n"

    # 5. The user has uncommitted changes in main: the merge waits, and says so.
    (r / "test_smoke.py").write_text(SMOKE + "# an edit in progress\n")
    third = gf_json(r, "task", "add", "Say it again", env=env)["id"]
    proc = run("daemon", "--burst", code=4)
    assert "into main waits" in proc.stdout and "uncommitted changes (test_smoke.py)" in proc.stdout
    assert f"fix: commit or stash the changes in {r}" in proc.stdout
    assert (r / "test_smoke.py").read_text().endswith("# an edit in progress\n")  # untouched
    git(r, "commit", "-qam", "my edit")
    run("daemon", "--burst")
    assert state(third) == "completed"
    assert gf_json(r, "status", env=env)["blockers"] == []
