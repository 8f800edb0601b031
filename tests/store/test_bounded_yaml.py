"""YAML that would expand past every limit (an alias bomb of a few hundred bytes) or
nest without end: refused from the parser's events, before anything is built, in
records and in factory.yaml. No reader hangs, and the file is named with its reason."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from conftest import commit_on_factory, git, message_path

# Nine anchors, each a list of nine aliases of the one before: 9^9 values once built.
BOMB = "\n".join(
    ['a0: &a0 ["x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    + [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 9)]
)
DEEP = "deep: " + "[" * 200 + "]" * 200


def run(repo: Path, *args: str, code: int | None = 0, input: str | None = None) -> str:
    """The real CLI with a deadline: a hang fails the test instead of stalling it."""
    proc = subprocess.run(
        [sys.executable, "-m", "gitfactory", *args], cwd=repo, input=input,
        capture_output=True, text=True, timeout=90, env=os.environ,
    )  # fmt: skip
    if code is not None:
        assert proc.returncode == code, (args, proc.returncode, proc.stderr)
    return proc.stdout + proc.stderr


def message(mid: str, extra: str) -> bytes:
    return (
        f'---\nid: "{mid}"\nfrom: human/plain\nto: ["coder/ada"]\nsubject: hi\n'
        f"created: 2026-11-22T10:00:00Z\n{extra}\n---\n\nBody.\n"
    ).encode()


def task(tid: str, extra: str) -> bytes:
    return (
        f'---\nid: "{tid}"\ntitle: A task\nrequester: human/plain\n'
        f"created: 2026-11-22T10:00:00Z\n{extra}\n---\n"
    ).encode()


def task_path(tid: str) -> str:
    return f".factory/tasks/{tid[0]}/{tid[1]}/{tid}.md"


def test_an_alias_bomb_in_a_message_or_a_task_is_an_invalid_record(factory_repo: Path) -> None:
    r = factory_repo
    bomb_mail, deep_mail = "01m80000000000000000000030", "01m80000000000000000000031"
    ok_mail = "01m80000000000000000000032"
    bomb_task = "3" * 26
    commit_on_factory(r, {
        message_path(bomb_mail): message(bomb_mail, BOMB),
        message_path(deep_mail): message(deep_mail, DEEP),
        message_path(ok_mail): message(ok_mail, "priority: high"),
        task_path(bomb_task): task(bomb_task, BOMB),
    })  # fmt: skip
    status = json.loads(run(r, "status", "--json", code=4).split("\n", 1)[0])
    reasons = {i["path"]: i["reason"] for i in status["invalid"]}
    assert "anchor &a0" in reasons[message_path(bomb_mail)]
    assert "nested deeper than 64" in reasons[message_path(deep_mail)]
    assert "anchor &a0" in reasons[task_path(bomb_task)]
    # Every reader goes on with the rest.
    inbox = json.loads(run(r, "mail", "inbox", "--as", "coder/ada", "--json"))
    assert [m["id"] for m in inbox] == [ok_mail]
    assert json.loads(run(r, "task", "list", "--json")) == []
    run(r, "next", "--as", "coder/ada", code=3)
    run(r, "log", "--json")
    report = json.loads(run(r, "mail", "ingest", "--json"))
    assert sorted(q["path"] for q in report["quarantined"]) == sorted(
        [message_path(bomb_mail), message_path(deep_mail)]
    )


def test_an_alias_bomb_on_a_watched_branch_is_quarantined(factory_repo: Path) -> None:
    r = factory_repo
    mid = "01m80000000000000000000040"
    commit_on_factory(r, {message_path(mid): message(mid, BOMB)}, ref="refs/heads/agent/x")
    report = json.loads(run(r, "mail", "ingest", "--branch", "agent/x", "--json"))
    assert [q["path"] for q in report["quarantined"]] == [message_path(mid)]
    assert "anchor &a0" in report["quarantined"][0]["reason"]
    assert json.loads(run(r, "mail", "ingest", "--branch", "agent/x", "--json"))[
        "quarantined"
    ] == []  # once
    run(r, "daemon", "--burst")  # the daemon's own ingestion gets past it too


def test_factory_yaml_may_alias_but_not_explode(factory_repo: Path, tmp_path: Path) -> None:
    r = factory_repo
    config = git(r, "show", "factory:.factory/factory.yaml")
    tip = git(r, "rev-parse", "factory")
    # Refused at the door: nothing committed.
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(config + "\nx-bomb:\n" + "\n".join("  " + line for line in BOMB.split("\n")))
    out = run(r, "config", "check", "--file", str(bomb), code=2)
    assert "more than 100,000 values" in out
    out = run(r, "config", "edit", "--file", str(bomb), code=2)
    assert "more than 100,000 values" in out and git(r, "rev-parse", "factory") == tip
    # Committed by hand anyway: every command says what is wrong, none hangs.
    commit_on_factory(r, {".factory/factory.yaml": bomb.read_bytes()})
    for args in (["status"], ["next", "--as", "coder/ada"], ["workflow", "show"]):
        out = run(r, *args, code=2)
        assert "factory.yaml" in out and "more than 100,000 values" in out, (args, out)
    # A few aliases, as people write them, are fine.
    fine = tmp_path / "fine.yaml"
    fine.write_text(
        'protocol: "0.3"\nname: test\nworkflows:\n  default:\n    start: implement\n'
        "    steps:\n      implement: &coding {role: coder, timeout: 10m}\n"
        "      again: *coding\n"
    )
    assert "again" in run(r, "config", "check", "--file", str(fine))
