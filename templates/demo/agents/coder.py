"""Scripted coder agent of the demo: a real program, no LLM.

It works in its own git worktree: runs the tests, finds the failing one, fixes the
off-by-one in stats.mean, commits on its branch, reports every step in the factory's
execution log through the gitfactory CLI, and mails the reviewers that the fix is
ready.
"""

import os
import subprocess
import sys
from pathlib import Path

FACTORY = [sys.executable, "-m", "gitfactory"]
ME = os.environ["GITFACTORY_AGENT"]


def log(kind, text, *data):
    subprocess.run([*FACTORY, "log", "append", kind, text, "--as", ME, *data], check=True,
                   stdout=subprocess.DEVNULL)


def tests_pass(cwd):
    proc = subprocess.run([sys.executable, "-m", "unittest", "-q"], cwd=cwd,
                          capture_output=True, text=True)
    return proc.returncode == 0, (proc.stderr.strip().splitlines() or [""])[-1]


def main():
    repo = Path(sys.argv[1])
    worktree = repo.parent / "worktrees" / "fix-mean"
    subprocess.run(["git", "worktree", "add", "-q", "-b", "fix/mean", str(worktree)],
                   cwd=repo, check=True)
    log("agent.started", f"working in {worktree.name} on branch fix/mean")
    ok, summary = tests_pass(worktree)
    log("test.run", f"before the fix: {summary}", "--data", f"passed:={str(ok).lower()}")
    source = worktree / "stats.py"
    text = source.read_text()
    source.write_text(text.replace("/ (len(values) + 1)  # BUG: off by one", "/ len(values)"))
    ok, summary = tests_pass(worktree)
    log("test.run", f"after the fix: {summary}", "--data", f"passed:={str(ok).lower()}")
    subprocess.run(["git", "commit", "-qam", "Fix off-by-one in stats.mean"], cwd=worktree,
                   check=True)
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=worktree, capture_output=True,
                          text=True, check=True).stdout.strip()
    log("fix.committed", "stats.mean divides by len(values)", "--data", "branch=fix/mean",
        "--data", f"commit={head}")
    subprocess.run([*FACTORY, "mail", "send", "reviewer/*", "--as", ME, "--ack-required",
                    "--subject", "Ready for review: fix/mean", "--ref", head,
                    "--body", f"stats.mean divided by len + 1. Fixed in {head[:10]} on "
                              "branch fix/mean; the tests pass there."],
                   check=True, stdout=subprocess.DEVNULL)


if __name__ == "__main__":
    main()
