"""Plays the scenarios of one scenario-gate run: the process the daemon starts for it.

    python gitfactory/playbook.py RUN_DIR

``RUN_DIR/scenarios.json`` (written by the daemon) names the agent command, from
factory.yaml, and one entry per scenario: its file, its rendered prompt, where its
verdict, output and exit status go. Each scenario is played alone, in turn, by a new
process of the agent command (never a command from the scenario: scenarios are data);
its output goes to its own log and, under a heading, to the run's transcript. The
daemon reads the verdicts when this process has ended (``gates.judge_scenarios``).

Standard library only, and run by path rather than as part of the package, so that it
starts in a few tens of milliseconds: its start is part of every scenario gate's cost.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

PLAYBOOK = "scenarios.json"


def play(directory: Path) -> int:
    """Play each scenario of the playbook in turn with the agent command; each one's
    output goes to its own log and, with a heading, to the run's transcript."""
    book = json.loads((directory / PLAYBOOK).read_text(encoding="utf-8"))
    for entry in book["plays"]:
        print(f"== scenario {entry['name']} ==", flush=True)
        env = dict(os.environ)
        env.update({
            "GITFACTORY_SCENARIO": entry["name"], "GITFACTORY_SCENARIO_FILE": entry["file"],
            "GITFACTORY_PROMPT_FILE": entry["prompt"], "GITFACTORY_VERDICT_FILE": entry["verdict"],
        })  # fmt: skip
        with open(entry["log"], "wb") as log:
            proc = subprocess.Popen(
                ["sh", "-c", book["command"]], env=env, stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            )  # fmt: skip
            output = proc.stdout
            assert output is not None
            while chunk := os.read(output.fileno(), 65536):
                log.write(chunk)
                sys.stdout.buffer.write(chunk)
                sys.stdout.flush()
            code = proc.wait()
        Path(entry["exit"]).write_text(f"{code}\n", encoding="utf-8")
        print(f"== scenario {entry['name']}: exit {code} ==", flush=True)
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print("usage: python playbook.py RUN_DIR", file=sys.stderr)
        raise SystemExit(2)
    raise SystemExit(play(Path(sys.argv[1])))
