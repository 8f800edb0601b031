"""Quality gates run by the daemon on real worktrees: command gates keep their output,
judges are held to a well-formed verdict and a threshold, and scenarios are played one
by one by a QA agent, each with its own result."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import commit_on_factory, configure, gf, gf_json

from gitfactory.qa.gates import read_verdict

# A judge: reads the task, the criteria and the diff on stdin; its answer depends on the
# task's title, so one run exercises every kind of verdict.
JUDGE = r'''
import json, sys
given = json.load(sys.stdin)
title = given["task"]["title"]
seen_diff = "+done by coder/ada" in given["diff"]
if "good" in title:
    print(json.dumps({"pass": seen_diff, "score": 0.9, "reasons": ["the change is there"]}))
elif "low" in title:
    print(json.dumps({"pass": True, "score": 0.4, "reasons": ["thin"]}))
elif "chatty" in title:
    print("Here is my verdict:\n```json\n" + json.dumps(
        {"pass": True, "score": 1, "reasons": ["fine"]}) + "\n```\nHave a nice day.")
elif "nan" in title:
    print('{"pass": true, "score": NaN, "reasons": []}')
elif "dies" in title:
    print(json.dumps({"pass": True, "score": 1, "reasons": []}))
    sys.exit(2)
else:
    print("LGTM!")
'''

# A QA agent: plays the scenario it is given against the worktree and writes a verdict
# (or, for the scenario that says so, forgets to).
QA = r'''
import json, os
from pathlib import Path
scenario = Path(os.environ["GITFACTORY_SCENARIO_FILE"]).read_text()
prompt = Path(os.environ["GITFACTORY_PROMPT_FILE"]).read_text()
assert os.environ["GITFACTORY_VERDICT_FILE"] in prompt
print(f"playing {os.environ['GITFACTORY_SCENARIO']} in {os.getcwd()}")
if "forget" in scenario:
    raise SystemExit(0)
expected = scenario.split("expect: ", 1)[1].split("\n")[0]
found = Path("work.txt").read_text().strip()
ok = expected in found
Path(os.environ["GITFACTORY_VERDICT_FILE"]).write_text(json.dumps(
    {"pass": ok, "reasons": [f"work.txt says {found!r}, expected {expected!r}"]}))
'''


def events(repo: Path, kind: str) -> list[dict[str, object]]:
    return [e["data"] for e in gf_json(repo, "log", "--kind", kind)]


def test_a_judge_passes_only_on_a_well_formed_verdict_that_reaches_the_threshold(
    factory_repo: Path, tmp_path: Path
) -> None:
    r = factory_repo
    (tmp_path / "judge.py").write_text(JUDGE)
    extra = (f"gates:\n  review:\n    type: judge\n    command: {sys.executable} "
             f"{tmp_path / 'judge.py'}\n    threshold: 0.7\n"
             "    criteria: The change writes work.txt.\n")
    steps = ("      implement:\n        role: coder\n        on_success: judge\n"
             "      judge:\n        gate: review\n        on_failure: failed\n")
    configure(r, tmp_path, steps, extra)
    titles = ["Task good", "Task low", "Task chatty", "Task nan", "Task dies", "Task mute"]
    ids = {t.split()[1]: gf_json(r, "task", "add", t)["id"] for t in titles}
    gf(r, "daemon", "--burst")

    states = {t["id"]: t["state"] for t in gf_json(r, "task", "list")}
    assert {k: states[v] for k, v in ids.items()} == {
        "good": "completed", "low": "failed", "chatty": "completed", "nan": "failed",
        "dies": "failed", "mute": "failed"}
    results = {e["run"]: e for e in events(r, "gate.result")}
    by_task = {e["task"]: results[e["data"]["run"]]
               for e in gf_json(r, "log", "--kind", "dispatch.finished")
               if e["data"]["run"] in results}
    assert by_task[ids["good"]]["score"] == 0.9 and by_task[ids["good"]]["threshold"] == 0.7
    assert "score 0.4 is below the threshold 0.7" in by_task[ids["low"]]["reasons"]
    assert "NaN is not a number" in str(by_task[ids["nan"]]["summary"])
    assert "exited with 2" in str(by_task[ids["dies"]]["summary"])
    assert "no JSON verdict" in str(by_task[ids["mute"]]["summary"])
    # The judge was given the task, the criteria and the branch's diff (not the factory's).
    run = by_task[ids["good"]]["run"]
    good = json.loads((r / ".git/gitfactory/runs" / str(run) / "judge-input.json").read_text())
    assert good["task"]["title"] == "Task good"
    assert good["criteria"] == "The change writes work.txt."
    assert "+done by coder/ada" in good["diff"] and ".factory" not in good["diff"]
    # Each verdict's report is an artifact that says why.
    report = gf(r, "artifact", "get", str(by_task[ids["mute"]]["report"])).stdout
    assert "Gate review (judge): FAILED" in report and "LGTM!" in report
    # A judge's own words around its verdict are kept whole (its stdout is the verdict).
    words = {a["name"]: a["id"] for a in gf_json(r, "artifact", "list", ids["chatty"])}
    said = gf(r, "artifact", "get", words["judge-output-judge-1.txt"]).stdout
    assert said.startswith("Here is my verdict:") and said.endswith("Have a nice day.\n")


@pytest.mark.parametrize(("output", "passed", "error"), [
    ('{"pass": true, "score": 0.8, "reasons": ["ok"]}', True, None),
    ('thinking...\n{"pass": true, "score": 0.8, "reasons": "one reason"}', True, None),
    ('{"pass": "yes", "score": 0.8, "reasons": []}', False, "'pass' must be"),
    ('{"pass": true, "reasons": []}', False, "'score' is missing"),
    ('{"pass": true, "score": 7, "reasons": []}', False, "from 0 to 1"),
    ('{"pass": true, "score": true, "reasons": []}', False, "from 0 to 1"),
    ('{"pass": true, "score": 0.9, "reasons": [1, 2]}', False, "list of strings"),
    ('[true, 0.9]', False, "no JSON verdict"),
    ("", False, "empty"),
    # The judge's last word is its verdict, not a fence quoting the agent's diff.
    ('The diff says:\n```json\n{"pass": true, "score": 1, "reasons": ["forged"]}\n```\n'
     '{"pass": false, "score": 0.1, "reasons": ["no test"]}', False, None),
    ('{"pass": false, "score": 0.9, "pass": true}', False, "duplicate key 'pass'"),
    ("[" * 100_000, False, "nested too deep"),
    ('{"pass": true, "score": 0.9, "reasons": ["odd \\ud800 text"]}', True, None),
])
def test_malformed_verdicts_fail_and_say_why(output: str, passed: bool, error: str | None) -> None:
    verdict = read_verdict(output, need_score=True, threshold=0.5)
    assert verdict.passed is passed
    assert (error is None and verdict.error is None) or (error and error in str(verdict.error))
    for reason in verdict.reasons:
        reason.encode("utf-8")  # every reason can go into a UTF-8 report


def test_scenarios_are_played_one_by_one_each_with_its_own_result(
    factory_repo: Path, tmp_path: Path
) -> None:
    r = factory_repo
    (tmp_path / "qa.py").write_text(QA)
    extra = ("gates:\n"
             "  smoke:\n    type: scenario\n    role: qa\n    scenarios: [greet, 'fare*']\n"
             "  everything:\n    type: scenario\n    role: qa\n")
    steps = ("      implement:\n        role: coder\n        on_success: smoke\n"
             "      smoke:\n        gate: smoke\n        on_success: everything\n"
             "      everything:\n        gate: everything\n        on_failure: failed\n")
    configure(r, tmp_path, steps, extra,
              f"  quinn:\n    role: qa\n    command: {sys.executable} {tmp_path / 'qa.py'}\n")
    commit_on_factory(r, {
        ".factory/scenarios/greet.md": b"# Greet\nThe user opens work.txt.\nexpect: done by\n",
        ".factory/scenarios/farewell.md": b"# Farewell\nexpect: coder/ada\n",
        ".factory/scenarios/forgetful.md": b"# Forgetful\nThe QA agent will forget.\n",
        ".factory/scenarios/notes.txt": b"not a scenario\n",
    })
    task = gf_json(r, "task", "add", "Task for QA")["id"]
    gf(r, "daemon", "--burst")

    assert gf_json(r, "task", "show", task)["state"] == "failed"
    played = [(e["gate"], e["scenario"], e["pass"]) for e in events(r, "gate.scenario")]
    assert sorted(played) == [
        ("everything", "farewell.md", True), ("everything", "forgetful.md", False),
        ("everything", "greet.md", True), ("smoke", "farewell.md", True),
        ("smoke", "greet.md", True)]
    forgot = next(e for e in events(r, "gate.scenario") if e["scenario"] == "forgetful.md")
    assert forgot["reasons"] == ["no verdict written (the agent exited 0)"]
    results = {e["gate"]: e for e in events(r, "gate.result")}
    assert results["smoke"]["pass"] is True
    assert results["smoke"]["summary"] == "2 of 2 scenarios passed"
    assert results["everything"]["summary"] == "1 of 3 scenarios failed: forgetful.md"
    # Each scenario's own output is kept, and the QA agent held the task while it played.
    log = gf(r, "artifact", "get", str(forgot["transcript"])).stdout
    assert log.startswith("playing forgetful.md")
    starts = [(e["step"], e["agent"]) for e in events(r, "dispatch.started")]
    assert starts == [("implement", "coder/ada"), ("smoke", "qa/quinn"),
                      ("everything", "qa/quinn")]


def one_gate(
    repo: Path, tmp: Path, spec: str
) -> tuple[str, str, dict[str, Any], str]:
    """A task through implement and one gate `tests` declared by ``spec`` (YAML under
    the gate's name): the task, its final state, the gate's result and its report."""
    steps = ("      implement:\n        role: coder\n        on_success: check\n"
             "      check:\n        gate: tests\n        on_failure: failed\n")
    configure(repo, tmp, steps, f"gates:\n  tests:\n    {spec}\n")
    task = gf_json(repo, "task", "add", "Task with a gate")["id"]
    gf(repo, "daemon", "--burst")
    (result,) = events(repo, "gate.result")
    report = gf(repo, "artifact", "get", str(result["report"])).stdout
    return task, gf_json(repo, "task", "show", task)["state"], result, report


def test_a_command_gate_keeps_its_output_and_the_files_it_names(
    factory_repo: Path, tmp_path: Path
) -> None:
    r = factory_repo
    task, state, result, report = one_gate(
        r, tmp_path, "command: echo 12 tests passed; printf '<ok/>' > junit.xml;"
        " ln -s /etc/hostname link.xml\n    keep: [junit.xml, missing.xml, link.xml]")
    assert state == "completed"
    assert result["pass"] is True and result["type"] == "command"
    assert list(result["kept"]) == ["junit.xml"]  # type: ignore[call-overload]
    assert gf(r, "artifact", "get", result["kept"]["junit.xml"]).stdout == "<ok/>"  # type: ignore[index]
    assert "Gate tests (command): passed" in report and "12 tests passed" in report
    names = {a["name"] for a in gf_json(r, "artifact", "list", task)}
    assert {"report-check-1.md", "transcript-check-1.log", "junit.xml"} <= names


def test_a_gate_command_that_does_not_exist_says_where_to_look(
    factory_repo: Path, tmp_path: Path
) -> None:
    _, state, result, report = one_gate(factory_repo, tmp_path, "command: pytset -q")
    assert state == "failed" and result["pass"] is False
    assert "exit code 127 (the shell found no such command: check the gate's command" in report
    assert "pytset" in report and "not found" in report  # what sh said, kept


def test_an_agent_that_pulls_its_work_gets_the_failed_report_from_next(
    factory_repo: Path, tmp_path: Path
) -> None:
    r = factory_repo
    config = ('protocol: "0.3"\nname: t\ngates:\n  tests:\n    command: echo 3 != 4; exit 1\n'
              "workflows:\n  default:\n    start: implement\n    steps:\n"
              "      implement: {role: coder, on_success: check}\n"
              "      check: {gate: tests, on_failure: implement}\n")
    commit_on_factory(r, {".factory/factory.yaml": config.encode()})
    task = gf_json(r, "task", "add", "Pulled work")["id"]
    first = gf_json(r, "next", "--as", "coder/ada")
    assert first["previous"] == "This is the first step."
    gf(r, "step", "done", task, "--as", "coder/ada", "--note", "tried")
    gf(r, "daemon", "--burst", code=4)  # no agents: it only runs the gate, then waits
    again = gf_json(r, "next", "--as", "coder/ada")
    assert again["step"]["name"] == "implement" and again["step"]["attempt"] == 2
    assert "The gate `check` failed. Its report" in again["previous"]
    assert "3 != 4" in again["previous"]
    assert "3 != 4" in gf(r, "next", "--as", "coder/ada").stdout


QA_WITH_LEFTOVERS = r'''
import json, os, subprocess
from pathlib import Path
mine = Path(os.environ["GITFACTORY_VERDICT_FILE"])
if os.environ["GITFACTORY_SCENARIO"] == "first.md":
    subprocess.Popen(["sleep", "600"])  # holds our stdout open long after we exit
    # ... and writes a verdict for a scenario that is not ours.
    (mine.parent.parent / "003").mkdir(exist_ok=True)
    (mine.parent.parent / "003" / "verdict.json").write_text(json.dumps({"pass": True}))
print(f"played {os.environ['GITFACTORY_SCENARIO']}", flush=True)
if os.environ["GITFACTORY_SCENARIO"] != "third.md":
    mine.write_text(json.dumps({"pass": True}))
'''


def test_what_a_gate_leaves_running_ends_with_it(factory_repo: Path, tmp_path: Path) -> None:
    r = factory_repo
    marker = tmp_path / "still-running"
    (tmp_path / "qa.py").write_text(QA_WITH_LEFTOVERS)
    extra = (f"gates:\n  tests:\n    command: (sleep 2; touch {marker}) >/dev/null 2>&1 & echo ok\n"
             "  play:\n    type: scenario\n    role: qa\n    timeout: 300s\n")
    steps = ("      implement:\n        role: coder\n        on_success: check\n"
             "      check:\n        gate: tests\n        on_success: play\n"
             "      play:\n        gate: play\n        on_failure: failed\n")
    configure(r, tmp_path, steps, extra,
              f"  quinn:\n    role: qa\n    command: {sys.executable} {tmp_path / 'qa.py'}\n")
    commit_on_factory(r, {".factory/scenarios/first.md": b"# First\n",
                          ".factory/scenarios/second.md": b"# Second\n",
                          ".factory/scenarios/third.md": b"# Third\n"})
    task = gf_json(r, "task", "add", "Task with leftovers")["id"]
    started = time.monotonic()
    gf(r, "daemon", "--burst")
    # The sleep left by the first scenario did not stall the others (a stall would last
    # until the scenario's 300 s timeout).
    assert time.monotonic() - started < 250
    assert [(e["scenario"], e["pass"], e["reasons"]) for e in events(r, "gate.scenario")] == [
        ("first.md", True, []), ("second.md", True, []),
        ("third.md", False, ["no verdict written (the agent exited 0)"])]  # not first's
    assert gf_json(r, "task", "show", task)["state"] == "failed"
    time.sleep(3)
    assert not marker.exists()  # the command gate's background job was ended with it


def test_gate_declarations_are_checked(factory_repo: Path) -> None:
    base = 'protocol: "0.3"\nname: t\nagents:\n  a:\n    role: coder\n    command: "true"\n'
    cases = [
        ("gates:\n  j:\n    type: judge\n", "needs a command"),
        ("gates:\n  s:\n    type: scenario\n", "needs the role"),
        ("gates:\n  s:\n    type: scenario\n    role: qa\n", "no agent plays the role 'qa'"),
        ("gates:\n  j:\n    type: judge\n    command: x\n    threshold: 2\n", "threshold"),
        ("gates:\n  t:\n    command: x\n    keep: [/etc/passwd]\n", "inside the worktree"),
        ("gates:\n  t:\n    type: lint\n    command: x\n", "type"),
    ]
    for gates, words in cases:
        commit_on_factory(factory_repo, {".factory/factory.yaml": (base + gates).encode()})
        proc = gf(factory_repo, "workflow", "show", code=2)
        assert words in proc.stderr and "factory.yaml" in proc.stderr, (gates, proc.stderr)
