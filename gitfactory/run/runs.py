"""Agent processes the daemon started on this machine, and how it finds them again.

A run is one start of one step: an agent (or a gate's command) in a task's worktree.
Its bookkeeping lives in ``.git/gitfactory/runs/<run id>/``: ``run.json``, the
rendered ``prompt.md``, the exported ``inbox/`` and the ``transcript.log`` of its
output. This is machine-local process state, not factory state: what the factory
knows about a run is in the log (``dispatch.started``, ``dispatch.finished``).

Every run's process starts a new session (so the whole process group can be
killed) with ``GITFACTORY_RUN=<id>`` in its environment. A daemon restarted after a
crash finds its runs' processes by that marker, even one it started but had not yet
written down, and adopts them instead of starting the step twice.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any

from gitfactory.store.actors import ENV_RUN
from gitfactory.store.git import replace_file

RUNS_DIR = "runs"
MARKER = ENV_RUN  # in every run's environment: how its processes are found again
# The factory's own agents: who writes the daemon's records, who holds a task while
# a gate runs on it, and while it is merged.
ACTOR = "factory/daemon"
GATE_AGENT = "factory/gate"
MERGE_AGENT = "factory/merge"


@dataclass
class Run:
    id: str
    task: str
    agent: str  # the address that holds the task's lease while the run lasts
    step: str
    kind: str  # "agent" or "gate"
    command: str
    worktree: str
    branch: str
    head: str | None  # the branch tip when the run started
    started_ms: int
    deadline_ms: int
    attempt: int = 1
    pid: int | None = None
    gate: dict[str, Any] | None = None  # a gate run: the gate as it was declared at the start

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Run:
        return cls(**data)


@dataclass(frozen=True)
class Ended:
    run: Run
    outcome: str  # success, failure, timeout, or "" when the agent ended the step itself
    how: str  # step_done, trailer, exit_code, timeout, lost, canceled, gate, uncommitted, no_change
    exit_code: int | None
    why: str = ""  # why the step ended so, as written with its end (empty: not ended here)
    tail: tuple[str, ...] = ()  # a failed run's last lines of output (stdout and stderr)
    then: str = ""  # where the task went: the step it waits at, completed or failed


def last_lines(transcript: Path, lines: int = 3, width: int = 200) -> tuple[str, ...]:
    """The last non-empty lines of a transcript, each cut to ``width`` characters."""
    text, _ = tail(transcript, 4096)
    kept = [line.rstrip() for line in text.splitlines() if line.strip()][-lines:]
    return tuple(line if len(line) <= width else line[: width - 1] + "…" for line in kept)


class RunBook:
    """The run directories of one repository."""

    def __init__(self, factory_dir: Path) -> None:
        self.root = factory_dir / RUNS_DIR

    def directory(self, run_id: str) -> Path:
        return self.root / run_id

    def save(self, run: Run) -> None:
        directory = self.directory(run.id)
        directory.mkdir(parents=True, exist_ok=True)
        replace_file(directory / "run.json", json.dumps(run.to_json(), indent=2) + "\n")

    def active(self) -> list[Run]:
        """Runs not yet finished (their directory has run.json and no finished.json)."""
        if not self.root.is_dir():
            return []
        found = []
        for directory in sorted(self.root.iterdir()):
            if (directory / "run.json").is_file() and not (directory / "finished.json").exists():
                try:
                    found.append(Run.from_json(json.loads((directory / "run.json").read_text())))
                except (ValueError, TypeError):
                    continue  # a torn file from a crash before the rename: nothing started
        return found

    def finish(self, run: Run, result: dict[str, Any]) -> None:
        path = self.directory(run.id) / "finished.json"
        path.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")

    def prune(self, older_than_s: float) -> int:
        """Delete finished runs' directories (prompt, inbox, transcript) older than that."""
        import shutil

        if not self.root.is_dir():
            return 0
        cutoff = time.time() - older_than_s
        gone = 0
        for directory in self.root.iterdir():
            finished = directory / "finished.json"
            if finished.exists() and finished.stat().st_mtime < cutoff:
                shutil.rmtree(directory, ignore_errors=True)
                gone += 1
        return gone

    def transcript(self, run_id: str) -> Path:
        return self.directory(run_id) / "transcript.log"

    def exit_file(self, run_id: str) -> Path:
        return self.directory(run_id) / "exit"


# The session leader runs the command and writes its exit status to a file, so that
# a daemon that was dead when the command ended still learns how it ended.
_WRAPPER = 'sh -c "$1"; code=$?; printf "%s\\n" "$code" > "$2"; exit "$code"'


def spawn(
    command: str,
    cwd: Path,
    env: dict[str, str],
    transcript: Path,
    exit_file: Path,
    *,
    stdin: Path | None = None,
    stdout: Path | None = None,
) -> subprocess.Popen[bytes]:
    """Start ``command`` with sh in its own session, output appended to ``transcript``
    (standard output to ``stdout`` instead when given, e.g. a judge's verdict)."""
    with contextlib.ExitStack() as files:
        err: IO[bytes] = files.enter_context(transcript.open("ab"))
        out = files.enter_context(stdout.open("ab")) if stdout is not None else err
        given: IO[bytes] | int = (
            files.enter_context(stdin.open("rb")) if stdin is not None else subprocess.DEVNULL
        )
        return subprocess.Popen(
            ["sh", "-c", _WRAPPER, "gitfactory-run", command, str(exit_file)], cwd=cwd,
            env=env, stdin=given, stdout=out, stderr=err, start_new_session=True,
        )  # fmt: skip


def exit_code(exit_file: Path) -> int | None:
    """The exit status the run's session leader wrote, if it got that far."""
    try:
        return int(exit_file.read_text().strip())
    except (OSError, ValueError):
        return None


def carries(pid: int, run_id: str) -> bool:
    """Whether process ``pid`` exists and was started for run ``run_id``."""
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return False
    return f"{MARKER}={run_id}".encode() in environ.split(b"\0")


def find(run_id: str) -> int | None:
    """The session leader started for ``run_id``, found by its environment marker."""
    wanted = f"{MARKER}={run_id}".encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if wanted in (entry / "environ").read_bytes().split(b"\0"):
                pid = int(entry.name)
                if os.getpgid(pid) == pid:
                    return pid
        except OSError:
            continue
    return None


def group_carries(pgid: int, run_id: str) -> bool:
    """Whether a process of group ``pgid`` was started for run ``run_id`` (what its
    leader left behind, after the leader is gone: children inherit the marker)."""
    wanted = f"{MARKER}={run_id}".encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if os.getpgid(int(entry.name)) != pgid:
                continue
            if wanted in (entry / "environ").read_bytes().split(b"\0"):
                return True
        except OSError:
            continue
    return False


def alive(pid: int) -> bool:
    """Whether ``pid`` is running (a zombie, dead but not yet reaped, is not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def kill_group(pid: int, grace_s: float) -> None:
    """SIGTERM the process group of ``pid``; SIGKILL it if it is still there after grace."""
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)  # reap the leader if it is our child
        try:
            os.killpg(pid, 0)
        except ProcessLookupError:
            return  # every process of the group is gone
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)


def tail(path: Path, limit: int) -> tuple[str, int]:
    """The last ``limit`` bytes of a file as text, and the file's size (0 if none)."""
    try:
        with path.open("rb") as fh:
            size = fh.seek(0, 2)
            fh.seek(max(0, size - limit))
            return fh.read().decode("utf-8", "replace"), size
    except OSError:
        return "", 0
