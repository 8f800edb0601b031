"""What a team sharing one factory through a remote runs into: daemons on two
machines running the same agents, clones pushing at once, the generated history,
a remote one clone lacks."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from pathlib import Path

from tests.conftest import gf, gf_json, git, wait_for
from tests.sync.conftest import GitDaemon, bare_remote, make_clones, records
from tests.sync.test_claims import add_tasks, with_quick_workflow
from tests.sync.test_daemon_sync import AGENT, daemons


def test_two_daemons_with_the_same_agents_run_each_step_once(
    tmp_path: Path, git_daemon: GitDaemon
) -> None:
    bare_remote(git_daemon.base)
    a, b = make_clones(tmp_path, git_daemon.url("remote.git"), ("a", "b"), remote_yaml=None)
    for clone in (a, b):  # the agent's program is part of the project, in every clone
        (clone / "agent.sh").write_text(AGENT)
        (clone / "agent.sh").chmod(0o755)
    text = git(a, "show", "factory:.factory/factory.yaml")
    text = text.replace("agents: {}", "agents:\n  bot:\n    role: coder\n    command: ./agent.sh")
    text = text.replace("\n# sync:\n", "\nsync:\n  remote: origin\n  interval: 1s\n", 1)
    gf(a, "config", "edit", "--file", "-", input=text)
    with_quick_workflow(a)
    ids = add_tasks(a, 4)
    gf(a, "sync")
    gf(b, "sync")
    for clone in (a, b):
        git(clone, "add", "agent.sh")
        git(clone, "commit", "-qm", "the agent")
    with daemons([a, b]):
        def done() -> bool:  # a's daemon takes in what b's pushed, every second
            listed = gf_json(a, "task", "list", "--json", "--state", "completed")
            return set(ids) <= {t["id"] for t in listed}
        wait_for(done, "every task done by one of the two daemons", timeout=240)
    for clone in (a, b):
        gf(clone, "sync")
    started = Counter(e["task"] for e in gf_json(a, "log", "--json", "--kind", "dispatch.started"))
    claimed = Counter(e["task"] for e in gf_json(a, "log", "--json", "--kind", "task.claimed"))
    assert {t: started[t] for t in ids} == dict.fromkeys(ids, 1)
    assert {t: claimed[t] for t in ids} == dict.fromkeys(ids, 1)


def test_clones_syncing_at_once_all_get_through(
    tmp_path: Path, shared_remote: tuple[str, Path]
) -> None:
    url, bare = shared_remote
    clones = make_clones(tmp_path, url, ("a", "b", "c", "d"))
    for round_no in range(3):
        for clone in clones:
            gf(clone, "log", "append", "note", f"{clone.name} {round_no}")
        procs = [subprocess.Popen([sys.executable, "-m", "gitfactory", "sync"], cwd=c,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for c in clones]
        outs = [p.communicate(timeout=300) for p in procs]
        assert [p.returncode for p in procs] == [0] * 4, outs
    for clone in clones:
        gf(clone, "sync")
    assert all(records(c) == records(bare) for c in clones)


def test_the_generated_history_is_made_again_not_merged(tmp_path: Path) -> None:
    bare = bare_remote(tmp_path)
    a, b = make_clones(tmp_path, bare.as_uri(), ("a", "b"))
    with_quick_workflow(a)
    gf(a, "sync")
    gf(b, "sync")
    for clone, title in ((a, "alpha work"), (b, "beta work")):
        (tid,) = [gf(clone, "task", "add", title, "--workflow", "quick").stdout.strip()]
        gf(clone, "task", "claim", tid, "--as", "coder/x")
        gf(clone, "step", "done", tid, "--as", "coder/x", "--note", "done")
        gf(clone, "docs", "regenerate")
        assert title in git(clone, "show", "factory:.factory/docs/history.md")
    gf(a, "sync")
    gf(b, "sync")  # both changed history.md: made again from the merged records
    gf(a, "sync")
    for clone in (a, b):
        history = git(clone, "show", "factory:.factory/docs/history.md")
        assert "alpha work" in history and "beta work" in history
    assert records(a) == records(b) == records(bare)


def test_a_remote_this_clone_lacks_is_a_setup_error_not_no_work(tmp_path: Path) -> None:
    bare = bare_remote(tmp_path)
    (a,) = make_clones(tmp_path, bare.as_uri(), ("a",))
    with_quick_workflow(a)
    add_tasks(a, 1)
    gf(a, "sync")
    other = tmp_path / "other"
    git(tmp_path, "clone", "-q", "-o", "upstream", bare.as_uri(), str(other))
    gf(other, "sync", "upstream")
    proc = gf(other, "next", "--as", "coder/x", code=2)
    assert "sync.remote names 'origin'" in proc.stderr and "git remote add origin" in proc.stderr
    shown = gf(other, "status", code=0).stdout
    assert "sync      problem:" in shown
    assert any("sync" in line and "PROBLEM" in line
               for line in gf(other, "doctor", code=None).stdout.splitlines())


TWO_ROLES = """#!/bin/sh
case "$GITFACTORY_AGENT" in
coder/*) echo "done by $GITFACTORY_AGENT" > "work-$GITFACTORY_TASK.txt" ;;
reviewer/*) test -f "work-$GITFACTORY_TASK.txt" || { echo "no work to review"; exit 1; }
            echo ok > "review-$GITFACTORY_TASK.txt" ;;
esac
git add . && git commit -qm "$GITFACTORY_AGENT on $GITFACTORY_TASK"
"""


def test_the_work_travels_from_the_clone_that_did_it_to_the_next_step(tmp_path: Path) -> None:
    bare = bare_remote(tmp_path)
    a, b = make_clones(tmp_path, bare.as_uri(), ("a", "b"), remote_yaml=None)
    (a / "agent.sh").write_text(TWO_ROLES)
    (a / "agent.sh").chmod(0o755)
    git(a, "add", "agent.sh")
    git(a, "commit", "-qm", "the agents")
    git(a, "push", "-q", "origin", "main")
    git(b, "pull", "-q", "origin", "main")
    text = git(a, "show", "factory:.factory/factory.yaml")
    text = text.replace("agents: {}", "agents:\n  bot:\n    role: coder\n    command: ./agent.sh")
    text = text.replace("\n# sync:\n", "\nsync:\n  remote: origin\n", 1)
    text += ("  pair:\n    steps:\n      implement:\n        role: coder\n"
             "        on_success: review\n      review:\n        role: reviewer\n"
             "        on_success: done\n")
    gf(a, "config", "edit", "--file", "-", input=text)
    tid = gf(a, "task", "add", "two machines", "--workflow", "pair").stdout.strip()
    gf(a, "sync")
    # a's daemon implements; no agent plays reviewer yet, so it stops there (exit 4)
    gf(a, "daemon", "--burst", code=4)
    (started,) = gf_json(a, "log", "--json", "--kind", "dispatch.started")
    branch = started["data"]["branch"]
    assert branch and f"work-{tid}.txt" in git(bare, "ls-tree", "--name-only", branch)
    # b gets a reviewer; its daemon reviews the work a's daemon did
    gf(b, "sync")
    text = git(b, "show", "factory:.factory/factory.yaml").replace(
        "    command: ./agent.sh", "    command: ./agent.sh\n  rev:\n    role: reviewer\n"
        "    command: ./agent.sh", 1)
    gf(b, "config", "edit", "--file", "-", input=text + "\n")
    gf(b, "daemon", "--burst")
    assert gf_json(b, "task", "show", tid, "--json")["state"] == "completed"
    assert f"review-{tid}.txt" in git(bare, "ls-tree", "--name-only", branch)


def test_a_copied_git_dir_is_a_clone_of_its_own(tmp_path: Path) -> None:
    from gitfactory.store import remote
    from gitfactory.store.factory import Factory

    bare = bare_remote(tmp_path)
    (a,) = make_clones(tmp_path, bare.as_uri(), ("a",))
    first = remote.clone_id(Factory.discover(a))
    assert remote.clone_id(Factory.discover(a)) == first  # stable
    subprocess.run(["cp", "-a", str(a), str(tmp_path / "copy")], check=True)
    assert remote.clone_id(Factory.discover(tmp_path / "copy")) != first
