"""Many writers at once: nothing lost, nothing duplicated (DESIGN I3)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from conftest import gf_json, git

WRITERS = 8
# Each CLI call starts an interpreter (~0.3 s of CPU): 8 x 20 of them keep all eight
# writers contending for the branch the whole time, in well under a minute on two cores.
PER_WRITER = 20


def storm(repo: Path, command: str) -> list[str]:
    """Run ``command`` PER_WRITER times in each of WRITERS shell loops at once ($W is
    the writer, $i the round); the ids they printed, checked to be all different."""
    script = (
        f'for i in $(seq 1 {PER_WRITER}); do "{sys.executable}" -m gitfactory {command}'
        ' >> "$OUT" || exit 1; done'
    )
    procs = []
    for w in range(WRITERS):
        out = repo / ".git" / f"printed-{w}.txt"
        procs.append((out, subprocess.Popen(
            ["bash", "-c", script], cwd=repo,
            env={**os.environ, "W": str(w), "OUT": str(out)},
        )))
    for _, proc in procs:
        assert proc.wait(timeout=900) == 0
    printed = [line for out, _ in procs for line in out.read_text().split()]
    assert len(printed) == WRITERS * PER_WRITER == len(set(printed))
    return printed


# A writer process that appends one event per commit through the library, in a loop:
# the same lock, compare-and-swap and commit as the CLI, without ~250 ms of
# interpreter start per record (the CLI itself is stormed by the mail test below).
APPENDER = """
import sys
from gitfactory.store import log
from gitfactory.store.factory import Factory
factory = Factory.discover()
w, n = sys.argv[1], int(sys.argv[2])
for i in range(1, n + 1):
    event = log.new_event(log.Draft(kind="load", actor=f"load/w{w}", text=f"{w}-{i}"))
    log.append(factory, [event])
    print(event.id, flush=True)
"""
APPENDS = 200


def test_eight_processes_appending_200_records_each(factory_repo: Path) -> None:
    procs = [
        subprocess.Popen([sys.executable, "-c", APPENDER, str(w), str(APPENDS)],
                         cwd=factory_repo, stdout=subprocess.PIPE, text=True)
        for w in range(WRITERS)
    ]  # fmt: skip
    printed = [line for p in procs for line in p.communicate(timeout=600)[0].split()]
    assert all(p.returncode == 0 for p in procs)
    assert len(printed) == WRITERS * APPENDS == len(set(printed))

    events = gf_json(factory_repo, "log", "--kind", "load")
    assert len(events) == WRITERS * APPENDS
    assert sorted(e["id"] for e in events) == sorted(printed)
    texts = {e["text"] for e in events}
    assert texts == {f"{w}-{i}" for w in range(WRITERS) for i in range(1, APPENDS + 1)}
    # Each writer's own events are in its order (ids are monotonic per writer).
    for w in range(WRITERS):
        mine = [int(e["text"].split("-")[1]) for e in events if e["actor"] == f"load/w{w}"]
        assert mine == list(range(1, APPENDS + 1))
    # One commit per append, on one linear history; every record file exists once.
    assert int(git(factory_repo, "rev-list", "--count", "factory")) == 1 + WRITERS * APPENDS
    files = git(factory_repo, "ls-tree", "-r", "--name-only", "factory").splitlines()
    assert len(files) == 5 + WRITERS * APPENDS  # + factory.yaml, init event, 3 documents


def test_eight_processes_sending_20_messages_each(factory_repo: Path) -> None:
    # 8 agents mail each other through the real CLI, all at once.
    printed = storm(
        factory_repo,
        f'mail send "coder/a$(( (W + 1) % {WRITERS} ))" "team/*" -s "$W-$i" --as "coder/a$W"',
    )

    # Every agent got exactly its neighbour's 20, in the order they were sent.
    for w in range(WRITERS):
        got = gf_json(factory_repo, "mail", "inbox", "--as", f"coder/a{w}", "--limit", "0")
        sender = (w - 1) % WRITERS
        assert [m["subject"] for m in reversed(got)] == [
            f"{sender}-{i}" for i in range(1, PER_WRITER + 1)
        ]
    team = gf_json(factory_repo, "mail", "inbox", "--as", "team/x", "--limit", "0")
    assert sorted(m["id"] for m in team) == sorted(printed)
    receipts = gf_json(factory_repo, "log", "--kind", "mail.delivered")
    assert sorted(e["data"]["message"] for e in receipts) == sorted(printed)
    assert int(git(factory_repo, "rev-list", "--count", "factory")) == 1 + WRITERS * PER_WRITER
