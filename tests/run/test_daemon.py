"""The watcher daemon as a real process: it wakes on commits in any worktree, catches
up on what happened while it was down, runs alone, and stops cleanly."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

from conftest import commit_on_factory, gf, gf_json, git, message_path


def message_file(mid: str, to: str = "human/lead") -> bytes:
    return (f'---\nid: "{mid}"\nfrom: "coder/ada"\nto: ["{to}"]\nsubject: "hello {mid[-4:]}"\n'
            'created: "2026-11-22T10:00:00Z"\n---\n\nfrom a branch\n').encode()


def start_daemon(repo: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "gitfactory", "daemon", "--json-log", *args],
        cwd=repo, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def next_tick(stream: IO[str] | None, timeout: float = 30) -> dict[str, object]:
    assert stream is not None
    os.set_blocking(stream.fileno(), False)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = stream.readline()
        if line:
            tick: dict[str, object] = json.loads(line)
            return tick
        time.sleep(0.02)
    raise AssertionError("the daemon printed no tick in time")


def test_burst_catches_up_on_what_happened_while_it_was_down(factory_repo: Path) -> None:
    r = factory_repo
    mid = "01m80000000000000000000101"
    commit_on_factory(r, {message_path(mid): message_file(mid)}, ref="refs/heads/agent/ada")
    yesterday = {"GITFACTORY_NOW": str(int(time.time() * 1000) - 86_400_000)}
    task = gf_json(r, "task", "add", "Abandoned", env=yesterday)
    gf(r, "task", "claim", task["id"], "--as", "coder/gone", "--lease", "10m", env=yesterday)
    head, status = git(r, "rev-parse", "HEAD"), git(r, "status", "--porcelain")

    # No agent is configured: the task back in the queue is what blocks the burst (exit 4).
    proc = gf(r, "daemon", "--burst", "--json-log", code=4)
    ticks = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [b["cause"] for b in ticks[-1]["blockers"]] == ["agent"]
    assert ticks[0]["delivered"] == 1 and ticks[0]["expired"] == [task["id"]]
    assert "refs/heads/agent/ada" in ticks[0]["moved"]
    assert ticks[-1]["delivered"] == 0 and not ticks[-1]["expired"]  # burst: ends idle
    assert [m["id"] for m in gf_json(r, "mail", "inbox", "--as", "human/lead")] == [mid]
    assert gf_json(r, "task", "show", task["id"])["state"] == "submitted"
    kinds = [e["kind"] for e in gf_json(r, "log")]
    assert kinds.count("daemon.started") == 1 and kinds[-1] == "daemon.stopped"
    assert "task.expired" in kinds
    # The user's checkout was never touched.
    assert git(r, "rev-parse", "HEAD") == head and git(r, "status", "--porcelain") == status
    # A second run has nothing left to do.
    again = [json.loads(x) for x in
             gf(r, "daemon", "--burst", "--json-log", code=4).stdout.splitlines()]
    assert len(again) == 1 and again[0]["delivered"] == 0


def test_a_commit_in_a_linked_worktree_wakes_the_daemon(
    factory_repo: Path, tmp_path: Path
) -> None:
    r = factory_repo
    wt = tmp_path / "agent-wt"
    git(r, "worktree", "add", "-q", "-b", "agent/bo", str(wt))
    # Idle, it would wake on its own only after 10 minutes: only the commit can wake it.
    daemon = start_daemon(r, "--idle-wake", "10m")
    try:
        next_tick(daemon.stdout)  # the first tick: caught up, now waiting
        mid = "01m80000000000000000000102"
        path = wt / message_path(mid)
        path.parent.mkdir(parents=True)
        path.write_bytes(message_file(mid))
        git(wt, "add", ".factory")
        committed = time.monotonic()
        git(wt, "commit", "-qm", "mail from a worktree")
        tick = next_tick(daemon.stdout, timeout=300)
        while not tick["delivered"]:
            tick = next_tick(daemon.stdout, timeout=300)
        reaction = time.monotonic() - committed
        assert "refs/heads/agent/bo" in tick["moved"]
        assert reaction < 600, f"took {reaction:.2f}s"  # the commit itself woke it
        assert [m["id"] for m in gf_json(r, "mail", "inbox", "--as", "human/lead")] == [mid]
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(timeout=30) == 0
    finally:
        daemon.kill()
    assert gf_json(r, "log")[-1]["kind"] == "daemon.stopped"


def test_only_one_daemon_runs_per_repository(factory_repo: Path) -> None:
    daemon = start_daemon(factory_repo)
    try:
        next_tick(daemon.stdout)
        proc = gf(factory_repo, "daemon", "--burst", code=5)
        assert "already runs" in proc.stderr and str(daemon.pid) in proc.stderr
        status = gf_json(factory_repo, "daemon", "status")
        assert status["running"] is True and status["pid"] == daemon.pid
        assert status["status"]["ticks"] >= 1
        overview = gf_json(factory_repo, "status")["daemon"]
        assert overview["running"] is True and overview["pid"] == daemon.pid
        assert f"daemon    running, pid {daemon.pid}" in gf(factory_repo, "status").stdout
    finally:
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(timeout=30) == 0
    assert gf_json(factory_repo, "daemon", "status")["running"] is False
    assert "daemon    not running" in gf(factory_repo, "status").stdout
    gf(factory_repo, "daemon", "--max-ticks", "1")  # the lock was released


def test_hooks_keep_the_users_hook_working(factory_repo: Path) -> None:
    r = factory_repo
    hooks = r / ".git" / "hooks"
    mine = hooks / "reference-transaction"
    # The user's hook logs every transaction and vetoes any update of refs/heads/frozen.
    mine.write_text(
        "#!/bin/sh\ninput=$(cat)\necho \"$1 $input\" >> \"$(dirname \"$0\")/../mine.log\"\n"
        "if [ \"$1\" = prepared ] && echo \"$input\" | grep -q refs/heads/frozen; then exit 1; fi\n"
    )
    mine.chmod(0o755)
    state = gf_json(r, "hooks", "install")
    assert state["installed"] and state["chained"].endswith("reference-transaction.before-gitfactory")
    assert gf_json(r, "hooks", "install") == state  # idempotent

    wake = r / ".git" / "gitfactory" / "wake"
    wake.unlink(missing_ok=True)
    git(r, "commit", "-qm", "a commit", "--allow-empty")
    assert wake.exists()  # our part ran
    log = (r / ".git" / "mine.log").read_text()
    assert "prepared" in log and "committed" in log and "refs/heads/" in log  # theirs too
    veto = subprocess.run(["git", "branch", "frozen"], cwd=r, capture_output=True, text=True)
    assert veto.returncode != 0  # the user's veto still works through our hook
    assert "frozen" not in git(r, "branch", "--list", "frozen")

    state = gf_json(r, "hooks", "uninstall")
    assert state["installed"] is False and state["chained"] is None
    assert "mine.log" in mine.read_text() and "gitfactory" not in mine.read_text()


def test_hooks_follow_core_hookspath_but_never_write_outside_the_repo(
    factory_repo: Path, tmp_path: Path
) -> None:
    own = factory_repo / ".git" / "my-hooks"
    git(factory_repo, "config", "core.hooksPath", str(own))
    state = gf_json(factory_repo, "hooks", "install")
    assert state["path"] == str(own / "reference-transaction")
    wake = factory_repo / ".git" / "gitfactory" / "wake"
    wake.unlink(missing_ok=True)
    git(factory_repo, "commit", "-qm", "x", "--allow-empty")
    assert wake.exists()
    gf(factory_repo, "hooks", "uninstall")

    # Shared with other repositories (a global hooksPath) or tracked (husky): refused.
    shared = tmp_path / "shared-hooks"
    shared.mkdir()
    (shared / "reference-transaction").write_text("#!/bin/sh\nexit 0\n")
    git(factory_repo, "config", "core.hooksPath", str(shared))
    proc = gf(factory_repo, "hooks", "install", code=1)
    assert "outside this repository's git dir" in proc.stderr and "wake" in proc.stderr
    assert sorted(p.name for p in shared.iterdir()) == ["reference-transaction"]
    assert (shared / "reference-transaction").read_text() == "#!/bin/sh\nexit 0\n"


def test_a_failed_install_leaves_the_users_hook_in_place(factory_repo: Path) -> None:
    hooks = factory_repo / ".git" / "hooks"
    hook = hooks / "reference-transaction"
    hook.write_text("#!/bin/sh\nexit 0\n")
    hook.chmod(0o755)
    (hooks / ".reference-transaction.gitfactory.tmp").mkdir()  # the write will fail
    proc = gf(factory_repo, "hooks", "install", code=1)
    assert "cannot install the hook" in proc.stderr
    assert hook.read_text() == "#!/bin/sh\nexit 0\n"
    assert not (hooks / "reference-transaction.before-gitfactory").exists()


def test_a_stale_pid_file_is_not_a_daemon(factory_repo: Path) -> None:
    stranger = subprocess.Popen(["sleep", "60"])
    try:
        (factory_repo / ".git" / "gitfactory" / "daemon.pid").write_text(f"{stranger.pid}\n")
        assert gf_json(factory_repo, "daemon", "status")["running"] is False
        gf(factory_repo, "daemon", "stop")
        assert stranger.poll() is None  # never signalled
    finally:
        stranger.kill()
        stranger.wait()


def test_background_daemon_agents_gc_and_systemd_unit(factory_repo: Path, tmp_path: Path) -> None:
    r = factory_repo
    config = (
        'protocol: "0.2"\nname: test\ndispatch:\n  worktrees: ../wt\n'
        "agents:\n  ada:\n    role: coder\n    command: echo hi > out.txt\n"
        "    on_uncommitted: fail\n"
        "workflows:\n  default:\n    steps:\n      work:\n        role: coder\n"
    )
    commit_on_factory(r, {".factory/factory.yaml": config.encode()})
    assert gf_json(r, "agents") == [{"agent": "coder/ada", "preset": "command", "running": None}]
    started = gf_json(r, "daemon", "start")
    try:
        assert gf_json(r, "daemon", "status")["pid"] == started["pid"]
        task = gf_json(r, "task", "add", "Say hi")["id"]
        deadline = time.monotonic() + 30
        while not gf_json(r, "log", "--kind", "worktree.kept") and time.monotonic() < deadline:
            time.sleep(0.2)
        # The command exits 0 but leaves out.txt uncommitted, and its agent says not to
        # commit that for it: the step fails, and the worktree with the work is kept.
        assert gf_json(r, "task", "show", task)["state"] == "failed"
        [kept] = gf_json(r, "log", "--kind", "worktree.kept")
        assert kept["task"] == task
    finally:
        assert gf_json(r, "daemon", "stop")["stopped"] is True
    assert "daemon.log" in os.listdir(r / ".git" / "gitfactory")
    assert gf_json(r, "daemon", "status")["running"] is False
    # `gc` keeps the worktree holding uncommitted work, and says so.
    assert [Path(p).name[:8] for p in gf_json(r, "gc")["kept"]] == [task[:8]]
    assert gf_json(r, "gc", "--runs-older-than", "0s")["runs_deleted"] == 1
    assert not any((r / ".git" / "gitfactory" / "runs").iterdir())

    env = {"XDG_CONFIG_HOME": str(tmp_path / "xdg")}
    unit = gf_json(r, "daemon", "install-systemd", env=env)
    text = Path(unit["path"]).read_text()
    assert f"WorkingDirectory={r}" in text and "daemon" in text.split("ExecStart=")[1]
    assert unit["enable"].endswith(unit["unit"])


def test_the_watcher_sees_worktrees_added_after_the_last_one_went(
    factory_repo: Path, tmp_path: Path
) -> None:
    from gitfactory.run.watch import Watcher
    from gitfactory.store.git import discover

    r = factory_repo
    watcher = Watcher(discover(r))
    watcher.start()
    try:
        git(r, "worktree", "add", "-q", "--detach", str(tmp_path / "first"))
        git(r, "worktree", "remove", str(tmp_path / "first"))  # git deletes worktrees/
        assert not (r / ".git" / "worktrees").exists()
        git(r, "worktree", "add", "-q", "--detach", str(tmp_path / "second"))
        # Its worktrees/ folder is watched again once the watcher saw it made: from then
        # on, a commit there wakes it (no hook: inotify alone). Commit until one does.
        deadline = time.monotonic() + 120
        woken = False
        while not woken and time.monotonic() < deadline:
            watcher.wait(0)  # what the adding, or the last commit, stirred
            git(tmp_path / "second", "commit", "-qm", "on a detached HEAD", "--allow-empty")
            woken = watcher.wait(1)
        assert woken
    finally:
        watcher.stop()
