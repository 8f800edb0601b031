"""`gitfactory top`: the factory at work in a terminal (a real pseudo-terminal here),
and one frame for a pipe or a script."""

from __future__ import annotations

import fcntl
import os
import select
import signal
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

from tests.conftest import gf, gf_json


def test_one_frame_shows_running_asking_ready_and_blocked(factory_repo: Path) -> None:
    r = factory_repo
    asked = gf_json(r, "task", "add", "Choose a licence")["id"]
    gf(r, "task", "claim", asked, "--as", "coder/ada")
    gf(r, "task", "ask", asked, "MIT or Apache-2.0?", "--as", "coder/ada")
    gf(r, "task", "add", "Write the parser", "--priority", "0")
    # What agents write is text, not markup for the terminal library.
    gf(r, "log", "append", "note", "[/bold] [link=http://evil.example]safe[/link] \x1b]0;t\x07")
    screen = gf(r, "top", "--once", env={"COLUMNS": "200"}).stdout
    assert "[/bold] [link=http://evil.example]safe[/link]" in screen and "\x1b]0" not in screen
    assert f"gitfactory task answer {gf_json(r, 'task', 'show', asked)['id'][:5]}" in screen
    assert "asking 1" in screen and "ready 1" in screen
    assert "MIT or Apache-2.0?" in screen and "coder/ada" in screen
    assert "P0 " in screen and "Write the parser" in screen
    # No agent plays the coder role: top says what blocks the ready task, and the fix.
    assert "blocked" in screen and "fix:" in screen
    frame = gf_json(r, "top", "--json")
    assert frame["counts"]["ready"] == 1 and frame["counts"]["input_required"] == 1
    assert [q["question"] for q in frame["questions"]] == ["MIT or Apache-2.0?"]
    assert [e["kind"] for e in frame["events"]][-2:] == ["task.created", "note"]


def test_the_live_screen_follows_commits_until_ctrl_c(factory_repo: Path) -> None:
    r = factory_repo
    gf(r, "task", "add", "Already there")
    leader, follower = os.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 140, 0, 0))
    proc = subprocess.Popen(
        [sys.executable, "-m", "gitfactory", "top", "--interval", "60s"], cwd=r,
        stdin=follower, stdout=follower, stderr=follower, close_fds=True,
        env={**os.environ, "TERM": "xterm-256color"}, start_new_session=True,
    )  # fmt: skip
    os.close(follower)
    seen = bytearray()

    def read_until(text: str, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while text.encode() not in seen:
            assert time.monotonic() < deadline, f"never shown: {text!r}; screen: {seen[-2000:]!r}"
            ready, _, _ = select.select([leader], [], [], 0.5)
            if ready:
                try:
                    seen.extend(os.read(leader, 65536))
                except OSError:  # the terminal closed: the program ended
                    raise AssertionError(f"top ended early: {seen[-2000:]!r}") from None

    try:
        read_until("Already there")
        # The interval is a minute: only following the branch can show this in time.
        gf(r, "task", "add", "Added while watching")
        read_until("Added while watching")
        os.write(leader, b"q")  # q quits, as in top(1)
        assert proc.wait(60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(leader)
