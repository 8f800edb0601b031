"""Steps are taken and ended only by whom the workflow says (issue 11): an agent
cannot pass a gate by saying so, nothing typed can act as the factory, a refused
attempt is refused with exit 1 and logged, and a person may override with a reason."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import gf, gf_json, git

from gitfactory.errors import FactoryError
from gitfactory.plan import steps
from gitfactory.store.factory import Factory
from gitfactory.store.log import Draft, append, stamp


def at_the_gate(repo: Path) -> str:
    """A task of the shipped workflow whose implement step is done: it waits at `test`."""
    tid: str = gf_json(repo, "task", "add", "Fix it")["id"]
    gf(repo, "next", "--as", "coder/ada")
    gf(repo, "step", "done", tid, "--as", "coder/ada")
    assert gf_json(repo, "task", "show", tid)["step"] == "test"
    return tid


def tip(repo: Path) -> str:
    return git(repo, "rev-parse", "factory")


def test_a_coder_cannot_claim_or_end_a_gate_step(factory_repo: Path) -> None:
    tid = at_the_gate(factory_repo)
    proc = gf(factory_repo, "task", "claim", tid, "--as", "coder/ada", code=1)
    assert "cannot claim step 'test'" in proc.stderr and "gate tests" in proc.stderr
    assert "--override" in proc.stderr  # says what a person can do instead
    shown = gf_json(factory_repo, "task", "show", tid)
    assert shown["state"] == "submitted" and shown["step"] == "test"
    refused = [e for e in shown["history"] if e["kind"] == "task.refused"]
    assert len(refused) == 1 and refused[0]["actor"] == "coder/ada"
    assert refused[0]["data"]["verb"] == "claim" and refused[0]["data"]["step"] == "test"
    # Not holding it, it cannot end it either; and `next` never hands a gate out.
    gf(factory_repo, "step", "done", tid, "--as", "coder/ada", code=1)
    gf(factory_repo, "next", "--as", "coder/ada", code=3)
    assert gf_json(factory_repo, "log", "--kind", "task.refused", "--json")[0]["task"] == tid


def test_an_agent_step_belongs_to_its_role(factory_repo: Path) -> None:
    tid = gf_json(factory_repo, "task", "add", "Fix it")["id"]
    proc = gf(factory_repo, "task", "claim", tid, "--as", "reviewer/rex", code=1)
    assert "is for role 'coder', not 'reviewer'" in proc.stderr
    gf(factory_repo, "task", "claim", tid, "--as", "coder/ada")  # the coder may
    assert gf_json(factory_repo, "task", "show", tid)["assignee"] == "coder/ada"


@pytest.mark.parametrize("argv", [
    ["next", "--as", "factory/gate"],
    ["task", "claim", "TID", "--as", "factory/gate"],
    ["step", "done", "TID", "--as", "factory/gate"],
    ["log", "append", "note", "hi", "--as", "factory/daemon"],
    ["mail", "send", "human/lead", "--as", "factory/mail", "-s", "hi", "--body", "x"],
    ["next", "--as", "coder/ada", "--role", "factory"],
])  # fmt: skip
def test_nothing_typed_acts_as_the_factory(factory_repo: Path, argv: list[str]) -> None:
    tid = at_the_gate(factory_repo)
    before = tip(factory_repo)
    proc = gf(factory_repo, *[tid if a == "TID" else a for a in argv], code=2)
    assert "factory" in proc.stderr and "the daemon" in proc.stderr
    assert tip(factory_repo) == before  # nothing written


def test_the_environment_cannot_make_you_the_factory(factory_repo: Path) -> None:
    tid = at_the_gate(factory_repo)
    before = tip(factory_repo)
    proc = gf(factory_repo, "task", "claim", tid, env={"GITFACTORY_AGENT": "factory/gate"}, code=2)
    assert "$GITFACTORY_AGENT" in proc.stderr
    assert tip(factory_repo) == before


@pytest.mark.parametrize("kind", ["task.step_done", "gate.result", "merge.result", "task.claimed"])
def test_log_append_cannot_write_the_factorys_own_kinds(factory_repo: Path, kind: str) -> None:
    tid = at_the_gate(factory_repo)
    before = tip(factory_repo)
    proc = gf(factory_repo, "log", "append", kind, "--task", tid, "--as", "coder/ada",
              "--data", "step=test", "--data", "next=review", "--data", "seq:=3", code=2)
    assert "gitfactory's own" in proc.stderr
    line = '{"kind": "note"}\n{"kind": "%s", "task": "%s"}\n' % (kind, tid)
    gf(factory_repo, "log", "append", "--stdin", input=line, code=2)
    forged = '{"kind": "note", "actor": "factory/gate"}\n'
    assert "actor" in gf(factory_repo, "log", "append", "--stdin", input=forged, code=2).stderr
    assert tip(factory_repo) == before
    assert gf_json(factory_repo, "task", "show", tid)["step"] == "test"


def test_a_gate_ends_with_success_only_on_its_passing_result(factory_repo: Path) -> None:
    """The library path the daemon takes: the factory's own actor holds the gate, and
    still cannot pass it without a gate.result that passed, for this attempt."""
    tid = at_the_gate(factory_repo)
    factory = Factory.discover(factory_repo)
    steps.claim(factory, tid, "factory/gate", 60_000)
    with pytest.raises(FactoryError, match="no passing gate.result for attempt 1"):
        steps.step_done(factory, tid, "factory/gate", "success")

    def result(attempt: int, passed: bool) -> None:
        append(factory, [stamp(Draft(
            kind="gate.result", actor="factory/daemon", task=tid,
            data={"gate": "tests", "step": "test", "attempt": attempt, "pass": passed},
        ))])  # fmt: skip

    result(1, False)  # a failed run
    result(2, True)  # another attempt's
    with pytest.raises(FactoryError, match="no passing gate.result"):
        steps.step_done(factory, tid, "factory/gate", "success")
    result(1, True)
    st = steps.step_done(factory, tid, "factory/gate", "success")
    assert st.step == "review" and st.state == "submitted"


def test_a_failing_gate_may_end_without_evidence(factory_repo: Path) -> None:
    tid = at_the_gate(factory_repo)
    factory = Factory.discover(factory_repo)
    steps.claim(factory, tid, "factory/gate", 60_000)
    st = steps.step_done(factory, tid, "factory/gate", "failure", "could not start")
    assert st.step == "implement"


def test_a_person_overrides_a_held_step_and_the_history_says_so(factory_repo: Path) -> None:
    tid = gf_json(factory_repo, "task", "add", "Fix it")["id"]
    gf(factory_repo, "next", "--as", "coder/ada")
    # Only a person, and only with a reason.
    proc = gf(factory_repo, "step", "done", tid, "--as", "coder/bob", "--override",
              "--reason", "x", code=2)
    assert "only a person" in proc.stderr
    assert "--reason" in gf(factory_repo, "step", "done", tid, "--as", "human/lead",
                            "--override", code=2).stderr
    gf(factory_repo, "step", "done", tid, "--as", "human/lead", "--reason", "x", code=2)
    out = gf(factory_repo, "step", "done", tid, "--as", "human/lead", "--override",
             "--reason", "done by hand").stdout
    assert "held by coder/ada" in out and "overridden by human/lead" in out
    shown = gf_json(factory_repo, "task", "show", tid)
    assert shown["step"] == "test" and shown["assignee"] is None
    over = [e for e in shown["history"] if e["kind"] == "task.overridden"]
    assert len(over) == 1 and over[0]["actor"] == "human/lead"
    assert over[0]["text"] == "done by hand" and over[0]["data"]["holder"] == "coder/ada"
    # The overridden holder's late report is refused: it holds nothing any more.
    gf(factory_repo, "step", "done", tid, "--as", "coder/ada", code=1)
    # What a task can do next never offers the override to agents.
    proc = gf(factory_repo, "task", "heartbeat", tid, "--as", "coder/ada", code=1)
    assert "override" not in proc.stderr


def test_an_agent_acts_only_as_itself(factory_repo: Path) -> None:
    """The daemon starts each agent with $GITFACTORY_AGENT: typing --as a person's
    address (to override its own gate, or to send mail as the lead) is refused."""
    r = factory_repo
    tid = at_the_gate(r)
    before = tip(r)
    me = {"GITFACTORY_AGENT": "coder/ada"}
    proc = gf(r, "step", "done", tid, "--as", "human/lead", "--override", "--reason", "x",
              env=me, code=2)
    assert "acts only as itself" in proc.stderr
    gf(r, "mail", "send", "human/lead", "-s", "x", "--body", "y", "--as", "human/boss",
       env=me, code=2)
    assert tip(r) == before
    gf(r, "mail", "send", "human/lead", "-s", "x", "--body", "y", "--as", "coder/ada", env=me)
