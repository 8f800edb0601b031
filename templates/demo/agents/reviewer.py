"""Scripted reviewer agent of the demo: a real program, no LLM.

The daemon starts it in the task's worktree once the gates have passed. It reads the
coder's requests from its inbox, acknowledges them,
looks at the diff against the base branch, runs the tests itself, answers by mail
and ends its step: success approves the change, failure sends it back.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

FACTORY = [sys.executable, "-m", "gitfactory"]
ME = os.environ["GITFACTORY_AGENT"]
TASK = os.environ["GITFACTORY_TASK"]


def factory(*args):
    return subprocess.run([*FACTORY, *args, "--as", ME], check=True, capture_output=True,
                          text=True).stdout


def main():
    inbox = json.loads(factory("mail", "inbox", "--unread", "--json"))
    requests = [m for m in inbox if m["task"] == TASK]  # one per attempt of the coder
    for message in requests:
        factory("mail", "read", message["id"])
        factory("mail", "ack", message["id"])
    print(f"{len(requests)} review request(s) in my inbox for task {TASK[:8]}", flush=True)
    request = requests[-1] if requests else None
    base = subprocess.run(["git", "merge-base", "HEAD", os.environ.get("DEMO_BASE", "main")],
                          capture_output=True, text=True, check=True).stdout.strip()
    changed = subprocess.run(["git", "diff", "--stat", base], capture_output=True, text=True,
                             check=True).stdout.strip().splitlines()
    proc = subprocess.run([sys.executable, "-m", "unittest", "-q"], capture_output=True, text=True)
    approved = proc.returncode == 0 and bool(changed)
    print(f"diff against {base[:12]}: {changed[-1].strip() if changed else 'no change'}")
    print(f"tests: {'pass' if proc.returncode == 0 else 'FAIL'}", flush=True)
    verdict = (f"Approved: {changed[-1].strip()}; the tests pass." if approved
               else "Changes needed: " + (proc.stderr.strip().splitlines() or ["no change"])[-1])
    factory("log", "append", "review.approved" if approved else "review.rejected", verdict,
            "--task", TASK)
    if request:
        factory("mail", "reply", request["id"], "--body", verdict)
    factory("step", "done", TASK, "--outcome", "success" if approved else "failure",
            "--note", verdict)


if __name__ == "__main__":
    main()
