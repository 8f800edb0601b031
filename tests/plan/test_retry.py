"""The first mistake is not final (issue 12): the shipped workflow tries a failed
implement step again, and a person gives a failed, canceled or completed task another
go with `task retry` / `task reopen`, as an event, with fresh attempts."""

from __future__ import annotations

from pathlib import Path

from conftest import gf, gf_json, git, project_with_agent


def failed_task(repo: Path) -> str:
    """A task a person failed by hand at its first step."""
    tid: str = gf_json(repo, "task", "add", "Fix it")["id"]
    gf(repo, "step", "done", tid, "--override", "--outcome", "failure", "--reason", "broken",
       "--as", "human/lead")
    # The override went to `implement` again (the shipped workflow retries); fail it for good.
    shown = gf_json(repo, "task", "show", tid)
    while shown["state"] != "failed":
        gf(repo, "next", "--as", "coder/ada")
        gf(repo, "step", "done", tid, "--outcome", "failure", "--as", "coder/ada")
        shown = gf_json(repo, "task", "show", tid)
    return tid


def test_the_shipped_workflow_retries_implement_before_failing(factory_repo: Path) -> None:
    tid = gf_json(factory_repo, "task", "add", "Fix it")["id"]
    seen = []
    for _ in range(3):
        gf(factory_repo, "next", "--as", "coder/ada")
        gf(factory_repo, "step", "done", tid, "--outcome", "failure", "--as", "coder/ada")
        shown = gf_json(factory_repo, "task", "show", tid)
        seen.append((shown["state"], shown["step"]))
    # Attempts 1 and 2 go back to the queue at implement; the third is the last.
    assert seen == [("submitted", "implement")] * 2 + [("failed", "implement")]


def test_a_failed_task_says_how_to_retry_it(factory_repo: Path) -> None:
    tid = failed_task(factory_repo)
    for argv in (["task", "claim", tid, "--as", "coder/ada"], ["task", "release", tid]):
        proc = gf(factory_repo, *argv, code=1)
        assert "it is failed; legal now: retry" in proc.stderr
        assert f"gitfactory task retry {tid[:8]}" in proc.stderr


def test_retry_puts_a_failed_task_back_with_fresh_attempts(factory_repo: Path) -> None:
    tid = failed_task(factory_repo)
    out = gf_json(factory_repo, "task", "retry", tid[:6], "--reason", "agent fixed",
                  "--as", "human/lead")  # fmt: skip
    assert out["state"] == "submitted" and out["step"] == "implement"
    shown = gf_json(factory_repo, "task", "show", tid)
    retried = [e for e in shown["history"] if e["kind"] == "task.retried"]
    assert len(retried) == 1 and retried[0]["actor"] == "human/lead"
    assert retried[0]["data"]["from_state"] == "failed" and retried[0]["text"] == "agent fixed"
    # The step has its whole budget again: three more failures before it fails.
    assert shown["attempts"] == {}
    assert gf_json(factory_repo, "next", "--as", "coder/ada")["step"]["attempt"] == 1
    gf(factory_repo, "step", "done", tid, "--outcome", "failure", "--as", "coder/ada")
    assert gf_json(factory_repo, "task", "show", tid)["state"] == "submitted"


def test_retry_from_a_named_step(factory_repo: Path) -> None:
    tid = failed_task(factory_repo)
    gf(factory_repo, "task", "retry", tid, "--from", "review", "--as", "human/lead")
    shown = gf_json(factory_repo, "task", "show", tid)
    assert (shown["state"], shown["step"]) == ("submitted", "review")
    assert gf_json(factory_repo, "next", "--as", "reviewer/rex")["task"]["id"] == tid


def test_retry_refuses_what_it_cannot_do(factory_repo: Path) -> None:
    tid = failed_task(factory_repo)
    before = gf_json(factory_repo, "task", "show", tid)
    proc = gf(factory_repo, "task", "retry", tid, "--from", "deploy", "--as", "human/lead", code=2)
    assert "has no step 'deploy'" in proc.stderr and "implement, test, review, merge" in proc.stderr
    # Only a person takes a task out of its final state: an agent cannot undo its gate.
    proc = gf(factory_repo, "task", "retry", tid, "--from", "merge", "--as", "coder/ada", code=2)
    assert "only a person" in proc.stderr
    assert gf_json(factory_repo, "task", "show", tid)["history"] == before["history"]
    # A task that is not finished has nothing to retry.
    other = gf_json(factory_repo, "task", "add", "Other")["id"]
    proc = gf(factory_repo, "task", "retry", other, "--as", "human/lead", code=1)
    assert "cannot retry task" in proc.stderr and "it is submitted" in proc.stderr


def test_a_canceled_task_is_retried_and_its_old_cancel_request_is_spent(
    factory_repo: Path,
) -> None:
    tid = gf_json(factory_repo, "task", "add", "Fix it")["id"]
    gf(factory_repo, "task", "claim", tid, "--as", "coder/ada")
    gf(factory_repo, "task", "cancel", tid, "--reason", "wrong idea", "--as", "human/lead")
    assert gf_json(factory_repo, "task", "show", tid)["cancel_requested"] == "wrong idea"
    gf(factory_repo, "task", "cancel", tid, "--as", "coder/ada")  # the holder honours it
    assert gf_json(factory_repo, "task", "show", tid)["state"] == "canceled"
    gf(factory_repo, "task", "retry", tid, "--as", "human/lead")
    shown = gf_json(factory_repo, "task", "show", tid)
    assert shown["state"] == "submitted" and shown["cancel_requested"] is None


def test_reopen_a_completed_task_at_its_first_step(factory_repo: Path) -> None:
    tid = gf_json(factory_repo, "task", "add", "Fix it")["id"]
    gf(factory_repo, "step", "done", tid, "--override", "--outcome", "success", "--reason", "x",
       "--as", "human/lead")
    for step in ("test", "review", "merge"):
        assert gf_json(factory_repo, "task", "show", tid)["step"] == step
        gf(factory_repo, "step", "done", tid, "--override", "--reason", "by hand",
           "--as", "human/lead")
    assert gf_json(factory_repo, "task", "show", tid)["state"] == "completed"
    # `retry` is for what failed; a completed task is reopened.
    proc = gf(factory_repo, "task", "claim", tid, "--as", "coder/ada", code=1)
    assert f"gitfactory task reopen {tid[:8]}" in proc.stderr
    out = gf_json(factory_repo, "task", "reopen", tid, "--reason", "it broke export",
                  "--as", "human/lead")  # fmt: skip
    assert (out["state"], out["step"]) == ("submitted", "implement")
    kinds = [e["kind"] for e in gf_json(factory_repo, "task", "show", tid)["history"]]
    assert kinds[-1] == "task.reopened"


def test_a_retry_sees_the_fix_committed_on_the_base_since(tmp_path: Path) -> None:
    # The agent is a script of the project; its first version is broken. Its fix is
    # committed on main; the retried task's branch (no commits of its own) follows.
    r = project_with_agent(tmp_path, "#!/bin/sh\nexit 1\n", "a broken agent")
    config = gf(r, "config", "show").stdout
    config = config.replace("command: python -m pytest -q", 'command: "true"')
    config = config.replace("      review:\n        role: reviewer", "      review:\n        gate: tests")
    gf(r, "config", "edit", "--file", "-", input=config)
    tid = gf_json(r, "task", "add", "Write out.txt")["id"]
    gf(r, "daemon", "--burst")
    assert gf_json(r, "task", "show", tid)["state"] == "failed"

    (r / "agent.sh").write_text("#!/bin/sh\necho done > out.txt && git add out.txt && "
                                "git commit -qm out\n")
    git(r, "commit", "-qam", "fix the agent")
    gf(r, "task", "retry", tid, "--reason", "agent fixed")
    gf(r, "daemon", "--burst")
    assert gf_json(r, "task", "show", tid)["state"] == "completed"
    assert git(r, "show", "main:out.txt") == "done\n"
    # Each time it finished, a session summary: the history tells the failure, then this.
    summaries = [e["data"]["state"] for e in gf_json(r, "log", "--kind", "session.summary")
                 if e["task"] == tid]
    assert summaries == ["failed", "completed"]
    history = gf(r, "docs", "show", "history").stdout
    assert history.count("Write out.txt") == 2 and "completed" in history


def test_status_lists_failed_tasks_and_how_to_retry_them(factory_repo: Path) -> None:
    tid = failed_task(factory_repo)
    short = gf(factory_repo, "task", "list").stdout.split()[0]
    assert tid.startswith(short)
    text = gf(factory_repo, "status").stdout
    assert f"  failed  {short} at implement: Fix it" in text
    assert f"`gitfactory task retry {short}`" in text  # the one failed task, by name
    assert [t["id"] for t in gf_json(factory_repo, "status")["tasks"]["failed"]] == [tid]
    gf(factory_repo, "task", "retry", tid, "--as", "human/lead")
    assert "failed  " not in gf(factory_repo, "status").stdout
