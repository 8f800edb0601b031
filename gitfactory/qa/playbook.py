"""Plays the scenarios of one scenario-gate run: the process the daemon starts for it.

    python -I -S gitfactory/qa/playbook.py RUN_DIR

``RUN_DIR/playbook`` (written by the daemon, see ``write``) names the agent command,
from factory.yaml, and one entry per scenario: its file, its rendered prompt, where its
verdict, output and exit status go. Each scenario is played alone, in turn, by a new
process of the agent command (never a command from the scenario: scenarios are data);
its output goes to its own log and, under a heading, to the run's transcript. The
daemon reads the verdicts when this process has ended (``gates.judge_scenarios``).

Its start is part of every scenario gate's cost, so it is run by path, not as part of
the package, and imports nothing but ``marshal``, ``os``, ``select`` and ``sys``: json,
subprocess and pathlib alone took 33 ms to import, more than the interpreter's start.
That is also why the playbook is a marshal file (the daemon and this process are the
same Python) rather than JSON.
"""

from __future__ import annotations

import marshal
import os
import select
import sys

NAME = "playbook"


def write(directory: str, command: str, plays: list[dict[str, str]]) -> None:
    with open(os.path.join(directory, NAME), "wb") as fh:
        marshal.dump({"command": command, "plays": plays}, fh)


def read(directory: str) -> dict[str, object]:
    with open(os.path.join(directory, NAME), "rb") as fh:
        book: dict[str, object] = marshal.load(fh)
    return book


def play(directory: str) -> int:
    """Play each scenario in turn; each one's output goes to its own log and to ours."""
    book = read(directory)
    command = str(book["command"])
    plays: list[dict[str, str]] = book["plays"]  # type: ignore[assignment]
    for entry in plays:
        _say(f"== scenario {entry['name']} ==\n")
        env = dict(os.environ)
        env.update({
            "GITFACTORY_SCENARIO": entry["name"], "GITFACTORY_SCENARIO_FILE": entry["file"],
            "GITFACTORY_PROMPT_FILE": entry["prompt"], "GITFACTORY_VERDICT_FILE": entry["verdict"],
        })  # fmt: skip
        # A verdict there before the scenario is played is not its verdict. (No
        # contextlib here: this module imports only what is built in, see above.)
        try:  # noqa: SIM105
            os.unlink(entry["verdict"])
        except FileNotFoundError:
            pass
        code = _run(command, env, entry["log"])
        with open(entry["exit"], "w", encoding="utf-8") as fh:
            fh.write(f"{code}\n")
        _say(f"== scenario {entry['name']}: exit {code} ==\n")
    return 0


def _run(command: str, env: dict[str, str], log_path: str) -> int:
    """``sh -c command`` with no input, its output copied to ``log_path`` and stdout."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: becomes the agent
        try:
            null = os.open(os.devnull, os.O_RDONLY)
            os.dup2(null, 0)
            os.dup2(write_end, 1)
            os.dup2(write_end, 2)
            os.close(read_end)
            os.execve("/bin/sh", ["sh", "-c", command], env)
        finally:
            os._exit(127)
    os.close(write_end)
    status = None
    with open(log_path, "wb") as log:
        # Until the agent has exited, and then what it wrote before: a process it left
        # behind may hold the pipe open for ever, and must not stall the next scenario
        # (the daemon ends such leftovers with the run).
        while status is None:
            ready, _, _ = select.select([read_end], [], [], 0.05)
            chunk = os.read(read_end, 65536) if ready else b""
            if chunk:
                log.write(chunk)
                os.write(1, chunk)
                continue
            done, code = os.waitpid(pid, 0 if ready else os.WNOHANG)  # EOF: it is ending
            status = code if done else None
        os.set_blocking(read_end, False)
        while True:
            try:
                chunk = os.read(read_end, 65536)
            except BlockingIOError:
                break
            if not chunk:
                break
            log.write(chunk)
            os.write(1, chunk)
    os.close(read_end)
    return os.waitstatus_to_exitcode(status)


def _say(text: str) -> None:
    os.write(1, text.encode("utf-8", "replace"))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        _say("usage: python playbook.py RUN_DIR\n")
        raise SystemExit(2)
    raise SystemExit(play(sys.argv[1]))
