"""Scripted QA agent of the demo: a real program, no LLM.

A scenario gate starts it once per scenario file (.factory/scenarios/*.md on the
factory branch), in the task's worktree. It plays the scenario as a user would: each
"Run:" line is a command the user types (only `python` commands, split without a
shell), each "Expect:" line what the user must see. It writes its verdict as JSON
to $GITFACTORY_VERDICT_FILE.
"""

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path


def main():
    scenario = Path(os.environ["GITFACTORY_SCENARIO_FILE"]).read_text()
    reasons, ok, seen = [], True, ""
    for line in scenario.splitlines():
        line = line.strip().lstrip("-* ").strip()
        if line.startswith("Run:"):
            argv = shlex.split(line[4:].strip().strip("`"))
            if argv[:1] != ["python"]:
                ok = False
                reasons.append(f"refused to run {argv[:1]}: only python commands are played")
                continue
            proc = subprocess.run([sys.executable, *argv[1:]], capture_output=True, text=True)
            seen = (proc.stdout + proc.stderr).strip()
        elif line.startswith("Expect:"):
            want = line[7:].strip().strip("`")
            if seen == want:
                reasons.append(f"saw {want!r} as expected")
            else:
                ok = False
                reasons.append(f"expected {want!r}, saw {seen!r}")
    print(f"{os.environ['GITFACTORY_SCENARIO']}: {'pass' if ok else 'FAIL'}")
    Path(os.environ["GITFACTORY_VERDICT_FILE"]).write_text(
        json.dumps({"pass": ok, "reasons": reasons}) + "\n")


if __name__ == "__main__":
    main()
