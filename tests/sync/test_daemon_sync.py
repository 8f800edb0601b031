"""The daemon keeps its clone in sync: it pushes what it writes, fetches on a timer,
and rides out a remote that goes away."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.conftest import gf, gf_json, git, wait_for
from tests.sync.conftest import GitDaemon, bare_remote, make_clones, records, set_sync


@contextmanager
def daemons(clones: list[Path]) -> Iterator[list[subprocess.Popen[bytes]]]:
    procs = [subprocess.Popen([sys.executable, "-m", "gitfactory", "daemon"], cwd=c,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
             for c in clones]
    try:
        for clone in clones:
            wait_for(lambda c=clone: gf_json(c, "daemon", "status")["running"],
                     f"the daemon of {clone.name} to start")
        yield procs
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            p.wait(timeout=120)


def same_everywhere(clones: list[Path], bare: Path) -> bool:
    return records(clones[0]) == records(clones[1]) == records(clones[2]) == records(bare)


def test_daemons_ride_out_a_remote_that_goes_away(tmp_path: Path, git_daemon: GitDaemon) -> None:
    bare = bare_remote(git_daemon.base)
    clones = make_clones(tmp_path, git_daemon.url("remote.git"), remote_yaml=None)
    set_sync(clones[0], "  remote: origin\n  interval: 1s\n")
    for clone in clones:
        gf(clone, "sync")
    with daemons(clones):
        gf(clones[0], "log", "append", "note", "while up")
        wait_for(lambda: same_everywhere(clones, bare), "the note to reach every clone")
        git_daemon.stop()
        for n in range(3):
            for clone in clones:
                gf(clone, "log", "append", "note", f"{clone.name} {n} while down")
        git_daemon.start()
        wait_for(lambda: same_everywhere(clones, bare), "every clone to hold every record")
    texts = Counter(e["text"] for e in gf_json(clones[2], "log", "--json", "--kind", "note"))
    wanted = {"while up", *(f"{c.name} {n} while down" for c in clones for n in range(3))}
    assert set(texts) == wanted and set(texts.values()) == {1}  # none lost, none twice
    assert all(gf(c, "verify").returncode == 0 for c in clones)


AGENT = """#!/bin/sh
echo "done by $GITFACTORY_AGENT" > "work-$GITFACTORY_TASK.txt"
git add . && git commit -qm "work on $GITFACTORY_TASK"
"""


def test_no_agent_starts_on_a_claim_the_remote_does_not_have(
    tmp_path: Path, git_daemon: GitDaemon
) -> None:
    bare_remote(git_daemon.base)
    (a,) = make_clones(tmp_path, git_daemon.url("remote.git"), ("a",), remote_yaml=None)
    (a / "agent.sh").write_text(AGENT)
    (a / "agent.sh").chmod(0o755)
    git(a, "add", "agent.sh")
    git(a, "commit", "-qm", "the agent")
    text = git(a, "show", "factory:.factory/factory.yaml")
    text = text.replace("agents: {}", "agents:\n  ada:\n    role: coder\n    command: ./agent.sh")
    text = text.replace("\n# sync:\n", "\nsync:\n  remote: origin\n  interval: 1s\n", 1)
    text += "  quick:\n    steps:\n      implement:\n        role: coder\n        on_success: done\n"
    gf(a, "config", "edit", "--file", "-", input=text)
    gf(a, "sync")
    git_daemon.stop()
    tid = gf(a, "task", "add", "offline work", "--workflow", "quick").stdout.strip()
    with daemons([a]):
        wait_for(lambda: ((gf_json(a, "daemon", "status")["status"] or {}).get("sync") or {})
                 .get("error"), "the daemon to find the remote away")
        assert "could not fetch from origin" in gf(a, "daemon", "status").stdout
        assert "1 ready task waits for origin, which does not answer" in gf(a, "status").stdout
        started = gf_json(a, "log", "--json", "--kind", "dispatch.started")
        assert started == [] and gf_json(a, "task", "show", tid, "--json")["state"] == "submitted"
        git_daemon.start()
        wait_for(lambda: gf_json(a, "task", "show", tid, "--json")["state"] == "completed",
                 "the task to be done once the remote confirms the claim", timeout=180)
    remote_claims = git(a, "log", "--format=%s", "origin/factory")
    assert f"task: claimed {tid[:6]} by coder/ada" in remote_claims
