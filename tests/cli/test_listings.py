"""Listings a new user reads: an empty one says so in one line, and `log` prints one
compact line per event (its data summarised), the whole event with --full or --json."""

from __future__ import annotations

from pathlib import Path

from conftest import gf, gf_json

NO_COLUMNS = {"COLUMNS": ""}  # as in a pipe: no terminal width to follow


def test_an_empty_listing_says_so_in_one_line_and_json_is_an_empty_list(
    factory_repo: Path,
) -> None:
    r = factory_repo
    said = {
        ("task", "list"): "no tasks yet (add one: gitfactory task add TITLE)",
        ("task", "list", "--label", "x"): "no tasks match --label x",
        ("task", "list", "--state", "working"): "no tasks match --state working",
        ("ready",): "no task is ready",
        ("ready", "--label", "x", "--role", "qa"): "no ready task matches --role qa --label x",
        ("mail", "inbox", "--as", "coder/alice"): "no messages for coder/alice",
        ("mail", "inbox", "--as", "coder/alice", "--unread"): "no unread messages for coder/alice",
        ("mail", "search", "nothing"): "no message matches 'nothing'",
        ("log", "--kind", "nope"): "no events match --kind nope",
        ("artifact", "list"): "no artifacts yet",
    }
    for command, line in said.items():
        assert gf(r, *command).stdout == line + "\n", command
        assert gf_json(r, *command) == [], command
    task = gf(r, "task", "add", "Something").stdout.strip()
    assert gf(r, "artifact", "list", task[:5]).stdout == f"no artifacts of task {task[:5]}\n"
    assert gf(r, "log", "--task", task[:5], "--kind", "nope").stdout == (
        f"no events match --kind nope --task {task[:5]}\n")  # fmt: skip


def test_log_prints_one_bounded_line_per_event_and_keeps_the_data_in_json(
    factory_repo: Path,
) -> None:
    r = factory_repo
    long = " ".join(f"word{n}" for n in range(800))  # ~6,000 characters
    gf(r, "log", "append", "test.run", "green\nand a second line", "--as", "ci/runner",
       "--data", "suite=unit", "--data", "passed:=42", "--data", f"output={long}",
       "--data", 'tags:=["a","b"]')  # fmt: skip
    lines = gf(r, "log", env=NO_COLUMNS).stdout.splitlines()
    assert len(lines) == 2  # factory.init, then the event: one line each
    line = lines[-1]
    assert len(line) <= 160 and line.endswith("…")
    assert "test.run          ci/runner            green …  output=\"word0 word1 " in line
    assert "word799" not in line  # a long value is cut at a word boundary ...
    assert '…" passed=42 suite=unit' in line  # ... and the keys that follow still show
    narrow = gf(r, "log", env={"COLUMNS": "100"}).stdout.splitlines()[-1]
    assert len(narrow) <= 100 and narrow.startswith(line[:60])
    # --full and --json keep everything
    full = gf(r, "log", "--full", "--kind", "test.run").stdout.splitlines()
    assert [x.strip() for x in full[1:]] == [
        "and a second line", f"output: {long}", "passed: 42", "suite: unit", 'tags: ["a","b"]']
    [event] = gf_json(r, "log", "--kind", "test.run")
    assert event["data"] == {"suite": "unit", "passed": 42, "output": long, "tags": ["a", "b"]}
