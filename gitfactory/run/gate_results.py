"""Ending a gate run: judge it (:mod:`gitfactory.qa.gates`) and keep the evidence:
its transcript, its report, each scenario's output and the files it keeps.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from gitfactory.config.gates import JUDGE, SCENARIO, Gate
from gitfactory.run import runs
from gitfactory.run.runs import ACTOR, Run

if TYPE_CHECKING:
    from gitfactory.knowledge.artifacts import Artifact
    from gitfactory.qa.gates import Result
    from gitfactory.run.dispatch import Dispatcher


def gate_result(
    d: Dispatcher,
    run: Run,
    code: int | None,
    transcript: Path,
    output: tuple[Artifact, bytes] | None,
    *,
    timed_out: bool,
) -> Result:
    """Judge a gate run and keep the evidence: its transcript, its report, each
    scenario's output and the files it keeps, as artifacts (one commit); then one
    ``gate.scenario`` record per scenario and the ``gate.result`` (one commit)."""

    from gitfactory.knowledge import artifacts
    from gitfactory.qa import gates, playbook

    assert run.gate is not None
    # Judged already, and the daemon died before the step ended: the same verdict,
    # not a second result and a second set of artifacts.
    done = d._recorded("gate.result", run)
    if done is not None:
        found = done.data
        return gates.Result(bool(found.get("pass")), str(found.get("summary", "")),
                            list(found.get("reasons") or []), found.get("score"))  # fmt: skip
    gate = Gate(**{**run.gate, "scenarios": tuple(run.gate["scenarios"]),
                         "keep": tuple(run.gate["keep"])})  # fmt: skip
    directory = d.book.directory(run.id)
    plays: list[dict[str, str]] = []
    if gate.type == SCENARIO and (directory / playbook.NAME).exists():
        plays = playbook.read(str(directory))["plays"]  # type: ignore[assignment]
    said, said_size = runs.tail(directory / "verdict.out", gates.MAX_VERDICT)
    if gate.type == JUDGE:
        verdict = gates.judge_judge(gate, code, said)
    elif gate.type == SCENARIO:
        verdict = gates.judge_scenarios(plays)
    else:
        verdict = gates.judge_command(code)
    if timed_out:
        why = f"timed out after {(run.deadline_ms - run.started_ms) // 1000}s"
        verdict.passed, verdict.summary = False, f"{why}; {verdict.summary}"
        verdict.reasons.insert(0, why)
    evidence = [output] if output else []
    kept = keep_files(d, run, gate, evidence)
    events = []
    for entry, scenario in zip(plays, verdict.scenarios, strict=True):
        log = Path(entry["log"])
        data = log.read_bytes() if log.exists() else b""
        played = artifacts.prepare(
            run.task, data, name=f"scenario-{entry['name'][:-3]}-{run.attempt}.log",
            producer=ACTOR, step=run.step,
        )  # fmt: skip
        evidence.append((played, data))
        mark = "passed" if scenario["pass"] else "failed"
        events.append(d._event(
            "gate.scenario", run.task, f"{gate.name}: scenario {entry['name']} {mark}",
            {**scenario, "gate": gate.name, "step": run.step, "attempt": run.attempt,
             "run": run.id, "agent": run.agent, "transcript": played.id},
        ))  # fmt: skip
    if gate.type == JUDGE and said.strip():
        # A judge's standard output is its verdict and the words around it: kept
        # whole as evidence, and its end is what the report shows.
        words = said.encode("utf-8", "replace")
        evidence.append((artifacts.prepare(
            run.task, words, name=f"judge-output-{run.step}-{run.attempt}.txt",
            producer=ACTOR, step=run.step,
        ), words))  # fmt: skip
        shown, size = said, said_size
    else:
        shown, size = runs.tail(transcript, 4 * gates.REPORT_TAIL)
    text = gates.report(gate, verdict, shown, kept, size).encode("utf-8", "replace")
    report = artifacts.prepare(run.task, text, name=f"report-{run.step}-{run.attempt}.md",
                               producer=ACTOR, step=run.step)  # fmt: skip
    artifacts.store(d.factory, [*evidence, (report, text)])
    events.append(d._event(
        "gate.result", run.task,
        f"{gate.name}: {'passed' if verdict.passed else 'failed'}: {verdict.summary}",
        {"gate": gate.name, "type": gate.type, "step": run.step, "attempt": run.attempt,
         "run": run.id, "pass": verdict.passed, "summary": verdict.summary,
         "reasons": verdict.reasons, "score": verdict.score,
         "threshold": gate.threshold if gate.type == JUDGE else None,
         "exit_code": code, "report": report.id,
         "transcript": output[0].id if output else None, "kept": kept},
    ))  # fmt: skip
    d.note(events)
    return verdict


def keep_files(
    d: Dispatcher, run: Run, gate: Gate, evidence: list[tuple[Artifact, bytes]]
) -> dict[str, str]:
    """The files the gate says to keep (regular files inside the worktree), added
    to ``evidence``; their artifact ids by the name the gate gave."""
    import stat

    from gitfactory.knowledge import artifacts

    kept = {}
    top = Path(run.worktree).resolve()
    for name in gate.keep:
        path = Path(run.worktree) / name
        try:
            if not path.parent.resolve().is_relative_to(top):
                continue
            # No symlink followed, no FIFO waited on: what is checked is what is read.
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
            with os.fdopen(fd, "rb") as fh:
                info = os.fstat(fh.fileno())
                if not stat.S_ISREG(info.st_mode) or info.st_size > artifacts.MAX_BYTES:
                    continue
                data = fh.read(artifacts.MAX_BYTES + 1)
        except OSError:
            continue
        if len(data) > artifacts.MAX_BYTES:
            continue
        artifact = artifacts.prepare(run.task, data, name=path.name, producer=ACTOR,
                                     step=run.step)  # fmt: skip
        evidence.append((artifact, data))
        kept[name] = artifact.id
    return kept
