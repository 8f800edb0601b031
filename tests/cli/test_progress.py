"""Long operations show progress on a terminal and nothing in a pipe."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import gf


def run_on_a_terminal(repo: Path, *args: str) -> tuple[int, str]:
    """Run the CLI with its stderr on a pseudo-terminal; (exit code, what it showed)."""
    leader, follower = os.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "gitfactory", *args], cwd=repo,
                            stdout=subprocess.DEVNULL, stderr=follower,
                            env={**os.environ, "GITFACTORY_PROGRESS_AFTER": "0"})  # fmt: skip
    os.close(follower)
    shown = bytearray()
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the program ended and closed the terminal
            break
        if not chunk:
            break
        shown.extend(chunk)
    os.close(leader)
    return proc.wait(120), shown.decode("utf-8", "replace")


def test_an_index_rebuild_counts_on_a_terminal_and_is_silent_in_a_pipe(
    factory_repo: Path,
) -> None:
    lines = "\n".join(json.dumps({"kind": "note", "text": f"n{i}"}) for i in range(1200))
    gf(factory_repo, "log", "append", "--stdin", input=lines)
    code, shown = run_on_a_terminal(factory_repo, "index", "rebuild")
    assert code == 0
    assert "indexing: 1,000 records read" in shown
    assert shown.endswith("\r\x1b[K")  # cleared when done
    piped = gf(factory_repo, "index", "rebuild", env={"GITFACTORY_PROGRESS_AFTER": "0"})
    assert piped.stderr == ""
    code, shown = run_on_a_terminal(factory_repo, "verify", "--full")
    assert code == 0


def test_a_sync_says_it_is_at_work_on_a_terminal(factory_repo: Path, tmp_path: Path) -> None:
    remote = tmp_path / "remote.git"
    subprocess.run(["git", "init", "-q", "--bare", str(remote)], check=True)
    gf(factory_repo, "log", "append", "note", "to share")
    code, shown = run_on_a_terminal(factory_repo, "sync", str(remote))
    assert code == 0
    assert f"sync with {remote}... " in shown and "\x1b[K\r\x1b[K" in shown  # cleared
    piped = gf(factory_repo, "sync", str(remote), env={"GITFACTORY_PROGRESS_AFTER": "0"})
    assert "..." not in piped.stderr
