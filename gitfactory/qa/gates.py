"""Quality gates: the workflow steps whose result the factory judges, not an agent.

A gate is declared under ``gates:`` in factory.yaml and named by a step
(``gate: tests``); a step whose ``gate:`` names no declared gate runs that text as a
command gate (``gate: python -m pytest -q``). Three types:

``command``
    runs in the task's worktree; exit code 0 passes. Its output is the report.
``judge``
    a command (an LLM CLI or any program) is given the task, the diff and the
    criteria (as JSON on its standard input, and in the file
    ``$GITFACTORY_JUDGE_INPUT``) and must print a verdict
    ``{"pass": bool, "score": 0..1, "reasons": [str]}`` on its standard output. The
    gate passes when ``pass`` is true and ``score`` reaches the gate's threshold. A
    verdict that cannot be read is a failed gate that says why: never a pass.
``scenario``
    each markdown file under ``.factory/scenarios/`` (on the factory branch) is one
    small user journey. An agent of the gate's role plays each one in the task's
    worktree, alone, and writes its verdict (``{"pass": bool, "reasons": [str]}``)
    to ``$GITFACTORY_VERDICT_FILE``. Every scenario is its own result; the gate
    passes when all of them do. A scenario without a verdict failed.

Every gate run ends with one ``gate.result`` record (and one ``gate.scenario``
record per scenario) and a markdown report kept as an artifact of the task; a
failed gate's report goes into the prompt of the step the task goes back to.

The scenarios of one gate run are played one after the other by
``gitfactory/qa/playbook.py``, the process the daemon starts for a scenario gate.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gitfactory.config.gates import Gate

MAX_DIFF = 512 * 1024  # bytes of diff a judge is given
REPORT_TAIL = 6000  # characters of output a report keeps
MAX_VERDICT = 1024 * 1024  # bytes of a judge's output or a verdict file that are read


# -- verdicts ------------------------------------------------------------------------


@dataclass
class Verdict:
    passed: bool
    reasons: list[str]
    score: float | None = None
    error: str | None = None  # why the verdict could not be read (then passed is False)


_FENCE = re.compile(r"```(?:json)?\s*\n(.*?)```", re.DOTALL)


def read_verdict(text: str, *, need_score: bool, threshold: float = 0.0) -> Verdict:
    """The verdict in a judge's output (or a scenario's verdict file).

    The output may be the JSON object alone, or end with it on its last line, or
    hold it in a fenced ```json block (LLM CLIs like to add words around it). They
    are tried in that order, and the last fence first: what the judge says last is
    its verdict, while a fence earlier on may quote the diff, which the agent wrote.
    Anything that is not a well-formed verdict fails, with the reason: duplicate
    keys, NaN, nesting too deep to read.
    """
    text = text.strip()
    if not text:
        return Verdict(False, [], error="no verdict: the output was empty")
    candidates = [text, text.splitlines()[-1], *reversed(_FENCE.findall(text))]
    found: Any = None
    problem = ""
    for candidate in candidates:
        try:
            found = json.loads(candidate, parse_constant=_refuse, object_pairs_hook=_unique)
        except (ValueError, RecursionError) as exc:
            if isinstance(exc, RecursionError):
                problem = problem or " (nested too deep)"
            elif ("not a number" in str(exc) or "duplicate key" in str(exc)) and not problem:
                problem = f" ({exc})"
            found = None
            continue
        if isinstance(found, dict):
            break
    if not isinstance(found, dict):
        return Verdict(
            False, [], error=f"no JSON verdict object in the output{problem}: {_clip(text)!r}"
        )
    malformed = _verdict_problem(found, need_score)
    if malformed:
        return Verdict(False, [], error=f"malformed verdict: {malformed}")
    reasons = found.get("reasons", [])
    reasons = [_clean(r) for r in ([reasons] if isinstance(reasons, str) else reasons)]
    score = float(found["score"]) if "score" in found else None
    passed = found["pass"] is True and (score is None or score >= threshold)
    if found["pass"] is True and not passed:
        reasons = [f"score {score:g} is below the threshold {threshold:g}", *reasons]
    return Verdict(passed, reasons, score)


def _refuse(name: str) -> Any:
    raise ValueError(f"{name} is not a number")


def _unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object whose keys are all different: with two "pass" keys, which one
    the judge meant is not for a parser to guess."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate key {key!r}")
        out[key] = value
    return out


def _clean(text: str) -> str:
    """Text that encodes as UTF-8 (a lone surrogate from a JSON escape does not)."""
    return text.encode("utf-8", "replace").decode("utf-8")


def _verdict_problem(found: dict[str, Any], need_score: bool) -> str | None:
    if not isinstance(found.get("pass"), bool):
        return "'pass' must be true or false"
    score = found.get("score")
    if score is None and need_score:
        return "'score' is missing"
    if score is not None and (
        isinstance(score, bool) or not isinstance(score, int | float) or not 0 <= score <= 1
        or math.isnan(score)
    ):  # fmt: skip
        return f"'score' must be a number from 0 to 1, not {score!r}"
    reasons = found.get("reasons", [])
    if not isinstance(reasons, str) and not (
        isinstance(reasons, list) and all(isinstance(r, str) for r in reasons)
    ):
        return "'reasons' must be a list of strings"
    return None


def _clip(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


# -- what a gate run is given ----------------------------------------------------------


def judge_input(
    *, task: dict[str, Any], gate: Gate, worktree: Path, base: str, branch: str
) -> dict[str, Any]:
    """The judge's input: the task, the criteria and the diff of the branch from its base."""
    from gitfactory.store.git import run_git

    diff = run_git(
        ["diff", "--no-color", f"{base}...HEAD", "--", ".", ":(exclude).factory"],
        worktree, check=False,
    ).stdout  # fmt: skip
    cut = len(diff) > MAX_DIFF
    return {
        "task": task, "criteria": gate.criteria, "threshold": gate.threshold,
        "base": base, "branch": branch,
        "diff": diff[:MAX_DIFF].decode("utf-8", "replace"), "diff_truncated": cut,
        "answer_with": {"pass": "true or false", "score": "a number from 0 to 1",
                        "reasons": ["why, one sentence each"]},
    }  # fmt: skip


@dataclass
class Scenario:
    name: str  # the file name under .factory/scenarios/, e.g. "login.md"
    text: str


def scenarios(snapshot: Any, gate: Gate) -> list[Scenario]:
    """The scenarios of ``gate``: the scenario files (:mod:`gitfactory.qa.scenarios`) that
    its patterns name, by file name."""
    import fnmatch

    from gitfactory.qa.scenarios import FOLDER

    found = []
    for stem, data in FOLDER.files(snapshot).items():
        name = f"{stem}.md"
        if any(fnmatch.fnmatchcase(name, p) or fnmatch.fnmatchcase(stem, p)
               for p in gate.scenarios):  # fmt: skip
            found.append(Scenario(name, data.decode("utf-8", "replace")))
    return sorted(found, key=lambda s: s.name)


# -- judging a finished run ------------------------------------------------------------


@dataclass
class Result:
    passed: bool
    summary: str  # one line
    reasons: list[str] = field(default_factory=list)
    score: float | None = None
    scenarios: list[dict[str, Any]] = field(default_factory=list)


def judge_command(code: int | None) -> Result:
    if code == 0:
        return Result(True, "exit code 0")
    why = f"exit code {code}" if code is not None else "ended without an exit status"
    if code in _SHELL_CODES:
        return Result(False, f"{why} ({_SHELL_CODES[code]})", [why, _SHELL_CODES[code]])
    return Result(False, why, [why])


# What sh means by these codes: a gate that fails so is misconfigured more often
# than it is failed by the work, and the report should say where to look.
_SHELL_CODES = {
    126: "the shell found the command but could not run it: is it executable?",
    127: "the shell found no such command: check the gate's command in factory.yaml, "
    "or that the tool is installed in the task's worktree",
}


def judge_judge(gate: Gate, code: int | None, stdout: str) -> Result:
    verdict = read_verdict(stdout, need_score=True, threshold=gate.threshold)
    if verdict.error:
        return Result(False, verdict.error, [verdict.error])
    if code != 0:
        why = f"the judge exited with {code}" if code is not None else "the judge was killed"
        return Result(False, why, [why, *verdict.reasons], verdict.score)
    summary = f"score {verdict.score:g} (threshold {gate.threshold:g})"
    if not verdict.passed and verdict.score is not None and verdict.score >= gate.threshold:
        summary += ", but the judge said pass: false"
    return Result(verdict.passed, summary, verdict.reasons, verdict.score)


def judge_scenarios(plays: list[dict[str, str]]) -> Result:
    results: list[dict[str, Any]] = []
    for entry in plays:
        text, unreadable = None, ""
        try:
            text = Path(entry["verdict"]).read_bytes()[:MAX_VERDICT].decode("utf-8")
        except OSError:
            pass
        except UnicodeDecodeError as exc:
            unreadable = f"the verdict file is not UTF-8 text ({exc.reason} at byte {exc.start})"
        code = _exit_of(Path(entry["exit"]))
        if code is None:
            verdict = Verdict(False, [], error="not played: the run ended before it")
        elif unreadable:
            verdict = Verdict(False, [], error=unreadable)
        elif text is None:
            verdict = Verdict(False, [], error=f"no verdict written (the agent exited {code})")
        else:
            verdict = read_verdict(text, need_score=False)
        reasons = [verdict.error] if verdict.error else verdict.reasons
        results.append({"scenario": entry["name"], "pass": verdict.passed, "reasons": reasons,
                        "score": verdict.score, "exit_code": code})  # fmt: skip
    failed = [r["scenario"] for r in results if not r["pass"]]
    if not results:
        return Result(False, "no scenarios to play", ["no scenario file matched the gate"])
    summary = (
        f"{len(results)} of {len(results)} scenarios passed" if not failed
        else f"{len(failed)} of {len(results)} scenarios failed: {', '.join(failed)}"
    )  # fmt: skip
    reasons = [f"{r['scenario']}: {'; '.join(r['reasons']) or 'failed'}"
               for r in results if not r["pass"]]  # fmt: skip
    return Result(not failed, summary, reasons, None, results)


def _exit_of(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def report(
    gate: Gate, result: Result, output: str, kept: dict[str, str], total: int | None = None
) -> str:
    """The markdown report of a gate run: the verdict, then the end of the output
    (``output`` may be only the end of it; ``total`` is then its full length)."""
    lines = [f"# Gate {gate.name} ({gate.type}): {'passed' if result.passed else 'FAILED'}",
             "", result.summary, ""]  # fmt: skip
    if result.score is not None:
        lines += [f"Score: {result.score:g} (threshold {gate.threshold:g})", ""]
    for r in result.scenarios:
        mark = "pass" if r["pass"] else "FAIL"
        lines.append(f"- {r['scenario']}: {mark}" + "".join(f"\n  - {x}" for x in r["reasons"]))
    if result.scenarios:
        lines.append("")
    if result.reasons and not result.scenarios and result.reasons != [result.summary]:
        lines += ["Reasons:", *(f"- {r}" for r in result.reasons), ""]
    for name, artifact in kept.items():
        lines.append(f"Kept {name} as artifact {artifact}.")
    tail = output[-REPORT_TAIL:]
    size = max(total or 0, len(output))
    if tail.strip():
        cut = "the end of " if size > len(tail) else ""
        # A fence longer than any run of backticks in the output: the output cannot
        # close it and go on as markdown of the report (or of the next prompt).
        fence = "`" * max(3, 1 + max((len(r) for r in re.findall(r"`+", tail)), default=0))
        lines += ["", f"## Output ({cut}{size:,} characters)", "", fence, tail.rstrip(),
                  fence]  # fmt: skip
    return "\n".join(lines) + "\n"
