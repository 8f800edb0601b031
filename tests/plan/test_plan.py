"""Tasks, lifecycle, ready queue, claims and leases (issue 3, first slice)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import commit_on_factory, gf, gf_json, git

from gitfactory.errors import FactoryError
from gitfactory.plan import decisions, tasks
from gitfactory.store import clock
from gitfactory.store.factory import Factory
from gitfactory.store.log import Event

T0 = "2026-11-22T10:00:00.000Z"
T0_MS = clock.parse_time(T0)


def at(minutes: float) -> dict[str, str]:
    """The environment of a CLI call made `minutes` after T0 (the injected clock)."""
    return {"GITFACTORY_NOW": str(int(T0_MS + minutes * 60_000))}


_ADDED = [0]


def add(repo: Path, title: str, *args: str) -> str:
    """Add a task before T0; each one a second after the previous, so that ages differ."""
    _ADDED[0] += 1
    return gf_json(repo, "task", "add", title, *args, env=at(_ADDED[0] / 60 - 60))["id"]


def state(repo: Path, task: str, minutes: float = 0) -> dict[str, object]:
    out: dict[str, object] = gf_json(repo, "task", "show", task, env=at(minutes))
    return out


def test_add_show_list_and_prefixes(factory_repo: Path) -> None:
    tid = add(factory_repo, "Write the parser", "--label", "backend", "--priority", "1",
              "--body", "Parse **all** of it.")
    shown = state(factory_repo, tid[:6])
    assert shown["id"] == tid and shown["state"] == "submitted" and shown["priority"] == 1
    assert shown["body"] == "Parse **all** of it.\n" and shown["labels"] == ["backend"]
    record = git(factory_repo, "show", f"factory:.factory/tasks/{tid[0]}/{tid[1]}/{tid}.md")
    assert record.startswith("---\n") and 'title: "Write the parser"' in record
    listed = gf_json(factory_repo, "task", "list")
    assert [t["id"] for t in listed] == [tid]
    assert gf(factory_repo, "task", "list").stdout.split()[0] == tid[:5]
    proc = gf(factory_repo, "task", "show", "zzzz", code=2)
    assert "no task id starts with 'zzzz'" in proc.stderr


def test_ambiguous_prefix_is_refused(factory_repo: Path) -> None:
    ids = [add(factory_repo, f"t{i}") for i in range(12)]
    first = {i[0] for i in ids}
    shared = next(c for c in first if sum(i.startswith(c) for i in ids) > 1)
    proc = gf(factory_repo, "task", "show", shared, code=2)
    assert "ambiguous" in proc.stderr


def test_ready_queue_order_and_dependencies(factory_repo: Path) -> None:
    low = add(factory_repo, "low", "--priority", "5")
    urgent = add(factory_repo, "urgent", "--priority", "0")
    blocked = add(factory_repo, "blocked", "--priority", "0", "--depends-on", low)
    old_p2 = add(factory_repo, "first p2")
    new_p2 = add(factory_repo, "second p2")
    order = [t["id"] for t in gf_json(factory_repo, "ready", env=at(1))]
    assert order == [urgent, old_p2, new_p2, low]  # priority first, then age
    assert blocked not in order
    proc = gf(factory_repo, "task", "claim", blocked, "--as", "coder/a", env=at(1), code=1)
    assert "waiting for" in proc.stderr and low[:8] in proc.stderr
    factory = Factory.discover(factory_repo)
    os.environ["GITFACTORY_NOW"] = str(T0_MS + 120_000)
    try:
        decisions.claim(factory, low, "c/a")
        decisions.holder_move(factory, low, "c/a", "task.completed")
    finally:
        del os.environ["GITFACTORY_NOW"]
    order = [t["id"] for t in gf_json(factory_repo, "ready", env=at(3))]
    assert order == [urgent, blocked, old_p2, new_p2]
    assert gf_json(factory_repo, "ready", "--label", "nope", env=at(3)) == []
    proc = gf(factory_repo, "task", "add", "x", "--depends-on", "zzzzzz", code=2)
    assert "no task id starts with" in proc.stderr


def test_claim_is_exclusive_and_idempotent(factory_repo: Path) -> None:
    tid = add(factory_repo, "one")
    out = gf_json(factory_repo, "task", "claim", tid, "--as", "coder/ada", env=at(1))
    assert out["state"] == "working" and out["assignee"] == "coder/ada"
    assert out["lease_until"] == "2026-11-22T10:16:00.000Z"
    gf(factory_repo, "task", "claim", tid, "--as", "coder/ada", env=at(2))  # still ours: exit 0
    proc = gf(factory_repo, "task", "claim", tid, "--as", "coder/bob", env=at(2), code=1)
    assert "claimed by coder/ada until 2026-11-22T10:16:00.000Z" in proc.stderr


def test_lease_expiry_with_an_injected_clock(factory_repo: Path) -> None:
    tid = add(factory_repo, "leased")
    gf(factory_repo, "task", "claim", tid, "--as", "coder/ada", "--lease", "10m", env=at(0))
    gf(factory_repo, "task", "heartbeat", tid, "--as", "coder/ada", "--lease", "10m", env=at(8))
    assert state(factory_repo, tid, 17)["state"] == "working"  # renewed until 18
    expired = state(factory_repo, tid, 19)
    assert expired["state"] == "submitted" and expired["lease_expired"] is True
    assert [t["id"] for t in gf_json(factory_repo, "ready", env=at(19))] == [tid]
    # Bob notices first: his claim records the expiry, then his claim.
    gf(factory_repo, "task", "claim", tid, "--as", "coder/bob", env=at(19))
    kinds = [e["kind"] for e in state(factory_repo, tid, 19)["history"]]
    assert kinds == ["task.created", "task.claimed", "task.heartbeat", "task.expired",
                     "task.claimed"]


def test_a_clock_that_steps_back_does_not_void_the_holders_moves(factory_repo: Path) -> None:
    # A process that stamped an id an hour ahead (a clock stepped back since, or a
    # test's injected clock): its later ids keep that time to stay monotonic, and
    # the lease it grants must be measured from the same time, or the fold would
    # judge the holder's own moves as made after the lease ran out.
    from gitfactory.store import ids

    factory = Factory.discover(factory_repo)
    ids.new_id(T0_MS + 3_600_000)
    tid = decisions.add(factory, title="t", requester="human/h").id
    os.environ["GITFACTORY_NOW"] = str(T0_MS)
    try:
        decisions.claim(factory, tid, "c/a")
        decisions.holder_move(factory, tid, "c/a", "task.heartbeat", lease_ms=60_000)
        assert decisions.holder_move(factory, tid, "c/a", "task.completed").state == "completed"
    finally:
        del os.environ["GITFACTORY_NOW"]
    assert decisions.load(factory, tid).state == "completed"


def test_a_stale_writer_is_refused(factory_repo: Path) -> None:
    tid = add(factory_repo, "stale")
    gf(factory_repo, "task", "claim", tid, "--as", "coder/ada", "--lease", "5m", env=at(0))
    proc = gf(factory_repo, "task", "heartbeat", tid, "--as", "coder/ada", env=at(6), code=1)
    assert "lease of coder/ada ran out" in proc.stderr
    shown = state(factory_repo, tid, 6)
    assert shown["state"] == "submitted" and shown["history"][-1]["kind"] == "task.expired"
    factory = Factory.discover(factory_repo)
    os.environ["GITFACTORY_NOW"] = str(T0_MS + 7 * 60_000)
    try:
        with pytest.raises(FactoryError, match="cannot complete"):
            decisions.holder_move(factory, tid, "coder/ada", "task.completed")
    finally:
        del os.environ["GITFACTORY_NOW"]
    assert state(factory_repo, tid, 7)["state"] == "submitted"


def test_every_transition_and_its_refusals(factory_repo: Path) -> None:
    factory = Factory.discover(factory_repo)
    os.environ["GITFACTORY_NOW"] = str(T0_MS)
    try:
        def fresh() -> str:
            return decisions.add(factory, title="t", requester="human/h").id

        def legal_then(tid: str, moves: list[tuple[str, str]]) -> str:
            for who, kind in moves:
                if kind == "claim":
                    decisions.claim(factory, tid, who)
                elif kind == "cancel":
                    decisions.cancel(factory, tid, who)
                elif kind == "answer":
                    decisions.answer(factory, tid, who, "yes")
                else:
                    decisions.holder_move(factory, tid, who, f"task.{kind}")
            return decisions.load(factory, tid).state

        a = "c/a"
        assert legal_then(fresh(), [(a, "claim"), (a, "completed")]) == "completed"
        assert legal_then(fresh(), [(a, "claim"), (a, "failed")]) == "failed"
        assert legal_then(fresh(), [(a, "claim"), (a, "released")]) == "submitted"
        assert legal_then(fresh(), [(a, "claim"), (a, "asked"), ("human/h", "answer"),
                                    (a, "completed")]) == "completed"
        assert legal_then(fresh(), [("human/h", "cancel")]) == "canceled"
        assert legal_then(fresh(), [(a, "claim"), (a, "asked"), ("human/h", "cancel")]) == (
            "canceled")
        # Cancel of a working task is a request; the holder honours it.
        tid = fresh()
        assert legal_then(tid, [(a, "claim"), ("human/h", "cancel")]) == "working"
        assert decisions.load(factory, tid).cancel_requested == "cancel requested"
        assert legal_then(tid, [(a, "cancel")]) == "canceled"
        # Terminal takes no move but a person's reopen (or retry); wrong states and wrong
        # holders are refused with the legal moves.
        done = fresh()
        legal_then(done, [(a, "claim"), (a, "completed")])
        for call in (lambda: decisions.claim(factory, done, a),
                     lambda: decisions.cancel(factory, done, a),
                     lambda: decisions.holder_move(factory, done, a, "task.heartbeat")):
            with pytest.raises(FactoryError, match="it is completed; legal now: reopen$"):
                call()
        idle = fresh()
        with pytest.raises(FactoryError, match="it is submitted; legal now: claim, cancel, "
                                               "reject"):
            decisions.holder_move(factory, idle, a, "task.completed")
        with pytest.raises(FactoryError, match="it is submitted"):
            decisions.answer(factory, idle, a, "?")
        held = fresh()
        decisions.claim(factory, held, a)
        with pytest.raises(FactoryError, match="held by c/a, not c/b"):
            decisions.holder_move(factory, held, "c/b", "task.completed")
    finally:
        del os.environ["GITFACTORY_NOW"]


def _event(eid: str, kind: str, actor: str, minutes: float, seq: int, **data: object) -> Event:

    return Event(eid, kind, actor, clock.format_time(int(T0_MS + minutes * 60_000)), "t" * 26,
                 "", {"seq": seq, **data})


def test_fold_is_decided_by_seq_not_by_clocks() -> None:
    task = tasks.Task(id="4" * 26, title="t", requester="h/h", created=T0)
    lease = T0_MS + 3_600_000
    # Bob claimed second (seq 1, after Ada released) but his clock is behind: his id is
    # smaller. The fold still follows seq. A late duplicate claim with seq 0 loses.
    events = [
        _event("01m80000000000000000000003", "task.claimed", "c/bob", 1, 2, lease_until=lease),
        _event("01m80000000000000000000005", "task.claimed", "c/ada", 2, 0, lease_until=lease),
        _event("01m80000000000000000000006", "task.released", "c/ada", 3, 1),
        _event("01m80000000000000000000007", "task.claimed", "c/eve", 2, 0, lease_until=lease),
    ]
    st = tasks.fold(task, events)
    assert (st.state, st.assignee, st.seq) == ("working", "c/bob", 3)
    assert tasks.fold(task, reversed(events)) == st


CLAIMER = """
import json, os, sys
from gitfactory.plan import decisions
from gitfactory.errors import FactoryError
from gitfactory.store.factory import Factory
factory = Factory.discover()
me, tasks = sys.argv[1], json.loads(sys.argv[2])
won = []
for tid in tasks:
    try:
        decisions.claim(factory, tid, me)
        won.append(tid)
    except FactoryError:
        pass
print(json.dumps(won))
"""


@pytest.mark.parametrize("run", range(3))
def test_claim_storm_every_task_claimed_exactly_once(factory_repo: Path, run: int) -> None:
    factory = Factory.discover(factory_repo)
    tasks = [decisions.add(factory, title=f"storm {i}", requester="human/h").id for i in range(50)]
    procs = [
        subprocess.Popen([sys.executable, "-c", CLAIMER, f"agent/a{n}",
                          json.dumps(tasks[n % 7:] + tasks[: n % 7])],
                         cwd=factory_repo, stdout=subprocess.PIPE, text=True)
        for n in range(8)
    ]
    won = [json.loads(p.communicate(timeout=600)[0]) for p in procs]
    assert all(p.returncode == 0 for p in procs)
    winners = [tid for w in won for tid in w]
    assert sorted(winners) == sorted(tasks)  # every task won exactly once
    listed = {t["id"]: t for t in gf_json(factory_repo, "task", "list")}
    for n, mine in enumerate(won):
        for tid in mine:
            assert listed[tid]["state"] == "working" and listed[tid]["assignee"] == f"agent/a{n}"
    assert len(gf_json(factory_repo, "log", "--kind", "task.claimed")) == 50


def test_racing_cli_claimers_exactly_one_wins(factory_repo: Path) -> None:
    tid = add(factory_repo, "contested")
    procs = [subprocess.Popen([sys.executable, "-m", "gitfactory", "task", "claim", tid,
                               "--as", f"coder/r{n}"], cwd=factory_repo,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for n in range(8)]
    codes = [p.wait(timeout=300) for p in procs]
    assert sorted(codes) == [0] + [1] * 7
    winner = f"coder/r{codes.index(0)}"
    assert gf_json(factory_repo, "task", "show", tid)["assignee"] == winner


def test_plain_git_can_add_a_task(factory_repo: Path) -> None:
    tid = "5" + "abcdefghjkmnpqrstvwxyz012"
    record = (
        "---\n"
        f"id: {tid}\n"
        "title: Added with plain git\n"
        "requester: human/shell\n"
        "created: 2026-11-22T09:00:00Z\n"
        "labels: [docs]\n"
        "---\n\nWritten by hand.\n"
    )
    commit_on_factory(factory_repo, {f".factory/tasks/5/a/{tid}.md": record.encode()})
    listed = gf_json(factory_repo, "task", "list")
    assert [(t["id"], t["title"], t["state"], t["labels"]) for t in listed] == [
        (tid, "Added with plain git", "submitted", ["docs"])]
    assert gf_json(factory_repo, "task", "show", tid[:6])["body"] == "Written by hand.\n"
    assert gf_json(factory_repo, "ready")[0]["id"] == tid
