"""The SQLite index is derived: delete it, corrupt it, rewrite history; answers stay right."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import gf, gf_json, git


def _fill(repo: Path, n: int) -> None:
    lines = "\n".join(json.dumps({"kind": f"k{i % 3}", "text": f"t{i}"}) for i in range(n))
    gf(repo, "log", "append", "--stdin", input=lines)


def test_deleting_the_index_gives_identical_output(factory_repo: Path) -> None:
    _fill(factory_repo, 30)
    gf(factory_repo, "log", "append", "note", "single")
    queries = [["status", "--json"], ["log"], ["log", "--json"],
               ["log", "--kind", "k1", "--json"], ["log", "--limit", "5"]]
    before = [gf(factory_repo, *q).stdout for q in queries]
    index = factory_repo / ".git" / "gitfactory" / "index.sqlite"
    assert index.exists()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{index}{suffix}").unlink(missing_ok=True)
    after = [gf(factory_repo, *q).stdout for q in queries]
    assert after[1:] == before[1:]
    # status reports that it had to index everything again, the rest is the same.
    b, a = json.loads(before[0]), json.loads(after[0])
    assert a["index"]["was_current"] is False and a["index"]["indexed_now"] == 32
    b.pop("index"), a.pop("index")
    assert a == b


def test_a_corrupt_index_is_rebuilt(factory_repo: Path) -> None:
    _fill(factory_repo, 10)
    expected = gf(factory_repo, "log", "--json").stdout
    index = factory_repo / ".git" / "gitfactory" / "index.sqlite"
    for suffix in ("-wal", "-shm"):
        Path(f"{index}{suffix}").unlink(missing_ok=True)
    index.write_bytes(b"this is not a database" * 100)
    assert gf(factory_repo, "log", "--json").stdout == expected


def test_index_rebuild_command(factory_repo: Path) -> None:
    _fill(factory_repo, 20)
    out = gf_json(factory_repo, "index", "rebuild")
    assert out["records"] == 21 and out["invalid"] == 0
    assert out["tip"] == git(factory_repo, "rev-parse", "factory").strip()
    assert "indexed 21 records" in gf(factory_repo, "index", "rebuild").stdout


def test_index_follows_a_rewritten_branch(factory_repo: Path) -> None:
    gf(factory_repo, "log", "append", "note", "kept")
    keep = git(factory_repo, "rev-parse", "factory").strip()
    gf(factory_repo, "log", "append", "note", "dropped")
    assert [e["text"] for e in gf_json(factory_repo, "log")][-1] == "dropped"
    git(factory_repo, "update-ref", "refs/heads/factory", keep)
    assert [e["text"] for e in gf_json(factory_repo, "log")][-1] == "kept"


def test_index_is_never_committed(factory_repo: Path) -> None:
    _fill(factory_repo, 5)
    gf(factory_repo, "log")
    files = git(factory_repo, "ls-tree", "-r", "--name-only", "factory").splitlines()
    assert all(f.startswith(".factory/") for f in files)
    assert not any("sqlite" in f for f in files)
    assert git(factory_repo, "status", "--porcelain", "--ignored").count("gitfactory") == 0
