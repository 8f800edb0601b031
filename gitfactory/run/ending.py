"""Ending a run: decide its step's outcome (the agent's own `step done`, a
``Factory-Step:`` trailer, the exit code, a timeout), record it, and keep its
transcript as an artifact of the task.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from gitfactory.errors import FactoryError
from gitfactory.run import gate_results, rescue, runs
from gitfactory.run.runs import ACTOR, Ended, Run
from gitfactory.store import clock

if TYPE_CHECKING:
    from gitfactory.knowledge.artifacts import Artifact
    from gitfactory.run.dispatch import Dispatcher

TRAILER = "Factory-Step"


def end(
    d: Dispatcher,
    run: Run,
    code: int | None,
    *,
    timed_out: bool = False,
    canceled: bool = False,
    lost: bool = False,
) -> Ended:
    from gitfactory.knowledge import artifacts
    from gitfactory.plan import decisions

    if code is None:  # not our child (adopted), or gone while no daemon watched
        code = runs.exit_code(d.book.exit_file(run.id))
        lost = lost and code is None
    d.factory.index.refresh()
    st = decisions.load(d.factory, run.task, history=True)
    still_ours = (
        st.state == "working" and st.assignee == run.agent and st.step == run.step
        and st.attempts.get(run.step) == run.attempt
    )  # fmt: skip
    why, then = "", ""
    if still_ours and lost and run.pid is None:
        # Written down, then the daemon died before the process started: nothing
        # ran, so the step is not failed; the task goes back to the queue.
        outcome, how = "", "never_started"
        why = "the daemon stopped before the agent started"
        d._holder_move(run.task, run.agent, "task.released", why)
    elif not still_ours:
        outcome, how = "", "step_done"
    elif canceled or st.cancel_requested is not None:
        # Asked while it ran: stopped now, or it ended meanwhile (while no daemon
        # watched, say). Either way what it did is not carried on to the next step.
        outcome, how = "", "canceled"
        why = ("canceled while running: the agent was stopped" if canceled
               else "canceled as asked while it ran; it ended meanwhile")  # fmt: skip
        d._holder_move(run.task, run.agent, "task.canceled", why)
    elif timed_out:
        outcome, how = "timeout", "timeout"
    elif (said := _trailer(run, d.factory.paths.common_dir)) is not None:
        outcome, how = said, "trailer"
    elif lost and code is None:
        outcome, how = "failure", "lost"
    else:
        outcome, how = ("success" if code == 0 else "failure"), "exit_code"
    saved = None if how == "never_started" or run.kind != "agent" else _rescue(d, run)
    transcript = d.book.transcript(run.id)
    output = keep_transcript(d, run, transcript)  # stored below, with a gate's results
    kept = output[0] if output else None
    extra = {"rescued": saved.commit} if saved and saved.commit else {}
    if still_ours and outcome:
        why = {"timeout": f"timed out after {(run.deadline_ms - run.started_ms) // 1000}s",
               "lost": "the agent's process was gone when the daemon came back",
               "trailer": f"{TRAILER} trailer on {run.branch}",
               "exit_code": f"exit code {code}" if code is not None
               else "it ended without an exit status (killed by a signal?)"}[how]  # fmt: skip
        if run.gate is not None:
            verdict = gate_results.gate_result(
                d, run, code, transcript, output, timed_out=timed_out
            )
            output = None
            if not timed_out:
                outcome, how = ("success" if verdict.passed else "failure"), "gate"
                why = f"gate {run.gate['name']}: {verdict.summary}"
        elif outcome == "success":
            outcome, why, how = _honest(d, run, saved, why, how)
        if saved and saved.commit:
            why += (
                f"; the work it left uncommitted is commit {saved.commit[:10]} ({rescue.TRAILER})"
            )
        after = d._end_step(st, run.agent, outcome, why, extra)
        if after is not None:  # where the task went: a step's queue, completed, failed
            then = after.step or "" if after.state == "submitted" else after.state
    if output is not None:
        artifacts.store(d.factory, [output])
    size = transcript.stat().st_size if transcript.exists() else 0
    result = {"run": run.id, "agent": run.agent, "step": run.step, "outcome": outcome or None,
              "how": how, "exit_code": code, "transcript": str(transcript), "bytes": size,
              "artifact": kept.id if kept else None,
              "duration_ms": clock.now_ms() - run.started_ms, **extra}  # fmt: skip
    said = f"{outcome} ({how})" if outcome else how.replace("_", " ")
    text = f"{run.agent} on {run.step}: {said}"
    # The record first, then the run book: a crash between the two ends the run
    # again at the next start, which finds the record and does not write it twice.
    if not d._recorded("dispatch.finished", run):
        d.note(d._event("dispatch.finished", run.task, text, result))
    d.book.finish(run, result)
    d.active.pop(run.id, None)
    d.children.pop(run.id, None)
    failed = outcome in ("failure", "timeout")
    return Ended(run, outcome, how, code, why, runs.last_lines(transcript) if failed else (), then)


def _rescue(d: Dispatcher, run: Run) -> rescue.Rescue | None:
    """Commit what the agent left uncommitted (unless its agent says fail)."""
    config = d._config()
    spec = next((a for a in config.agents.values() if a.address == run.agent), None)
    commit = spec is None or spec.on_uncommitted == "commit"
    return rescue.rescue(run, config.dispatch.setup_copy, commit)


def _honest(
    d: Dispatcher, run: Run, saved: rescue.Rescue | None, why: str, how: str
) -> tuple[str, str, str]:
    """The outcome of an agent step that says success, as far as the branch bears it
    out: (outcome, why, how it ended)."""
    from gitfactory.plan import decisions
    from gitfactory.store.trees import advances

    if saved is not None and saved.commit is None:
        why = f"it left uncommitted changes in its worktree ({saved.why_not}): "
        return "failure", why + rescue.named(saved.paths), "uncommitted"
    task = decisions.load(d.factory, run.task).task
    try:
        step = d._config().workflow(task.workflow).step(run.step)
    except (KeyError, FactoryError):
        return "success", why, how
    if not step.requires_change:
        return "success", why, how
    repo = d.factory.store.repo
    tip = d.factory.store.branch_tip(run.branch)
    if not advances(repo, run.head, tip):
        why = f"no change was made: no commit on {run.branch} since the step started changes "
        return "failure", why + "a file outside .factory/", "no_change"
    return "success", why, how


def keep_transcript(d: Dispatcher, run: Run, transcript: Path) -> tuple[Artifact, bytes] | None:
    """The run's output as an artifact of the task (its end, if it is huge)."""
    from gitfactory.knowledge import artifacts

    try:
        data = transcript.read_bytes()
    except OSError:
        return None
    if len(data) > artifacts.MAX_BYTES:
        cut = len(data) - artifacts.MAX_BYTES + 200
        data = f"[first {cut:,} bytes left out]\n".encode() + data[cut:]
    artifact = artifacts.prepare(
        run.task, data, name=f"transcript-{run.step}-{run.attempt}.log", producer=ACTOR,
        step=run.step,
    )  # fmt: skip
    return artifact, data


def _trailer(run: Run, repo_dir: Path) -> str | None:
    """The outcome a ``Factory-Step:`` trailer on the run's branch states, if any: the
    latest commit since the run started that carries one decides. (Read from the
    branch in the repository, not in the worktree: an agent may have deleted that.)"""
    from gitfactory.store.git import run_git

    tip = f"refs/heads/{run.branch}"
    span = f"{run.head}..{tip}" if run.head else tip
    proc = run_git(
        ["log", "--format=%(trailers:key=Factory-Step,valueonly,separator=%x2C)", span, "--"],
        repo_dir, check=False,
    )  # fmt: skip
    for line in proc.stdout.decode("utf-8", "replace").splitlines():
        value = line.strip().split(",")[-1].strip().lower()
        if value in ("done", "success", "passed"):
            return "success"
        if value in ("failed", "failure"):
            return "failure"
    return None
