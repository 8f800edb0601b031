"""Living documents: edited in place through the CLI, history generated from session
summary records (byte for byte the same on every rebuild), the daemon keeping it up
to date, and the text prompts get."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import commit_on_factory, gf, gf_json, git

from gitfactory.errors import UsageError
from gitfactory.knowledge import documents, sessions
from gitfactory.plan import decisions, steps
from gitfactory.store import log
from gitfactory.store.factory import Factory
from gitfactory.store.log import Event

DOCS = ".factory/docs"
TWO_STEPS = b"""protocol: "0.3"
name: test
workflows:
  default:
    steps:
      implement:
        role: coder
        on_success: review
        on_failure: failed
      review:
        role: reviewer
        on_success: done
        on_failure: implement
"""


def two_step_factory(repo: Path) -> Factory:
    commit_on_factory(repo, {".factory/factory.yaml": TWO_STEPS})
    return Factory.discover(repo)


def walk(f: Factory, title: str, review: str = "success") -> str:
    """Add a task and take it through implement and review with the workflow API."""
    task = decisions.add(f, title=title, requester="human/lead")
    assert steps.next_for(f, "coder/ada").state.task.id == task.id
    steps.step_done(f, task.id, "coder/ada", "success", note="fixed the off-by-one")
    assert steps.next_for(f, "reviewer/rex").state.task.id == task.id
    steps.step_done(f, task.id, "reviewer/rex", review)
    return task.id


def summaries(f: Factory, task: str | None = None) -> list[Event]:
    f.index.refresh()
    return [e for _, e in f.index.events(log.EventQuery(kind=sessions.SUMMARY, task=task))]


def test_init_lays_down_the_documents(factory_repo: Path) -> None:
    r = factory_repo
    names = git(r, "ls-tree", "--name-only", f"factory:{DOCS}").split()
    assert names == ["best-practices.md", "history.md", "start-sequence.md"]
    listed = gf_json(r, "docs", "list")
    assert [(d["name"], d["generated"]) for d in listed] == [
        ("best-practices", False),
        ("history", True),
        ("start-sequence", False),
    ]
    assert "No finished sessions yet." in gf(r, "docs", "show", "history").stdout
    assert "start-sequence" in gf(r, "docs").stdout  # the group alone lists them
    shown = gf_json(r, "docs", "show", "start-sequence.md")  # a .md suffix is accepted
    assert shown["text"].startswith("# Start sequence")


def test_show_and_edit_round_trip_through_the_cli(factory_repo: Path, tmp_path: Path) -> None:
    r = factory_repo
    text = "# Best practices\n\n- Run `make check` before every commit.\n- Ünïcode is fine.\n"
    new = tmp_path / "bp.md"
    new.write_text(text)
    out = gf_json(r, "docs", "edit", "best-practices", "--file", str(new), "--as", "human/lead")
    assert out["changed"] is True
    assert git(r, "show", f"factory:{DOCS}/best-practices.md") == text  # plain git sees it
    assert gf(r, "docs", "show", "best-practices").stdout == text
    assert git(r, "log", "-1", "--format=%s", "factory") == (
        "docs: edit best-practices by human/lead\n"
    )

    tip = git(r, "rev-parse", "factory")
    again = gf(r, "docs", "edit", "best-practices", "--file", str(new))
    assert "unchanged: nothing committed" in again.stdout
    assert git(r, "rev-parse", "factory") == tip

    gf(r, "docs", "edit", "testing", "--file", "-", input="Use pytest -q.\n")  # a new one
    assert git(r, "show", f"factory:{DOCS}/testing.md") == "Use pytest -q.\n"

    # Without --file: $EDITOR on the current text; leaving it as it was commits nothing.
    editor = tmp_path / "editor.py"
    editor.write_text("import sys\nopen(sys.argv[1], 'a').write('- Keep commits small.\\n')\n")
    gf(r, "docs", "edit", "testing", env={"EDITOR": f"{sys.executable} {editor}"})
    assert git(r, "show", f"factory:{DOCS}/testing.md") == (
        "Use pytest -q.\n- Keep commits small.\n"
    )
    tip = git(r, "rev-parse", "factory")
    assert "unchanged" in gf(r, "docs", "edit", "testing", env={"EDITOR": "true"}).stdout
    assert git(r, "rev-parse", "factory") == tip


def test_history_and_bad_names_are_refused_and_nothing_is_committed(
    factory_repo: Path, tmp_path: Path
) -> None:
    r = factory_repo
    tip = git(r, "rev-parse", "factory")
    proc = gf(r, "docs", "edit", "history", "--file", "-", input="mine\n", code=2)
    assert "generated" in proc.stderr and "gitfactory docs regenerate" in proc.stderr
    for bad in ("../x", "a/b", "Best", ".hidden", "x" * 65):
        proc = gf(r, "docs", "edit", bad, "--file", "-", input="x\n", code=2)
        assert "is not a document name" in proc.stderr and "never a path" in proc.stderr
        gf(r, "docs", "show", bad, code=2)
    binary = tmp_path / "binary"
    binary.write_bytes(b"\xff\xfe\x00")
    assert "not UTF-8" in gf(r, "docs", "edit", "binary", "--file", str(binary), code=2).stderr
    proc = gf(r, "docs", "show", "nope", code=2)
    assert "no document 'nope'" in proc.stderr and "best-practices, history" in proc.stderr
    assert git(r, "rev-parse", "factory") == tip


def test_a_finished_task_gets_one_summary_and_a_history_entry(factory_repo: Path) -> None:
    f = two_step_factory(factory_repo)
    done = walk(f, "Fix the parser")
    failed = decisions.add(f, title="Doomed", requester="human/lead")
    steps.next_for(f, "coder/ada")
    steps.step_done(f, failed.id, "coder/ada", "failure", note="cannot build")
    open_task = decisions.add(f, title="Still open", requester="human/lead")
    canceled = decisions.add(f, title="Not needed", requester="human/lead")
    decisions.cancel(f, canceled.id, "human/lead", "duplicate")
    log.append(
        f,
        [
            log.stamp(
                log.Draft(
                    kind="merge.result",
                    actor="factory/daemon",
                    task=done,
                    data={
                        "strategy": "squash",
                        "target": "main",
                        "status": "merged",
                        "commit": "0123456789abcdef0123",
                    },
                )
            )
        ],
    )
    assert documents.pending(f) == [done, failed.id, canceled.id]

    event = documents.summarize(f, done)
    assert event is not None and event.kind == "session.summary" and event.task == done
    assert event.actor == "factory/docs"
    data = event.data
    assert (data["title"], data["state"]) == ("Fix the parser", "completed")
    assert [(s["step"], s["outcome"], s["by"]) for s in data["steps"]] == [
        ("implement", "success", "coder/ada"),
        ("review", "success", "reviewer/rex"),
    ]
    assert data["steps"][0]["note"] == "fixed the off-by-one"
    assert data["agents"] == ["coder/ada", "reviewer/rex"]
    assert data["attempts"] == {"implement": 1, "review": 1} and data["duration_ms"] >= 0
    assert data["merge"] == {
        "strategy": "squash",
        "target": "main",
        "status": "merged",
        "commit": "0123456789abcdef0123",
    }
    assert event.text.startswith("Fix the parser: completed in ")
    # The summary and the history that shows it are one commit.
    changed = git(factory_repo, "show", "--name-only", "--format=", "factory").split()
    assert changed == [f"{DOCS}/history.md", event.path]
    history = git(factory_repo, "show", f"factory:{DOCS}/history.md")
    assert "· Fix the parser" in history and "note on implement by coder/ada" in history
    assert "- merge: squash into main: merged at 0123456789ab" in history

    tip = git(factory_repo, "rev-parse", "factory")
    assert documents.summarize(f, done) is None  # idempotent: still one summary
    assert len(summaries(f, done)) == 1 and git(factory_repo, "rev-parse", "factory") == tip
    assert documents.pending(f) == [failed.id, canceled.id]
    assert [e.task for e in documents.catch_up(f)] == [failed.id, canceled.id]
    assert documents.pending(f) == [] and documents.catch_up(f) == []
    with pytest.raises(UsageError, match="only a finished task"):
        documents.summarize(f, open_task.id)
    history = git(factory_repo, "show", f"factory:{DOCS}/history.md")
    assert history.index("Not needed") < history.index("Doomed") < history.index("Fix the parser")
    assert "- why: duplicate" in history and "implement: failure" in history


def test_history_is_rebuilt_byte_for_byte_from_the_records(factory_repo: Path) -> None:
    r = factory_repo
    f = two_step_factory(r)
    for title in ("First", "Second"):
        documents.summarize(f, walk(f, title))
    original = git(r, "show", f"factory:{DOCS}/history.md")
    path = f"{DOCS}/history.md"
    commit_on_factory(r, {path: b"# History\n\nsomeone wrote here\n"})
    assert "rewrote .factory/docs/history.md" in gf(r, "docs", "regenerate").stdout
    assert git(r, "show", f"factory:{path}") == original
    tip = git(r, "rev-parse", "factory")
    assert "already matches" in gf(r, "docs", "regenerate").stdout
    assert git(r, "rev-parse", "factory") == tip  # nothing to change: no commit
    commit_on_factory(r, {}, remove=[path])
    gf(r, "docs", "regenerate")
    assert git(r, "show", f"factory:{path}") == original


def test_history_shows_the_newest_and_counts_the_rest_whatever_the_data() -> None:
    def summary(n: int, data: dict[str, Any]) -> Event:
        rid = f"01m80000000000000000000{n:03d}"
        return Event(
            rid, "session.summary", "factory/docs", "2026-11-22T10:00:00.000Z", None, "", data
        )

    odd = [
        summary(1, {"title": 5, "steps": "x", "merge": [1], "agents": [None, "coder/a"]}),
        summary(2, {"title": "Multi\nline ## title", "duration_ms": True, "artifacts": [3]}),
    ]
    text = sessions.history(odd, total=7).decode()
    assert text == sessions.history(odd, total=7).decode()  # deterministic
    assert "· (untitled)" in text and "· Multi line ## title" in text
    assert "- agents: coder/a" in text
    assert "5 older session(s) are not shown here: `gitfactory log --kind session.summary`" in text
    assert sessions.entries(text).startswith("## 2026-11-22 10:00 UTC")


def test_pending_is_only_finished_tasks_without_a_summary(factory_repo: Path) -> None:
    f = two_step_factory(factory_repo)
    assert documents.pending(f) == []
    done = walk(f, "Done")
    working = decisions.add(f, title="Working", requester="human/lead")
    decisions.claim(f, working.id, "coder/bob")
    decisions.add(f, title="Waiting", requester="human/lead")
    assert documents.pending(f) == [done]
    documents.summarize(f, done)
    assert documents.pending(f) == []


def one_coder(repo: Path, agent: Path) -> None:
    """A factory whose one step is done by coder/ada, which runs the Python ``agent``."""
    config = (
        f'protocol: "0.3"\nname: test\ndispatch:\n  worktrees: ../worktrees\n'
        f"agents:\n  ada:\n    role: coder\n    command: {sys.executable} {agent}\n"
        "workflows:\n  default:\n    steps:\n      implement:\n        role: coder\n"
    )
    commit_on_factory(repo, {".factory/factory.yaml": config.encode()})


def test_the_daemon_summarizes_what_a_scripted_agent_finished(
    factory_repo: Path, tmp_path: Path
) -> None:
    r = factory_repo
    agent = tmp_path / "agent.py"
    agent.write_text(
        "import os, subprocess\nfrom pathlib import Path\n"
        "Path('work.txt').write_text('done\\n')\n"
        "subprocess.run(['git', 'add', 'work.txt'], check=True)\n"
        "subprocess.run(['git', 'commit', '-qm', 'work'], check=True)\n"
        "print('worked on', os.environ['GITFACTORY_TASK'])\n"
    )
    one_coder(r, agent)
    task = gf_json(r, "task", "add", "Write the work file")["id"]
    ticks = [json.loads(x) for x in gf(r, "daemon", "--burst", "--json-log").stdout.splitlines()]
    assert [t for tick in ticks for t in tick["summarized"]] == [task]
    [summary] = gf_json(r, "log", "--kind", "session.summary")
    assert summary["task"] == task and summary["data"]["agents"] == ["coder/ada"]
    [run] = summary["data"]["runs"]
    assert (run["agent"], run["step"], run["how"]) == ("coder/ada", "implement", "exit_code")
    [artifact] = summary["data"]["artifacts"]
    assert artifact["id"] == run["artifact"] and artifact["name"].startswith("transcript-")
    history = git(r, "show", f"factory:{DOCS}/history.md")
    assert "· Write the work file" in history and "- agents: coder/ada" in history
    assert "implement: success" in history and "transcript-implement-1.log" in history


def test_prompts_get_the_documents_within_the_budget(factory_repo: Path) -> None:
    r = factory_repo
    f = two_step_factory(r)
    documents.write(f, "best-practices", ("- a rule to follow\n" * 1500).encode(), "human/lead")
    documents.write(f, "zeta", b"# Zeta\n\nShort and whole.\n", "human/lead")
    documents.summarize(f, walk(f, "Earlier session"))
    text = documents.for_prompt(f, budget_chars=4000)
    assert len(text) <= 4000
    heads = [line for line in text.splitlines() if line.startswith("### ")]
    assert heads == ["### best-practices", "### start-sequence", "### zeta", "### history"]
    assert (
        "cut to fit the prompt; the whole document: `gitfactory docs show best-practices`" in text
    )
    assert "Short and whole." in text and "· Earlier session" in text
    assert "# History" not in text  # its entries, not its preamble
    full = documents.for_prompt(f)
    assert len(full) <= 12000 and documents.read(f, "start-sequence").decode().strip() in full
    assert len(documents.for_prompt(f, budget_chars=50)) <= 50


def test_a_factory_from_before_documents_keeps_working(factory_repo: Path) -> None:
    r = factory_repo
    commit_on_factory(
        r, {}, remove=[f"{DOCS}/{n}.md" for n in ("best-practices", "history", "start-sequence")]
    )
    f = Factory.discover(r)
    assert documents.listing(f) == [] and documents.for_prompt(f) == "(none yet)"
    assert gf_json(r, "docs", "list") == []
    assert "no document 'best-practices'" in gf(r, "docs", "show", "best-practices", code=2).stderr
    gf(r, "docs", "edit", "best-practices", "--file", "-", input="Be kind.\n")
    assert [d.name for d in documents.listing(f)] == ["best-practices"]
    assert "Be kind." in documents.for_prompt(f)


# An agent that ends the task's last step itself, then keeps running for three more
# ticks of the daemon (it reads their count in the daemon's status file).
LINGERING = """
import json, os, subprocess, sys, time
from pathlib import Path
task = os.environ["GITFACTORY_TASK"]
Path("work.txt").write_text("done\\n")
subprocess.run(["git", "add", "work.txt"], check=True)
subprocess.run(["git", "commit", "-qm", "work"], check=True)
subprocess.run([sys.executable, "-m", "gitfactory", "step", "done", task], check=True)
common = subprocess.run(["git", "rev-parse", "--path-format=absolute", "--git-common-dir"],
                        capture_output=True, text=True, check=True).stdout.strip()
status = Path(common) / "gitfactory" / "daemon.json"
ticks = lambda: json.loads(status.read_text())["ticks"]
first, deadline = ticks(), time.monotonic() + 120
while ticks() < first + 3 and time.monotonic() < deadline:
    time.sleep(0.05)
print("still here after the step was done")
"""


def test_a_summary_waits_for_the_run_that_finished_the_task(
    factory_repo: Path, tmp_path: Path
) -> None:
    # The agent's own `step done` completes the task while its process still runs:
    # the summary is written once the run has ended, so it holds the run's transcript.
    r = factory_repo
    agent = tmp_path / "agent.py"
    agent.write_text(LINGERING)
    one_coder(r, agent)
    task = gf_json(r, "task", "add", "Write the work file")["id"]
    gf(r, "daemon", "--burst")
    [summary] = gf_json(r, "log", "--kind", "session.summary")
    [run] = summary["data"]["runs"]
    assert run["how"] == "step_done"
    names = [a["name"] for a in summary["data"]["artifacts"]]
    assert names == [a["name"] for a in gf_json(r, "artifact", "list", task)]
    assert names == ["transcript-implement-1.log"]
