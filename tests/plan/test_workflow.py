"""Workflows: next, step done, loops, attempt limits, factory.yaml errors (issue 3)."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import commit_on_factory, gf, gf_json, git


def step_done(repo: Path, task: str, agent: str, outcome: str = "success") -> dict[str, object]:
    out: dict[str, object] = gf_json(repo, "step", "done", task, "--as", agent,
                                     "--outcome", outcome)
    return out


def take(repo: Path, agent: str, role: str | None = None) -> dict[str, object]:
    args = ["--role", role] if role else []
    out: dict[str, object] = gf_json(repo, "next", "--as", agent, *args)
    return out


def override(repo: Path, task: str, reason: str, outcome: str = "success") -> dict[str, object]:
    out: dict[str, object] = gf_json(repo, "step", "done", task, "--as", "human/lead",
                                     "--override", "--reason", reason, "--outcome", outcome)
    return out


def test_a_full_walk_of_the_default_workflow(factory_repo: Path) -> None:
    tid = gf_json(factory_repo, "task", "add", "Fix the bug", "--body", "details")["id"]
    a = take(factory_repo, "coder/ada")
    assert a["task"]["id"] == tid and a["claimed_now"] is True  # type: ignore[index]
    assert a["step"]["name"] == "implement" and a["step"]["attempt"] == 1  # type: ignore[index]
    assert "commit" in a["step"]["instructions"] and a["body"] == "details\n"  # type: ignore[index]
    again = take(factory_repo, "coder/ada")  # asking again returns the held step
    assert again["claimed_now"] is False and again["task"]["id"] == tid  # type: ignore[index]
    gf(factory_repo, "next", "--as", "coder/bob", code=3)  # nothing else for coders
    gf(factory_repo, "next", "--as", "reviewer/rex", code=3)
    assert step_done(factory_repo, tid, "coder/ada")["step"]["next"] == "test"  # type: ignore[index]
    # The gate is the factory's: nobody takes it through the CLI; a person overrides it.
    gf(factory_repo, "next", "--as", "coder/ada", code=3)
    override(factory_repo, tid, "ran the suite by hand")
    review = take(factory_repo, "reviewer/rex")
    assert review["step"]["name"] == "review"  # type: ignore[index]
    assert review["last_step"]["step"] == "test"  # type: ignore[index]
    step_done(factory_repo, tid, "reviewer/rex")
    final = override(factory_repo, tid, "merged by hand")
    assert final["state"] == "completed"
    shown = gf_json(factory_repo, "task", "show", tid)
    steps = [(e["kind"], e["actor"], e["data"].get("step"), e["data"].get("outcome"))
             for e in shown["history"] if e["kind"] in ("task.step_done", "task.overridden")]
    assert steps == [("task.step_done", "coder/ada", "implement", "success"),
                     ("task.overridden", "human/lead", "test", "success"),
                     ("task.step_done", "reviewer/rex", "review", "success"),
                     ("task.overridden", "human/lead", "merge", "success")]
    gf(factory_repo, "step", "done", tid, "--as", "reviewer/rex", code=1)  # final
    done = gf(factory_repo, "step", "done", tid, "--as", "human/lead", "--override",
              "--reason", "again", code=1)
    assert "it is completed" in done.stderr


def test_a_failure_loops_back_and_the_attempt_limit_fails_the_task(factory_repo: Path) -> None:
    tid = gf_json(factory_repo, "task", "add", "Flaky")["id"]
    for attempt in (1, 2, 3):
        a = take(factory_repo, "coder/ada")
        assert a["step"]["name"] == "implement" and a["step"]["attempt"] == attempt  # type: ignore[index]
        step_done(factory_repo, tid, "coder/ada")
        out = override(factory_repo, tid, "the tests fail", outcome="failure")
    assert out["state"] == "failed"
    assert out["step"]["why"] == "implement: attempt limit of 3 reached"  # type: ignore[index]
    text = gf(factory_repo, "task", "show", tid).stdout
    assert "state      failed" in text
    gf(factory_repo, "next", "--as", "coder/ada", code=3)


def test_roles_only_get_their_steps_and_an_error_is_not_no_work(factory_repo: Path) -> None:
    tid = gf_json(factory_repo, "task", "add", "For coders")["id"]
    assert [t["id"] for t in gf_json(factory_repo, "ready", "--role", "coder")] == [tid]
    assert gf_json(factory_repo, "ready", "--role", "reviewer") == []
    gf(factory_repo, "next", "--as", "reviewer/rex", code=3)
    # An address says its role: asking for another role's step is refused, not no work.
    proc = gf(factory_repo, "next", "--as", "coder/ada", "--role", "reviewer", code=2)
    assert "plays the role 'coder', not 'reviewer'" in proc.stderr
    assert take(factory_repo, "coder/ada", role="coder")["step"]["name"] == "implement"  # type: ignore[index]
    proc = gf(factory_repo.parent, "next", "--as", "coder/ada", code=2)  # not a repository
    assert "not a git repository" in proc.stderr


def test_custom_workflow_and_show_formats(factory_repo: Path) -> None:
    config = git(factory_repo, "show", "factory:.factory/factory.yaml") + """\
  docs:
    start: write
    steps:
      write:
        role: writer
        on_success: proofread
        on_failure: write
        max_attempts: 2
      proofread:
        role: editor
        on_success: done
        on_failure: write
"""
    commit_on_factory(factory_repo, {".factory/factory.yaml": config.encode()})
    shown = gf_json(factory_repo, "workflow", "show", "docs", "--format", "json")
    assert shown["start"] == "write" and [s["name"] for s in shown["steps"]] == [
        "write", "proofread"]
    mermaid = gf(factory_repo, "workflow", "show", "docs", "--format", "mermaid").stdout
    assert mermaid.startswith("stateDiagram-v2") and "write --> proofread: success" in mermaid
    tid = gf_json(factory_repo, "task", "add", "Write docs", "--workflow", "docs")["id"]
    gf(factory_repo, "next", "--as", "coder/ada", code=3)
    assert take(factory_repo, "writer/will")["task"]["id"] == tid  # type: ignore[index]
    gf(factory_repo, "workflow", "show", "nope", code=2)


def test_workflow_errors_name_line_and_column(factory_repo: Path) -> None:
    base = 'protocol: "0.1"\nname: t\nworkflows:\n  default:\n    steps:\n'
    cases = [
        ("      a:\n        role: coder\n        on_success: nowhere\n", ":8:9", "names no step"),
        ("      a:\n        role: coder\n        gate: make\n", ":6:7", "exactly one of"),
        ("      a:\n        role: coder\n        max_attempts: 0\n", ":8:9", "max_attempts"),
        ("      a:\n        role: Coder\n", ":7:9", "role"),
    ]
    for steps, where, words in cases:
        commit_on_factory(factory_repo, {".factory/factory.yaml": (base + steps).encode()})
        proc = gf(factory_repo, "workflow", "show", code=2)
        assert where in proc.stderr and words in proc.stderr, (steps, proc.stderr)


def test_factory_without_workflows_uses_one_step(factory_repo: Path) -> None:
    commit_on_factory(factory_repo, {
        ".factory/factory.yaml": b'protocol: "0.1"\nname: plain\n'})
    tid = gf_json(factory_repo, "task", "add", "Anything")["id"]
    a = take(factory_repo, "anyone/x")
    assert a["step"]["name"] == "work" and a["task"]["id"] == tid  # type: ignore[index]
    assert step_done(factory_repo, tid, "anyone/x")["state"] == "completed"
    assert json.loads(gf(factory_repo, "task", "list", "--json").stdout)[0]["state"] == (
        "completed")
