"""Scripted reviewer agent of the demo: a real program, no LLM.

It waits until the execution log says a fix was committed, checks out that commit
in its own worktree, runs the tests, and records its verdict in the log.
"""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

FACTORY = [sys.executable, "-m", "gitfactory"]
ME = os.environ["GITFACTORY_AGENT"]


def log(kind, text, *data):
    subprocess.run([*FACTORY, "log", "append", kind, text, "--as", ME, *data], check=True,
                   stdout=subprocess.DEVNULL)


def wait_for_fix(deadline):
    while time.monotonic() < deadline:
        out = subprocess.run([*FACTORY, "log", "--kind", "fix.committed", "--json"],
                             capture_output=True, text=True, check=True).stdout
        events = json.loads(out)
        if events:
            return events[-1]
        time.sleep(0.2)
    raise SystemExit("reviewer: no fix was committed in time")


def main():
    repo = Path(sys.argv[1])
    log("agent.started", "waiting for a fix to review")
    fix = wait_for_fix(time.monotonic() + 60)
    commit = fix["data"]["commit"]
    worktree = repo.parent / "worktrees" / "review"
    subprocess.run(["git", "worktree", "add", "-q", "--detach", str(worktree), commit],
                   cwd=repo, check=True)
    proc = subprocess.run([sys.executable, "-m", "unittest", "-q"], cwd=worktree,
                          capture_output=True, text=True)
    if proc.returncode == 0:
        log("review.approved", f"tests pass at {commit[:10]}; the fix is minimal",
            "--data", f"commit={commit}")
    else:
        log("review.rejected", proc.stderr.strip().splitlines()[-1], "--data", f"commit={commit}")


if __name__ == "__main__":
    main()
