"""The store's write path: group commits, compare-and-swap, immutability, crashes."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import gf, gf_json, git

from gitfactory.errors import RecordConflictError
from gitfactory.store import log, records
from gitfactory.store.branch import Change, Snapshot
from gitfactory.store.factory import Factory
from gitfactory.store.log import Draft


def _factory(repo: Path) -> Factory:
    return Factory.discover(repo)


def _event(text: str = "x") -> log.Event:
    return log.stamp(Draft(kind="note", actor="test/store", text=text))


def _change(*events: log.Event) -> Change:
    return Change({e.path: records.encode(e.to_record()) for e in events}, "test: write")


def test_group_commit_writes_many_records_in_one_commit(factory_repo: Path) -> None:
    factory = _factory(factory_repo)
    events = [_event(str(i)) for i in range(500)]
    before = int(git(factory_repo, "rev-list", "--count", "factory"))
    commit = factory.store.write(_change(*events))
    assert len(commit.paths) == 500
    assert int(git(factory_repo, "rev-list", "--count", "factory")) == before + 1
    assert len(gf_json(factory_repo, "log", "--as", "test/store")) == 500


def test_lost_race_against_a_plain_git_writer_is_retried(factory_repo: Path) -> None:
    factory = _factory(factory_repo)
    mine = _event("mine")
    calls: list[str | None] = []

    def build(snap: Snapshot) -> Change:
        calls.append(str(snap.tip))
        if len(calls) == 1:
            # Another writer, not taking gitfactory's lock, moves the branch now.
            subprocess.run(["bash", str(Path(__file__).parents[2] / "protocol" / "examples"
                                        / "append-event.sh"), "note", "theirs", "plain/git"],
                           cwd=factory_repo, check=True, capture_output=True)
        return _change(mine)

    commit = factory.store.transact(build)
    assert commit is not None and commit.attempts == 2
    assert calls[0] != calls[1]  # rebuilt on the new tip
    # Both records are there (their order is the ids', i.e. the two writers' clocks).
    texts = [e["text"] for e in gf_json(factory_repo, "log")]
    assert sorted(texts[-2:]) == ["mine", "theirs"]
    assert git(factory_repo, "log", "-1", "--format=%s", "factory").startswith("test: write")


def test_records_are_immutable_and_rewrites_are_idempotent(factory_repo: Path) -> None:
    factory = _factory(factory_repo)
    event = _event("original")
    first = factory.store.write(_change(event))
    again = factory.store.write(_change(event))
    assert again.paths == () and again.oid == first.oid  # nothing new committed
    changed = Change({event.path: b'{"tampered": true}\n'}, "test: tamper")
    with pytest.raises(RecordConflictError, match="records are immutable"):
        factory.store.write(changed)
    assert json.loads(git(factory_repo, "show", f"factory:{event.path}"))["text"] == "original"


def test_only_in_place_files_are_removed_and_an_emptied_folder_goes(factory_repo: Path) -> None:
    factory = _factory(factory_repo)
    event = _event("kept")
    factory.store.write(_change(event))
    with pytest.raises(ValueError, match="only in-place files can be removed"):
        Change({}, "test: rm", remove=frozenset({event.path}))
    with pytest.raises(ValueError, match="written and removed at once"):
        Change({"a": b""}, "test: rm", replace=frozenset({"a"}), remove=frozenset({"a"}))

    def removal(*paths: str) -> Change:
        return Change({}, "test: rm", replace=frozenset(paths), remove=frozenset(paths))

    a, b = ".factory/notes/a.md", ".factory/notes/deep/b.md"
    factory.store.write(Change({a: b"a", b: b"b"}, "test: add", replace=frozenset({a, b})))
    before = factory.store.tip()
    nothing = factory.store.write(removal(".factory/notes/absent.md", ".factory/none/x.md"))
    assert nothing.paths == () and factory.store.tip() == before  # absent: a no-op
    with pytest.raises(RecordConflictError, match="is a folder"):
        factory.store.write(removal(".factory/notes/deep"))
    assert factory.store.write(removal(b)).paths == (b,)
    assert git(factory_repo, "ls-tree", "-r", "--name-only", "factory", ".factory/notes") == (
        a + "\n"
    )
    factory.store.write(removal(a))
    assert "notes" not in git(factory_repo, "ls-tree", "--name-only", "factory", ".factory/")
    assert json.loads(git(factory_repo, "show", f"factory:{event.path}"))["text"] == "kept"


def test_shard_layout(factory_repo: Path) -> None:
    factory = _factory(factory_repo)
    event = _event()
    factory.store.write(_change(event))
    rid = event.id
    assert event.path == f".factory/log/{rid[:4]}/{rid[4]}/{rid[5]}/{rid[6]}/{rid[7]}/{rid}.json"
    listing = git(factory_repo, "ls-tree", "-r", "--name-only", "factory").splitlines()
    assert event.path in listing


def test_a_stale_ref_lock_left_by_a_crashed_writer_is_cleaned(factory_repo: Path) -> None:
    lock = factory_repo / ".git" / "refs" / "heads" / "factory.lock"
    lock.write_text("")
    old = time.time() - 60
    os.utime(lock, (old, old))
    record_id = gf(factory_repo, "log", "append", "note", "after a crash").stdout.strip()
    assert not lock.exists()
    assert gf_json(factory_repo, "log")[-1]["id"] == record_id


def test_a_fresh_ref_lock_is_waited_for(factory_repo: Path) -> None:
    lock = factory_repo / ".git" / "refs" / "heads" / "factory.lock"
    lock.write_text("")
    # Like a plain git writer that holds the ref lock for a moment, then lets go.
    remover = subprocess.Popen(["bash", "-c", f"sleep 1; rm -f '{lock}'"])
    record_id = gf(factory_repo, "log", "append", "note", "waited").stdout.strip()
    remover.wait()
    assert gf_json(factory_repo, "log")[-1]["id"] == record_id


def test_kill_9_at_any_instant_loses_and_corrupts_nothing(factory_repo: Path) -> None:
    rng = random.Random(7)
    ids_file = factory_repo / ".git" / "ids.txt"
    script = (f'while true; do "{sys.executable}" -m gitfactory log append crash "x" '
              f'>> "{ids_file}" || exit 1; done')
    for _ in range(5):
        writer = subprocess.Popen(["bash", "-c", script], cwd=factory_repo,
                                  start_new_session=True)
        time.sleep(rng.uniform(0.3, 1.2))
        os.killpg(writer.pid, signal.SIGKILL)
        writer.wait()
    started = time.monotonic()
    gf(factory_repo, "log", "append", "crash", "after the kills")
    # The write lock dies with its holder (flock); a ref .lock left by a kill in the
    # middle of libgit2's ref update is cleaned once it is 10 s old. Nothing waits longer.
    assert time.monotonic() - started < 90  # not a lock timeout's wait, however loaded
    status = gf_json(factory_repo, "status")
    assert status["invalid"] == []
    logged = {e["id"] for e in gf_json(factory_repo, "log", "--kind", "crash")}
    printed = set(ids_file.read_text().split()) if ids_file.exists() else set()
    # Every append that reported success is in the log (one killed between commit and
    # print may be there without having been printed).
    assert printed <= logged and len(logged) - len(printed) <= 5 + 1
    fsck = subprocess.run(["git", "fsck", "--no-dangling"], cwd=factory_repo,
                          capture_output=True, text=True)
    assert fsck.returncode == 0, fsck.stderr


def test_packed_refs_and_a_packed_object_store_are_read_and_written(factory_repo: Path) -> None:
    gf(factory_repo, "log", "append", "note", "before gc")
    git(factory_repo, "gc", "-q")  # packs objects and refs: refs/heads/factory is now packed
    assert not (factory_repo / ".git" / "refs" / "heads" / "factory").exists()
    assert "refs/heads/factory" in (factory_repo / ".git" / "packed-refs").read_text()
    assert gf_json(factory_repo, "log")[-1]["text"] == "before gc"
    gf(factory_repo, "log", "append", "note", "after gc")
    assert [e["text"] for e in gf_json(factory_repo, "log")][-2:] == ["before gc", "after gc"]
