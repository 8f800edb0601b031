from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from conftest import gf, gf_json, git


def test_append_prints_id_and_log_shows_it(factory_repo: Path) -> None:
    record_id = gf(factory_repo, "log", "append", "note", "hello world").stdout.strip()
    assert len(record_id) == 26
    events = gf_json(factory_repo, "log")
    assert events[0]["kind"] == "factory.init"
    last = events[-1]
    assert last["id"] == record_id and last["kind"] == "note" and last["text"] == "hello world"
    assert last["actor"] == "human/test-user"  # from git's user.name
    assert set(last) >= {"id", "kind", "actor", "time", "text", "task", "data"}
    human = gf(factory_repo, "log").stdout
    assert "note" in human and "hello world" in human and "human/test-user" in human


def test_append_json_and_commit_shape(factory_repo: Path) -> None:
    out = gf_json(factory_repo, "log", "append", "build.ok", "green", "--as", "ci/runner")
    assert set(out) == {"id", "commit"}
    assert git(factory_repo, "rev-parse", "factory").strip() == out["commit"]
    message = git(factory_repo, "log", "-1", "--format=%B", "factory")
    assert message.splitlines()[0] == "log: build.ok by ci/runner: green"
    assert f"Factory-Record: event {out['id']}" in message
    rid = out["id"]
    path = f".factory/log/{rid[:4]}/{rid[4]}/{rid[5]}/{rid[6]}/{rid[7]}/{rid}.json"
    stored = json.loads(git(factory_repo, "show", f"factory:{path}"))
    assert stored["kind"] == "build.ok" and stored["actor"] == "ci/runner"


def test_data_task_and_actor_options(factory_repo: Path) -> None:
    task = "01jd" + "0" * 22
    gf(factory_repo, "log", "append", "test.run", "--task", task, "--as", "qa/bob",
       "--data", "suite=unit", "--data", "passed:=42", "--data", "tags:=[\"a\",\"b\"]")
    event = gf_json(factory_repo, "log", "--task", task)[0]
    assert event["data"] == {"suite": "unit", "passed": 42, "tags": ["a", "b"]}
    assert event["task"] == task and event["actor"] == "qa/bob"


def test_agent_identity_from_environment(factory_repo: Path) -> None:
    gf(factory_repo, "log", "append", "note", "x", env={"GITFACTORY_AGENT": "coder/ada"})
    assert gf_json(factory_repo, "log", "--limit", "1")[0]["actor"] == "coder/ada"
    proc = gf(factory_repo, "log", "append", "note", "x", env={"GITFACTORY_AGENT": "Ada"}, code=2)
    assert "$GITFACTORY_AGENT" in proc.stderr and "role/name" in proc.stderr


def test_filters_and_limit(factory_repo: Path) -> None:
    for i in range(5):
        gf(factory_repo, "log", "append", "a" if i % 2 else "b", f"n{i}", "--as", f"r/w{i % 2}")
    texts = [e["text"] for e in gf_json(factory_repo, "log", "--kind", "b")]
    assert texts == ["n0", "n2", "n4"]
    assert [e["text"] for e in gf_json(factory_repo, "log", "--as", "r/w1")] == ["n1", "n3"]
    assert [e["text"] for e in gf_json(factory_repo, "log", "--limit", "2")] == ["n3", "n4"]
    assert gf_json(factory_repo, "log", "--limit", "0") == []
    assert len(gf_json(factory_repo, "log", "--since", "1h")) == 6
    assert gf_json(factory_repo, "log", "--since", "2999-01-01") == []
    assert len(gf_json(factory_repo, "log", "--since", "2000-01-01T00:00:00Z")) == 6
    proc = gf(factory_repo, "log", "--since", "yesterday-ish", code=2)
    assert "--since" in proc.stderr and "15m" in proc.stderr


def test_bad_input_is_refused_with_a_clear_message(factory_repo: Path) -> None:
    tip = git(factory_repo, "rev-parse", "factory")
    cases = [
        (["log", "append", "Not A Kind"], "kind"),
        (["log", "append", "note", "--as", "alice"], "role/name"),
        (["log", "append", "note", "--task", "T-1"], "task"),
        (["log", "append", "note", "--data", "novalue"], "KEY=VALUE"),
        (["log", "append", "note", "--data", "n:={bad"], "not valid JSON"),
        (["log", "append", "note", "--data", "a=1", "--data", "a=2"], "twice"),
        (["log", "append"], "missing KIND"),
    ]
    for args, expected in cases:
        proc = gf(factory_repo, *args, code=2)
        assert expected in proc.stderr, (args, proc.stderr)
    assert git(factory_repo, "rev-parse", "factory") == tip  # nothing was written


def test_stdin_writes_all_events_in_one_commit(factory_repo: Path) -> None:
    lines = "\n".join(
        json.dumps({"kind": "note", "text": f"line {i}", "data": {"i": i}}) for i in range(50)
    )
    before = int(git(factory_repo, "rev-list", "--count", "factory"))
    out = gf_json(factory_repo, "log", "append", "--stdin", "--as", "bulk/loader",
                  input=lines + "\n\n")
    assert len(out["ids"]) == 50 and out["ids"] == sorted(out["ids"])
    assert int(git(factory_repo, "rev-list", "--count", "factory")) == before + 1
    subject = git(factory_repo, "log", "-1", "--format=%s", "factory").strip()
    assert subject == "log: 50 events (note x50)"
    events = gf_json(factory_repo, "log", "--as", "bulk/loader")
    assert [e["data"]["i"] for e in events] == list(range(50))


def test_stdin_with_one_bad_line_writes_nothing(factory_repo: Path) -> None:
    tip = git(factory_repo, "rev-parse", "factory")
    good = json.dumps({"kind": "note"})
    for bad, expected in [
        ("{not json", "stdin line 2: not valid JSON"),
        (json.dumps({"text": "no kind"}), "stdin line 2: field 'kind' is required"),
        (json.dumps({"kind": "note", "colour": "red"}), "unknown field 'colour'"),
        (json.dumps({"kind": "note", "task": 7}), "stdin line 2: task"),
        ("[1, 2]", "expected a JSON object"),
    ]:
        proc = gf(factory_repo, "log", "append", "--stdin", input=f"{good}\n{bad}\n", code=2)
        assert expected in proc.stderr, proc.stderr
    assert git(factory_repo, "rev-parse", "factory") == tip


def test_terminal_control_characters_are_neutralised(factory_repo: Path) -> None:
    gf(factory_repo, "log", "append", "note", "evil \x1b[31mred\x1b]0;title\x07 text")
    out = gf(factory_repo, "log").stdout
    assert "\x1b" not in out and "\x07" not in out
    assert "\\x1b[31mred" in out
    # JSON keeps the exact text (escaped by JSON itself).
    assert gf_json(factory_repo, "log")[-1]["text"] == "evil \x1b[31mred\x1b]0;title\x07 text"


def test_multiline_text_is_one_line_or_indented_in_full(factory_repo: Path) -> None:
    gf(factory_repo, "log", "append", "note", "first line\nsecond line")
    assert gf(factory_repo, "log").stdout.splitlines()[-1].endswith("first line …")
    lines = gf(factory_repo, "log", "--full").stdout.splitlines()
    assert lines[-2].endswith("first line") and lines[-1].strip() == "second line"
    assert lines[-1].startswith(" ")


def test_follow_prints_events_committed_by_another_process(factory_repo: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "gitfactory", "log", "--follow", "--json", "--kind", "ping"],
        cwd=factory_repo, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        time.sleep(1.0)
        gf(factory_repo, "log", "append", "ping", "one")
        gf(factory_repo, "log", "append", "pong", "not shown")
        gf(factory_repo, "log", "append", "ping", "two")
        assert proc.stdout is not None
        first = json.loads(proc.stdout.readline())
        second = json.loads(proc.stdout.readline())
        assert (first["text"], second["text"]) == ("one", "two")
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_version_and_help(tmp_path: Path) -> None:
    out = gf(tmp_path, "--version").stdout
    assert out.startswith("gitfactory ")
    top = gf(tmp_path, "--help").stdout
    for command in ("init", "log", "status", "index", "demo"):
        assert command in top
    for args in (["init"], ["log"], ["log", "append"], ["status"], ["index", "rebuild"]):
        text = gf(tmp_path, *args, "--help").stdout
        assert "--json" in text, args
    assert "Examples" in gf(tmp_path, "log", "append", "--help").stdout
