"""Scripted reviewer agent of the demo: a real program, no LLM.

It waits for mail asking for a review (`gitfactory mail watch`: it sleeps until the
message is committed), acknowledges it, checks out the commit it names in its own
worktree, runs the tests, records its verdict in the log and answers by mail.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

FACTORY = [sys.executable, "-m", "gitfactory"]
ME = os.environ["GITFACTORY_AGENT"]


def log(kind, text, *data):
    subprocess.run([*FACTORY, "log", "append", kind, text, "--as", ME, *data], check=True,
                   stdout=subprocess.DEVNULL)


def factory(*args):
    return subprocess.run([*FACTORY, *args, "--as", ME], capture_output=True, text=True,
                          check=True).stdout


def wait_for_request():
    # The oldest unread message, or the next one to arrive: no polling loop here.
    line = factory("mail", "watch", "--unread", "--count", "1", "--timeout", "60s", "--json")
    message = json.loads(factory("mail", "read", json.loads(line)["id"], "--json"))
    factory("mail", "ack", message["id"])
    return message


def main():
    repo = Path(sys.argv[1])
    log("agent.started", "waiting for mail asking for a review")
    request = wait_for_request()
    commit = request["refs"][0]
    worktree = repo.parent / "worktrees" / "review"
    subprocess.run(["git", "worktree", "add", "-q", "--detach", str(worktree), commit],
                   cwd=repo, check=True)
    proc = subprocess.run([sys.executable, "-m", "unittest", "-q"], cwd=worktree,
                          capture_output=True, text=True)
    if proc.returncode == 0:
        verdict = f"Approved: the tests pass at {commit[:10]} and the fix is minimal."
        log("review.approved", f"tests pass at {commit[:10]}; the fix is minimal",
            "--data", f"commit={commit}")
    else:
        verdict = f"Changes needed: {proc.stderr.strip().splitlines()[-1]}"
        log("review.rejected", verdict, "--data", f"commit={commit}")
    factory("mail", "reply", request["id"], "--body", verdict)


if __name__ == "__main__":
    main()
