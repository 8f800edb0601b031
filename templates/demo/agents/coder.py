"""Scripted coder agent of the demo: a real program, no LLM.

The daemon starts it in the task's own worktree with the task in its environment
(GITFACTORY_TASK, GITFACTORY_PROMPT_FILE, ...). It reads the task's title from its
prompt, makes the change, runs the tests, commits on the task's branch, records what
it did in the factory's log, mails the reviewers, and ends its step.
"""

import os
import subprocess
import sys
from pathlib import Path

FACTORY = [sys.executable, "-m", "gitfactory"]
ME = os.environ["GITFACTORY_AGENT"]
TASK = os.environ["GITFACTORY_TASK"]


def factory(*args):
    subprocess.run([*FACTORY, *args, "--as", ME], check=True, stdout=subprocess.DEVNULL)


def tests():
    proc = subprocess.run([sys.executable, "-m", "unittest", "-q"], capture_output=True, text=True)
    return proc.returncode == 0, (proc.stderr.strip().splitlines() or [""])[-1]


def fix_mean():
    source = Path("stats.py")
    source.write_text(source.read_text().replace("/ (len(values) + 1)  # BUG: off by one",
                                                 "/ len(values)"))
    return "stats.mean divides by len(values)"


def document():
    readme = Path("README.md")
    readme.write_text(readme.read_text() + "\n## Functions\n\n"
                      "- `mean(values)`: the arithmetic mean of a non-empty list.\n"
                      "- `spread(values)`: the largest value minus the smallest.\n")
    return "README documents mean and spread"


def main():
    title = Path(os.environ["GITFACTORY_PROMPT_FILE"]).read_text().splitlines()[0]
    ok, summary = tests()
    factory("log", "append", "test.run", f"before: {summary}", "--task", TASK,
            "--data", f"passed:={str(ok).lower()}")
    change = fix_mean() if "off-by-one" in title else document()
    ok, summary = tests()
    factory("log", "append", "test.run", f"after: {summary}", "--task", TASK,
            "--data", f"passed:={str(ok).lower()}")
    subprocess.run(["git", "commit", "-qam", change], check=True)
    factory("mail", "send", "reviewer/*", "--task", TASK, "--subject", f"Ready for review: {change}",
            "--body", f"On branch {os.environ['GITFACTORY_BRANCH']}; the tests pass there.")
    factory("step", "done", TASK, "--outcome", "success" if ok else "failure", "--note", change)


if __name__ == "__main__":
    main()
