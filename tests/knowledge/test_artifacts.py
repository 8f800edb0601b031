"""Artifacts: content and manifest committed together, byte for byte, size-limited."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from conftest import commit_on_factory, gf, gf_json, git


def test_round_trip_byte_for_byte_and_readable_with_plain_git(
    factory_repo: Path, tmp_path: Path
) -> None:
    r = factory_repo
    task = gf_json(r, "task", "add", "Produce things")["id"]
    other = gf_json(r, "task", "add", "Something else")["id"]
    blob = tmp_path / "core.bin"
    blob.write_bytes(os.urandom(200_000) + b"\x00\r\n\xff")
    report = tmp_path / "report.md"
    report.write_text("# Tests\n\n42 passed\n")

    a = gf_json(r, "artifact", "put", task[:6], str(blob), "--as", "qa/bot", "--step", "test")
    # A name, never a path: one that is not a plain file name is refused, not renamed.
    refused = gf(r, "artifact", "put", task[:6], "-", "--name", "../../etc/passwd log",
                 input="from stdin\n", code=2).stderr
    assert "hint: use --name passwd-log" in refused
    b = gf(r, "artifact", "put", task[:6], "-", "--name", "passwd-log",
           input="from stdin\n").stdout.strip()
    c = gf_json(r, "artifact", "put", other[:6], str(report))
    assert a["size"] == 200_004 and a["sha256"] == hashlib.sha256(blob.read_bytes()).hexdigest()
    assert a["media_type"] == "application/octet-stream" and c["media_type"] == "text/markdown"
    assert (a["producer"], a["step"], a["task"]) == ("qa/bot", "test", task)

    out = tmp_path / "back.bin"
    gf(r, "artifact", "get", a["id"][-6:], "-o", str(out))
    assert out.read_bytes() == blob.read_bytes()
    assert gf(r, "artifact", "get", b[:10]).stdout == "from stdin\n"
    listed = gf_json(r, "artifact", "list", task[:6])
    assert [x["id"] for x in listed] == [a["id"], b]
    assert listed[1]["name"] == "passwd-log"
    assert len(gf_json(r, "artifact", "list")) == 3
    shown = gf_json(r, "task", "show", task[:6])["artifacts"]
    assert [x["id"] for x in shown] == [a["id"], b]
    rows = gf(r, "artifact", "list").stdout.splitlines()
    short = {x["id"]: row.split()[0] for x, row in zip(gf_json(r, "artifact", "list"), rows)}
    assert f"  {short[b]:<10} {11:>10}  passwd-log" in gf(r, "task", "show", task[:6]).stdout
    assert gf(r, "artifact", "get", short[b]).stdout == "from stdin\n"

    # Plain git sees the same: the manifest record and the content at its place.
    shards = f"{a['id'][:4]}/{'/'.join(a['id'][4:8])}"
    manifest = json.loads(git(r, "show", f"factory:.factory/artifacts/{shards}/{a['id']}.json"))
    assert manifest == a
    raw = git(r, "rev-parse", f"factory:.factory/blobs/{shards}/{a['id']}")
    assert raw.strip() == a["blob"] == git(r, "hash-object", str(blob)).strip()
    assert json.loads(gf(r, "status", "--json").stdout)["records"]["artifact"] == 3


def test_size_limit_and_bad_input_write_nothing(factory_repo: Path, tmp_path: Path) -> None:
    r = factory_repo
    task = gf_json(r, "task", "add", "Produce too much")["id"]
    big = tmp_path / "big.bin"
    with big.open("wb") as fh:
        fh.truncate(32 * 1024 * 1024 + 1)
    tip = git(r, "rev-parse", "factory")
    proc = gf(r, "artifact", "put", task, str(big), code=2)
    assert "33,554,433 bytes is over the artifact limit of 33,554,432" in proc.stderr
    assert "no task id starts with" in gf(r, "artifact", "put", "zzzz", str(big), code=2).stderr
    assert "cannot read" in gf(r, "artifact", "put", task, str(tmp_path / "nope"), code=2).stderr
    assert "no artifact id starts or ends" in gf(r, "artifact", "get", "abcdef", code=2).stderr
    assert git(r, "rev-parse", "factory") == tip


def test_content_that_does_not_match_its_manifest_is_refused(
    factory_repo: Path, tmp_path: Path
) -> None:
    r = factory_repo
    task = gf_json(r, "task", "add", "Produce")["id"]
    note = tmp_path / "note.txt"
    note.write_text("the real content\n")
    a = gf_json(r, "artifact", "put", task, str(note))
    shards = f"{a['id'][:4]}/{'/'.join(a['id'][4:8])}"
    commit_on_factory(r, {f".factory/blobs/{shards}/{a['id']}": b"tampered\n"})
    proc = gf(r, "artifact", "get", a["id"], code=1)
    assert "does not match its SHA-256" in proc.stderr
