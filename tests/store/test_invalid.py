"""Corrupt or invalid records are named with file, field and reason; nothing else breaks."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import commit_on_factory, event_bytes, event_path, gf, gf_json

GOOD = "01m80000000000000000000001"
BAD = "01m80000000000000000000002"


def test_invalid_record_is_named_and_valid_ones_still_shown(factory_repo: Path) -> None:
    commit_on_factory(factory_repo, {
        event_path(GOOD): event_bytes(GOOD, text="fine"),
        event_path(BAD): event_bytes(BAD, kind="Bad Kind"),
    })
    proc = gf(factory_repo, "log", "--json", code=4)
    assert "fine" in [e["text"] for e in json.loads(proc.stdout)]
    assert event_path(BAD) in proc.stderr
    assert "field 'kind'" in proc.stderr and "must match pattern" in proc.stderr
    status = gf(factory_repo, "status", "--json", code=4)
    [invalid] = json.loads(status.stdout)["invalid"]
    assert invalid["path"] == event_path(BAD) and invalid["field"] == "kind"


def test_each_kind_of_damage_has_its_own_reason(factory_repo: Path) -> None:
    ids = [f"01m8000000000000000000001{i}" for i in range(7)]
    misplaced = f".factory/log/01m8/0/0/z/z/{ids[2]}.json"
    commit_on_factory(
        factory_repo,
        {
            event_path(ids[0]): b'{"id": "oops", ',
            event_path(ids[1]): event_bytes(ids[1], colour="red"),
            misplaced: event_bytes(ids[2]),
            event_path(ids[3]): event_bytes(ids[4]),
            event_path(ids[5]): event_bytes(ids[5], time="2026-13-45T99:00:00Z"),
            ".factory/log/README.md": b"notes\n",
            event_path(ids[6]).replace(ids[6], ids[6][:-1]): b"{}",
        },
        symlinks={event_path("01m80000000000000000000099"): "/etc/passwd"},
    )
    status = json.loads(gf(factory_repo, "status", "--json", code=4).stdout)
    reasons = {e["path"]: (e["field"], e["reason"]) for e in status["invalid"]}
    assert "not valid JSON" in reasons[event_path(ids[0])][1]
    assert reasons[event_path(ids[1])][0] == "colour"
    assert "is not at its place" in reasons[misplaced][1]
    assert reasons[event_path(ids[3])][0] == "id"
    assert reasons[event_path(ids[5])][0] == "time"
    assert "file name must be" in reasons[".factory/log/README.md"][1]
    assert "symlinks are refused" in reasons[event_path("01m80000000000000000000099")][1]
    assert len(reasons) == 8
    assert status["records"] == {"event": 1}  # only factory.init is valid


def test_hostile_json_is_an_invalid_record_not_a_crash(factory_repo: Path) -> None:
    # Anyone who can push to the factory branch can write these; every reader must
    # go on working (a RecursionError here once stopped every command).
    deep, nan = "01m80000000000000000000031", "01m80000000000000000000032"
    message = ".factory/mail/01m8/0/0/0/0/01m80000000000000000000033.md"
    commit_on_factory(factory_repo, {
        event_path(deep): b"[" * 100_000,
        event_path(nan): event_bytes(nan, data={"x": 1}).replace(b'{"x": 1}', b'{"x": NaN}'),
        message: b"---\nid: " + b"[" * 50_000 + b"\n---\nbody\n",
    })
    status = json.loads(gf(factory_repo, "status", "--json", code=4).stdout)
    reasons = {e["path"]: e["reason"] for e in status["invalid"]}
    assert reasons[event_path(deep)] == "nested too deep to read"
    assert reasons[message] == "nested too deep to read"
    assert "NaN is not a JSON number" in reasons[event_path(nan)]
    proc = gf(factory_repo, "log", "append", "x", "--data", "n:=NaN", code=2)
    assert "NaN is not a JSON number" in proc.stderr


def test_fixing_an_invalid_record_clears_it(factory_repo: Path) -> None:
    commit_on_factory(factory_repo, {event_path(BAD): b"garbage"})
    gf(factory_repo, "log", code=4)
    commit_on_factory(factory_repo, {}, remove=[event_path(BAD)], message="drop garbage")
    gf(factory_repo, "log", code=0)
    assert gf_json(factory_repo, "status")["invalid"] == []


def test_invalid_factory_yaml_names_line_and_column(factory_repo: Path) -> None:
    commit_on_factory(factory_repo, {
        ".factory/factory.yaml": b'protocol: "0.1"\nname: Not Valid\n'
    })
    proc = gf(factory_repo, "status", code=2)
    assert "factory:.factory/factory.yaml:2:1" in proc.stderr and "'name'" in proc.stderr
    commit_on_factory(factory_repo, {".factory/factory.yaml": b"protocol: [\n"})
    proc = gf(factory_repo, "status", code=2)
    assert "factory:.factory/factory.yaml:2:1" in proc.stderr
    commit_on_factory(factory_repo, {
        ".factory/factory.yaml": b'protocol: "0.1"\nname: ok\ncolour: red\n'
    })
    proc = gf(factory_repo, "status", code=2)
    assert ":3:1" in proc.stderr and "'colour'" in proc.stderr and "not a known field" in proc.stderr
