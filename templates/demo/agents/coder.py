"""Scripted coder agent of the demo: a real program, no LLM.

The daemon starts it in the task's own worktree with the task in its environment
(GITFACTORY_TASK, GITFACTORY_PROMPT_FILE, ...). It reads the task's title from its
prompt, makes the change, commits on the task's branch, records what it did in the
factory's log, mails the reviewers, and ends its step.

Like a hurried human, its first fix of the bug does not run the tests: the tests
gate fails, and the gate's report in its next prompt tells it what to fix.
"""

import os
import subprocess
import sys
from pathlib import Path

FACTORY = [sys.executable, "-m", "gitfactory"]
ME = os.environ["GITFACTORY_AGENT"]
TASK = os.environ["GITFACTORY_TASK"]


def say(line):
    print(line, flush=True)  # the transcript: what a harness would show of its agent


def factory(*args):
    subprocess.run([*FACTORY, *args, "--as", ME], check=True, stdout=subprocess.DEVNULL)


def fix_mean(prompt):
    source = Path("stats.py")
    text = source.read_text()
    if "The gate `test` failed" in prompt and "2 != 2.5" in prompt:
        # The report says the mean came out as an integer: use true division.
        source.write_text(text.replace("// len(values)", "/ len(values)"))
        return "stats.mean: true division (the tests gate showed 2 != 2.5)"
    source.write_text(text.replace("/ (len(values) + 1)  # BUG: off by one", "// len(values)"))
    return "stats.mean divides by len(values)"


def document():
    readme = Path("README.md")
    readme.write_text(readme.read_text() + "\n## Functions\n\n"
                      "- `mean(values)`: the arithmetic mean of a non-empty list.\n"
                      "- `spread(values)`: the largest value minus the smallest.\n")
    return "README documents mean and spread"


def main():
    prompt = Path(os.environ["GITFACTORY_PROMPT_FILE"]).read_text()
    title = prompt.splitlines()[0]
    say(f"attempt {os.environ['GITFACTORY_ATTEMPT']} at {title.lstrip('# ')}")
    if "failed. Its report" in prompt:
        say("the prompt carries the report of a failed gate: reading it")
    change = fix_mean(prompt) if "off-by-one" in title else document()
    say(f"edited: {change}")
    subprocess.run(["git", "commit", "-qam", change], check=True)
    say(f"committed on {os.environ['GITFACTORY_BRANCH']}; mailing reviewer/* and ending the step")
    factory("log", "append", "code.changed", change, "--task", TASK,
            "--data", f"attempt:={os.environ['GITFACTORY_ATTEMPT']}")
    factory("mail", "send", "reviewer/*", "--task", TASK, "--subject", f"Ready for review: {change}",
            "--body", f"On branch {os.environ['GITFACTORY_BRANCH']}.")
    factory("step", "done", TASK, "--outcome", "success", "--note", change)


if __name__ == "__main__":
    main()
