#!/usr/bin/env python3
"""One factory on several clones, through a `git daemon` on 127.0.0.1.

1. Commit-on-A to visible-on-B: a note is appended on clone A (the clock starts when
   `log append` returns) and the clock stops when B's factory branch holds it. Both
   clones run `gitfactory daemon`; A's pushes what lands, B's fetches on its timer
   (every `sync.interval`, every second while records flow). At the default
   interval (5 s) and at 1 s. Beside it: plain git doing the same job, a commit and
   `git push` on A, `git fetch` every second on B.
2. Claims confirmed per second: three clones race through the same ready tasks with
   `gitfactory next` (each claim is pushed to the remote before it counts). Beside
   it: plain git claiming by committing a claim file and pushing it (a rejected push:
   fetch, reset, try the next task).
3. Sync cost at 100,000 records: one record came in (A wrote it and pushed it);
   `gitfactory sync` on B, as a library call and as the CLI; beside it, `git pull
   --ff-only` in a plain checkout of the same 100,000 files.

Medians and percentiles are of this one run.

    python bench/sync.py [--samples 30] [--records 100000] [--tasks 60]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from common import GIT_ENV, cli

from gitfactory import create
from gitfactory.plan import sharing
from gitfactory.store import log, records
from gitfactory.store.branch import Change
from gitfactory.store.factory import Factory
from gitfactory.store.git import discover
from gitfactory.store.log import Draft

DAY_MS = 86_400_000


def git(cwd: Path, *args: str) -> str:
    out = subprocess.run(["git", *args], cwd=cwd, env=GIT_ENV, check=True, capture_output=True)
    return out.stdout.decode().strip()


def gf(cwd: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*cli(), *args], cwd=cwd, env=GIT_ENV, input=stdin, text=True,
                          capture_output=True, check=False)  # fmt: skip


class GitDaemon:
    def __init__(self, base: Path) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.proc = subprocess.Popen(
            ["git", "daemon", "--reuseaddr", "--export-all", "--enable=receive-pack",
             f"--base-path={base}", "--listen=127.0.0.1", f"--port={self.port}", str(base)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        raise SystemExit("git daemon did not start")

    def url(self, name: str) -> str:
        return f"git://127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)


def shared(root: Path, served: Path, url_of: GitDaemon, name: str, clones: int,
           sync_yaml: str) -> list[Path]:  # fmt: skip
    """A bare remote and ``clones`` clones of one factory, the first with ``sync_yaml``."""
    git(served, "init", "-q", "--bare", f"{name}.git")
    url = url_of.url(f"{name}.git")
    first = root / f"{name}-0"
    git(root, "init", "-q", "-b", "main", str(first))
    git(first, "commit", "-q", "--allow-empty", "-m", "first")
    git(first, "remote", "add", "origin", url)
    git(first, "push", "-q", "origin", "main")
    gf(first, "init", "--name", name)
    text = git(first, "show", "factory:.factory/factory.yaml")
    text = text.replace("\n# sync:\n", f"\nsync:\n{sync_yaml}", 1)
    text += (
        "\n  quick:\n    steps:\n      implement:\n        role: coder\n        on_success: done\n"
    )
    edited = gf(first, "config", "edit", "--file", "-", stdin=text)
    assert edited.returncode == 0, edited.stderr
    assert gf(first, "sync").returncode == 0
    out = [first]
    for n in range(1, clones):
        git(root, "clone", "-q", url, str(root / f"{name}-{n}"))
        assert gf(root / f"{name}-{n}", "sync").returncode == 0
        out.append(root / f"{name}-{n}")
    return out


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


# -- 1. latency ---------------------------------------------------------------------------


def holds(repo: Path, path: str) -> bool:
    return subprocess.run(["git", "cat-file", "-e", f"factory:{path}"], cwd=repo,
                          env=GIT_ENV, capture_output=True).returncode == 0  # fmt: skip


def latency(
    root: Path, served: Path, daemon: GitDaemon, interval: str, samples: int
) -> list[float]:
    a, b = shared(
        root, served, daemon, f"lat{interval}", 2, f"  remote: origin\n  interval: {interval}\n"
    )
    procs = [subprocess.Popen([*cli(), "daemon"], cwd=c, env=GIT_ENV, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL) for c in (a, b)]  # fmt: skip
    time.sleep(3)
    out = []
    try:
        for i in range(samples):
            time.sleep(0.3 + (i * 0.37) % 1.1)  # out of step with the timers
            proc = gf(a, "log", "append", "note", f"sample {i}")
            started = time.perf_counter()
            path = records.EVENT.path(proc.stdout.strip())
            deadline = started + 60
            while not holds(b, path):
                if time.perf_counter() > deadline:
                    raise SystemExit("a note did not reach the other clone in 60 s")
                time.sleep(0.01)
            out.append((time.perf_counter() - started) * 1000)
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(timeout=120)
    return out


def plain_latency(root: Path, served: Path, daemon: GitDaemon, samples: int) -> list[float]:
    git(served, "init", "-q", "--bare", "plainlat.git")
    url = daemon.url("plainlat.git")
    a, b = root / "plain-a", root / "plain-b"
    git(root, "init", "-q", "-b", "main", str(a))
    git(a, "commit", "-q", "--allow-empty", "-m", "first")
    git(a, "push", "-q", url, "main")
    git(root, "clone", "-q", "--branch", "main", url, str(b))
    stop = threading.Event()

    def poll() -> None:
        while not stop.is_set():
            subprocess.run(["git", "pull", "-q", "--ff-only"], cwd=b, env=GIT_ENV,
                           capture_output=True)  # fmt: skip
            stop.wait(1.0)

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    out = []
    for i in range(samples):
        time.sleep(0.3 + (i * 0.37) % 1.1)
        (a / f"note-{i}").write_text(f"sample {i}\n")
        git(a, "add", f"note-{i}")
        git(a, "commit", "-qm", f"sample {i}")
        started = time.perf_counter()  # committed on A, as `log append` returning is
        git(a, "push", "-q", url, "main")
        deadline = started + 60
        while not (b / f"note-{i}").exists():
            if time.perf_counter() > deadline:
                raise SystemExit("plain git: a commit did not reach the other clone in 60 s")
            time.sleep(0.01)
        out.append((time.perf_counter() - started) * 1000)
    stop.set()
    poller.join()
    return out


# -- 2. claims ------------------------------------------------------------------------------


RACER = r"""
import subprocess, sys
ids, cmd, agent = open(sys.argv[1]).read().split(), sys.argv[2:-1], sys.argv[-1]
won = 0
for task in ids:
    p = subprocess.run([*cmd, "task", "claim", task, "--as", agent], capture_output=True)
    won += p.returncode == 0
print(won)
"""


def claims(root: Path, served: Path, daemon: GitDaemon, tasks: int) -> tuple[float, int]:
    clones = shared(root, served, daemon, "claims", 3, "  remote: origin\n")
    ids = [gf(clones[0], "task", "add", f"task {i}", "--workflow", "quick").stdout.strip()
           for i in range(tasks)]  # fmt: skip
    (root / "ids.txt").write_text("\n".join(ids))
    for c in clones:
        gf(c, "sync")
    racer = root / "racer.py"
    racer.write_text(RACER)
    started = time.perf_counter()
    procs = [subprocess.Popen([sys.executable, str(racer), str(root / "ids.txt"), *cli(),
                               f"coder/c{n}"], cwd=c,
                              env=GIT_ENV, stdout=subprocess.PIPE, text=True)
             for n, c in enumerate(clones)]  # fmt: skip
    won = sum(int(p.communicate()[0].strip() or 0) for p in procs)
    return won / (time.perf_counter() - started), won


PLAIN_RACER = r"""
import os, subprocess, sys
tasks, me = int(sys.argv[1]), sys.argv[2]
def git(*a):
    return subprocess.run(["git", *a], capture_output=True)
won = 0
for t in range(tasks):
    git("fetch", "-q", "origin")
    git("reset", "-q", "--hard", "origin/main")
    if os.path.exists(f"claims/{t}"):
        continue
    os.makedirs("claims", exist_ok=True)
    open(f"claims/{t}", "w").write(me)
    git("add", f"claims/{t}")
    git("commit", "-qm", f"claim {t}")
    if git("push", "-q", "origin", "HEAD:main").returncode == 0:
        won += 1
print(won)
"""


def plain_claims(root: Path, served: Path, daemon: GitDaemon, tasks: int) -> tuple[float, int]:
    git(served, "init", "-q", "--bare", "plainclaims.git")
    url = daemon.url("plainclaims.git")
    seed = root / "pc-seed"
    git(root, "init", "-q", "-b", "main", str(seed))
    git(seed, "commit", "-q", "--allow-empty", "-m", "first")
    git(seed, "push", "-q", url, "main")
    clones = []
    for n in range(3):
        git(root, "clone", "-q", "--branch", "main", url, str(root / f"pc-{n}"))
        clones.append(root / f"pc-{n}")
    racer = root / "plain_racer.py"
    racer.write_text(PLAIN_RACER)
    started = time.perf_counter()
    procs = [subprocess.Popen([sys.executable, str(racer), str(tasks), f"c{n}"], cwd=c,
                              env=GIT_ENV, stdout=subprocess.PIPE, text=True)
             for n, c in enumerate(clones)]  # fmt: skip
    won = sum(int(p.communicate()[0].strip() or 0) for p in procs)
    return won / (time.perf_counter() - started), won


# -- 3. sync cost at scale ---------------------------------------------------------------


def seeded(root: Path, url: str, n: int) -> Path:
    repo = root / "big-a"
    git(root, "init", "-q", "-b", "main", str(repo))
    git(repo, "commit", "-q", "--allow-empty", "-m", "first")
    git(repo, "remote", "add", "origin", url)
    git(repo, "push", "-q", "origin", "main")
    factory = Factory(discover(repo))
    create.init(factory, "big", actor="bench/seed")
    start = time.time_ns() // 1_000_000 - 30 * DAY_MS
    step = max(1, 30 * DAY_MS // max(n, 1))
    draft = Draft(kind="bench.seed", actor="bench/seed", text="seed record")
    events = [log.stamp(draft, now_ms=start + i * step) for i in range(n)]
    for i in range(0, n, 20_000):
        chunk = events[i : i + 20_000]
        factory.store.write(Change({e.path: records.encode(e.to_record()) for e in chunk},
                                   "bench: seed"))  # fmt: skip
    git(repo, "gc", "-q")
    sharing.sync(factory, "origin")
    return repo


def sync_cost(root: Path, served: Path, daemon: GitDaemon, n: int, rounds: int) -> dict[str, float]:
    git(served, "init", "-q", "--bare", "big.git")
    url = daemon.url("big.git")
    a = seeded(root, url, n)
    b = root / "big-b"
    git(root, "clone", "-q", url, str(b))
    fa, fb = Factory(discover(a)), Factory(discover(b))
    sharing.sync(fb, "origin")
    fb.index.refresh()
    # the same records as plain files in a checkout, and a second checkout pulling
    plain_a, plain_b = root / "plain-big-a", root / "plain-big-b"
    git(root, "clone", "-q", "--branch", "factory", url, str(plain_a))
    git(plain_a, "checkout", "-q", "-b", "plain")
    git(plain_a, "push", "-q", "origin", "plain")
    git(root, "clone", "-q", "--branch", "plain", url, str(plain_b))
    lib, cli_ms, plain = [], [], []
    for i in range(rounds):
        log.append(fa, [log.stamp(Draft(kind="note", actor="bench/a", text=f"one more {i}"))])
        sharing.sync(fa, "origin")
        started = time.perf_counter()
        outcome = sharing.sync(fb, "origin")
        lib.append((time.perf_counter() - started) * 1000)
        assert outcome.report.received == {"event": 1}, outcome.report
        log.append(fa, [log.stamp(Draft(kind="note", actor="bench/a", text=f"and one {i}"))])
        sharing.sync(fa, "origin")
        started = time.perf_counter()
        proc = gf(b, "sync", "--json")
        cli_ms.append((time.perf_counter() - started) * 1000)
        assert json.loads(proc.stdout)["received"] == {"event": 1}, proc.stdout
        (plain_a / f"one-{i}").write_text("one more\n")
        git(plain_a, "add", f"one-{i}")
        git(plain_a, "commit", "-qm", "one more")
        git(plain_a, "push", "-q", "origin", "plain")
        started = time.perf_counter()
        git(plain_b, "pull", "-q", "--ff-only")
        plain.append((time.perf_counter() - started) * 1000)
    return {"lib": statistics.median(lib), "cli": statistics.median(cli_ms),
            "plain": statistics.median(plain)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=30)
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--tasks", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--parts", default="1,2,3", help="which measures to run")
    args = parser.parse_args()
    parts = set(args.parts.split(","))
    root = Path(tempfile.mkdtemp(prefix="gitfactory-bench-sync-"))
    served = root / "served"
    served.mkdir()
    daemon = GitDaemon(served)
    try:
        version = sys.version.split()[0]
        print(f"gitfactory sync benchmark; {os.cpu_count()} cores; Python {version}; "
              "remote: git daemon on 127.0.0.1")  # fmt: skip
        if "1" in parts:
            _latencies(root, served, daemon, args.samples)
        if "2" in parts:
            _claims(root, served, daemon, args.tasks)
        if "3" in parts:
            _cost(root, served, daemon, args.records, args.rounds)
    finally:
        daemon.stop()
        shutil.rmtree(root, ignore_errors=True)


def _latencies(root: Path, served: Path, daemon: GitDaemon, samples: int) -> None:
    print(f"\n1. commit on A to visible on B, {samples} samples:")
    print(f"{'how':<44} | {'p50':>8} | {'p99':>8}")
    print("-" * 68)
    for interval in ("5s", "1s"):
        ms = latency(root, served, daemon, interval, samples)
        label = f"gitfactory daemons, sync.interval {interval}"
        print(f"{label:<44} | {statistics.median(ms):>5.0f} ms | {pct(ms, 99):>5.0f} ms",
              flush=True)  # fmt: skip
    ms = plain_latency(root, served, daemon, samples)
    label = "plain git: commit+push; pull every 1 s"
    print(f"{label:<44} | {statistics.median(ms):>5.0f} ms | {pct(ms, 99):>5.0f} ms", flush=True)


def _claims(root: Path, served: Path, daemon: GitDaemon, tasks: int) -> None:
    print(f"\n2. claims confirmed per second, 3 clones racing through the same {tasks} tasks:")
    print(f"{'how':<44} | {'claims/s':>8} | {'won':>5}")
    print("-" * 64)
    rate, won = claims(root, served, daemon, tasks)
    print(f"{'gitfactory task claim (pushed to count)':<44} | {rate:>8.1f} | {won:>5}")
    rate, won = plain_claims(root, served, daemon, tasks)
    print(f"{'plain git: commit a claim file, push':<44} | {rate:>8.1f} | {won:>5}", flush=True)


def _cost(root: Path, served: Path, daemon: GitDaemon, records_n: int, rounds: int) -> None:
    print(f"\n3. sync when one record came in, {records_n:,} records, median of {rounds}:")
    cost = sync_cost(root, served, daemon, records_n, rounds)
    print(f"{'how':<44} | {'median':>8}")
    print("-" * 56)
    print(f"{'gitfactory sync (library call)':<44} | {cost['lib']:>5.0f} ms")
    print(f"{'gitfactory sync (CLI process)':<44} | {cost['cli']:>5.0f} ms")
    print(f"{'plain git pull --ff-only (checkout)':<44} | {cost['plain']:>5.0f} ms")


if __name__ == "__main__":
    main()
