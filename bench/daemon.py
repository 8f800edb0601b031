#!/usr/bin/env python3
"""The daemon's reaction times and memory.

1. Commit-to-reaction: a branch is moved (`git update-ref` to a commit made
   beforehand, in a linked worktree's repository) and the clock stops when the
   daemon's `--json-log` reports a tick that saw the ref move. 200 moves, with the
   reference-transaction hook installed and without it (inotify on the ref files
   only). For scale: a runner that polls every 2 s reacts after 1 s on average.
2. Commit-to-agent-started on a repository of 5,000 files: a task is committed and
   the clock stops when the agent's first command has run in the task's new worktree;
   with a new worktree per task and with a pool of ready ones. Beside it: plain
   `git worktree add` on the same repository, the floor of the unpooled path.
3. The daemon's resident memory (VmRSS) at the end.

    python bench/daemon.py [--moves 200] [--tasks 10]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from common import GIT_ENV, cli

from gitfactory import create
from gitfactory.config.factory_yaml import CONFIG_PATH
from gitfactory.plan import decisions
from gitfactory.store.branch import Change
from gitfactory.store.factory import Factory
from gitfactory.store.git import discover


def git(cwd: Path, *args: str) -> str:
    out = subprocess.run(["git", *args], cwd=cwd, env=GIT_ENV, check=True, capture_output=True)
    return out.stdout.decode().strip()


class Daemon:
    """`gitfactory daemon --json-log` in the background, its ticks timestamped."""

    def __init__(self, repo: Path) -> None:
        self.proc = subprocess.Popen(
            [*cli(), "daemon", "--json-log"], cwd=repo, env=GIT_ENV, text=True,
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        self.ticks: list[tuple[float, dict[str, object]]] = []
        self.cond = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()
        self.wait_for(lambda t: True)

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self.cond:
                self.ticks.append((time.perf_counter(), json.loads(line)))
                self.cond.notify_all()

    def wait_for(self, match: object, since: int = 0, timeout: float = 30) -> float:
        """The time of the first tick after index ``since`` for which ``match`` holds."""
        deadline = time.perf_counter() + timeout
        with self.cond:
            while True:
                for at, tick in self.ticks[since:]:
                    if match(tick):  # type: ignore[operator]
                        return at
                if not self.cond.wait(max(0.0, deadline - time.perf_counter())):
                    raise SystemExit("the daemon did not react in time")

    def rss_mib(self) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return 0.0

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=60)


def new_factory(root: Path, name: str, files: int = 0) -> Factory:
    repo = root / name
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True, env=GIT_ENV)
    for i in range(files):
        d = repo / f"pkg{i // 100}"
        d.mkdir(exist_ok=True)
        (d / f"mod{i}.py").write_text(f"VALUE = {i}\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "project", "--allow-empty")
    factory = Factory(discover(repo))
    create.init(factory, "bench", actor="bench/seed")
    return factory


def reaction(root: Path, moves: int, hook: bool) -> list[float]:
    factory = new_factory(root, f"react-{hook}")
    repo = factory.paths.work_tree
    assert repo is not None
    if hook:
        subprocess.run([*cli(), "hooks", "install"], cwd=repo, check=True, capture_output=True)
    tree = git(repo, "rev-parse", "HEAD^{tree}")
    head = git(repo, "rev-parse", "HEAD")
    commits = [git(repo, "commit-tree", tree, "-p", head, "-m", f"c{i}") for i in range(moves)]
    daemon = Daemon(repo)
    latencies = []
    for i, commit in enumerate(commits):
        ref = f"refs/heads/bench/b{i % 5}"
        since = len(daemon.ticks)
        started = time.perf_counter()
        subprocess.run(["git", "update-ref", ref, commit], cwd=repo, env=GIT_ENV, check=True)
        seen = daemon.wait_for(lambda t, r=ref: r in t["moved"], since)  # type: ignore[index]
        latencies.append((seen - started) * 1000)
        time.sleep(0.02)
    daemon.stop()
    return latencies


def agent_start(root: Path, tasks: int, pool: int) -> tuple[list[float], float, float]:
    factory = new_factory(root, f"start-{pool}", files=5000)
    repo = factory.paths.work_tree
    assert repo is not None
    marks = root / f"marks-{pool}"
    marks.mkdir()
    config = (
        f'protocol: "0.2"\nname: bench\ndispatch:\n  pool: {pool}\n  base: main\n'
        f"agents:\n  bot:\n    role: coder\n"
        f'    command: date +%s.%N > {marks}/"$GITFACTORY_TASK"\n'
        "workflows:\n  default:\n    steps:\n      work:\n        role: coder\n"
    )
    factory.store.write(Change({CONFIG_PATH: config.encode()}, "bench: config",
                               replace=frozenset({CONFIG_PATH})))  # fmt: skip
    daemon = Daemon(repo)
    if pool:
        pool_dir = repo.parent / f"{repo.name}.worktrees" / ".pool"
        deadline = time.monotonic() + 120
        while len(list(pool_dir.glob("idle-*"))) < pool and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(1)
    latencies = []
    for i in range(tasks):
        task = decisions.add(factory, title=f"task {i}", requester="bench/seed")
        started = time.time()
        mark = marks / task.id
        deadline = time.monotonic() + 60
        while not mark.exists() or not mark.read_text().strip():
            if time.monotonic() > deadline:
                raise SystemExit("the agent did not start in time")
            time.sleep(0.002)
        latencies.append((float(mark.read_text()) - started) * 1000)
        # Measure each task on an idle daemon: wait until the run has ended and the
        # pool is full again.
        daemon.wait_for(lambda t, tid=task.id: any(f["task"] == tid for f in t["finished"]))
        time.sleep(1.0 if pool else 0.3)
    rss = daemon.rss_mib()
    daemon.stop()
    starts = json.loads(subprocess.run(
        [*cli(), "log", "--kind", "dispatch.started", "--json"], cwd=repo, env=GIT_ENV,
        check=True, capture_output=True, text=True,
    ).stdout)  # fmt: skip
    workspace = statistics.median(e["data"]["workspace_ms"] for e in starts)
    return latencies, rss, workspace


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--moves", type=int, default=200)
    parser.add_argument("--tasks", type=int, default=10)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="gitfactory-bench-daemon-"))
    try:
        version = sys.version.split()[0]
        print(f"gitfactory daemon benchmark; {os.cpu_count()} cores; Python {version}")
        print(f"\ncommit-to-reaction over {args.moves} ref moves:")
        print(f"{'detection':<28} | {'p50':>8} | {'p99':>8} | {'max':>8}")
        print("-" * 60)
        for hook in (True, False):
            ms = reaction(root, args.moves, hook)
            label = "hook + inotify + reconcile" if hook else "inotify + reconcile (no hook)"
            print(f"{label:<28} | {statistics.median(ms):>5.0f} ms | {pct(ms, 99):>5.0f} ms | "
                  f"{max(ms):>5.0f} ms", flush=True)  # fmt: skip
        print("polling every 2 s (for scale)  |  1000 ms |  1980 ms |  2000 ms")

        print(f"\ncommit-to-agent-started on a 5,000-file repository, {args.tasks} tasks:")
        print(f"{'worktrees':<28} | {'p50':>8} | {'p99':>8} | {'of which workspace':>18} | "
              f"{'daemon RSS':>10}")  # fmt: skip
        print("-" * 83)
        for pool in (0, 2):
            ms, rss, workspace = agent_start(root, args.tasks, pool)
            label = f"pool of {pool}" if pool else "new worktree per task"
            print(f"{label:<28} | {statistics.median(ms):>5.0f} ms | {pct(ms, 99):>5.0f} ms | "
                  f"{workspace:>15.0f} ms | {rss:>6.0f} MiB", flush=True)  # fmt: skip
        repo = root / "start-0"
        adds = []
        for i in range(5):
            started = time.perf_counter()
            git(repo, "worktree", "add", "-q", "--detach", str(root / f"plain-{i}"), "main")
            adds.append((time.perf_counter() - started) * 1000)
        print(f"plain `git worktree add` on the same repository: {statistics.median(adds):.0f} ms")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
