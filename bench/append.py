#!/usr/bin/env python3
"""Append throughput of the factory store, next to plain git doing the same job.

For 100, 10,000 and 100,000 existing records it measures records/s for
  - gitfactory, one record per commit (library call: lock, build, CAS, commit);
  - gitfactory, grouped commits of 100 records;
  - plain git, one record per commit (write the file, `git add`, `git commit`);
  - plain git, 100 records per commit.
Then the CLI: `gitfactory --version`, `gitfactory log --limit 20` with a warm index
at the largest size, and one `gitfactory log append`.

Each figure is the median of several rounds measured in this one run; the existing
records are spread over 30 days of ids, as a real log would be.

    python bench/append.py [--sizes 100,10000,100000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from gitfactory import log, records
from gitfactory.factory import Factory
from gitfactory.git import discover
from gitfactory.log import Draft
from gitfactory.store import Change

DAY_MS = 86_400_000
GIT_ENV = {
    **os.environ,
    "GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@example.com",
    "GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "bench@example.com",
    "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull,
}  # fmt: skip


def git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=cwd, env=GIT_ENV, check=True, capture_output=True)


def old_events(n: int) -> list[log.Event]:
    """n valid events whose ids are spread evenly over the last 30 days."""
    start = time.time_ns() // 1_000_000 - 30 * DAY_MS
    step = max(1, 30 * DAY_MS // max(n, 1))
    draft = Draft(kind="bench.seed", actor="bench/seed", text="seed record")
    return [log.stamp(draft, now_ms=start + i * step) for i in range(n)]


def seeded_factory(root: Path, events: list[log.Event]) -> Factory:
    repo = root / "gf"
    git(root, "init", "-q", str(repo))
    factory = Factory(discover(repo))
    factory.init("bench", actor="bench/seed")
    for i in range(0, len(events), 20_000):
        chunk = events[i : i + 20_000]
        factory.store.write(
            Change({e.path: records.encode(e.to_record()) for e in chunk}, "bench: seed")
        )
    return factory


def seeded_plain_repo(root: Path, events: list[log.Event]) -> Path:
    repo = root / "plain"
    git(root, "init", "-q", str(repo))
    for e in events:
        path = repo / e.path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(records.encode(e.to_record()))
    (repo / "seed").write_text("seed\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "seed")
    return repo


def settle(repo: Path) -> None:
    """Wait for a background `git gc` to finish, then pack: a steady-state repository."""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        proc = subprocess.run(["git", "gc", "-q"], cwd=repo, env=GIT_ENV, capture_output=True)
        if proc.returncode == 0:
            return
        time.sleep(0.5)  # "gc is already running": the one gitfactory started
    raise RuntimeError(f"git gc did not finish in {repo}")


def rate(n: int, seconds: float) -> float:
    return n / seconds if seconds > 0 else float("inf")


def gitfactory_rates(factory: Factory, batch: int, commits: int, rounds: int) -> float:
    draft = Draft(kind="bench.append", actor="bench/writer", text="appended")
    results = []
    for _ in range(rounds):
        started = time.perf_counter()
        for _ in range(commits):
            log.append(factory, [log.stamp(draft) for _ in range(batch)])
        results.append(rate(batch * commits, time.perf_counter() - started))
    return statistics.median(results)


def plain_git_rates(repo: Path, batch: int, commits: int, rounds: int) -> float:
    draft = Draft(kind="bench.append", actor="bench/writer", text="appended")
    results = []
    for _ in range(rounds):
        started = time.perf_counter()
        for _ in range(commits):
            paths = []
            for _ in range(batch):
                event = log.stamp(draft)
                path = repo / event.path
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(records.encode(event.to_record()))
                paths.append(event.path)
            git(repo, "add", "--", *paths)
            git(repo, "commit", "-qm", "append")
        results.append(rate(batch * commits, time.perf_counter() - started))
    return statistics.median(results)


def cli() -> list[str]:
    script = Path(sys.executable).with_name("gitfactory")
    return [str(script)] if script.exists() else [sys.executable, "-m", "gitfactory"]


def cli_median_ms(args: list[str], cwd: Path, runs: int = 11) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run([*cli(), *args], cwd=cwd, check=True, capture_output=True)
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="100,10000,100000")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    print(f"gitfactory append benchmark: median of {args.rounds} rounds; "
          f"{os.cpu_count()} cores; {sys.version.split()[0]}", flush=True)
    print(f"{'existing':>9} | {'gf 1/commit':>12} | {'gf 100/commit':>13} | "
          f"{'git 1/commit':>12} | {'git 100/commit':>14} | {'gf/git 1':>8} | {'gf/git 100':>10}")
    print("-" * 97)
    per_record: dict[int, float] = {}
    last_factory = None
    root = Path(tempfile.mkdtemp(prefix="gitfactory-bench-"))
    try:
        for size in sizes:
            work = root / str(size)
            work.mkdir()
            seed = old_events(size)
            factory = seeded_factory(work, seed)
            plain = seeded_plain_repo(work, seed)
            assert factory.paths.work_tree is not None
            settle(factory.paths.work_tree)
            settle(plain)
            gf_one = gitfactory_rates(factory, 1, 200, args.rounds)
            gf_many = gitfactory_rates(factory, 100, 10, args.rounds)
            git_commits = 20 if size < 50_000 else 5
            git_one = plain_git_rates(plain, 1, git_commits, max(3, args.rounds // 2))
            git_many = plain_git_rates(plain, 100, 3, max(3, args.rounds // 2))
            per_record[size] = 1 / gf_one
            print(f"{size:>9,} | {gf_one:>10,.0f}/s | {gf_many:>11,.0f}/s | "
                  f"{git_one:>10,.1f}/s | {git_many:>12,.0f}/s | {gf_one / git_one:>7,.0f}x | "
                  f"{gf_many / git_many:>9,.1f}x", flush=True)
            if last_factory is not None:
                shutil.rmtree(last_factory.paths.work_tree or "", ignore_errors=True)
            last_factory = factory
            shutil.rmtree(plain, ignore_errors=True)
        small, large = min(per_record), max(per_record)
        print(f"\ncost per record, one per commit: {per_record[large] * 1000:.2f} ms at "
              f"{large:,} vs {per_record[small] * 1000:.2f} ms at {small:,} "
              f"({per_record[large] / per_record[small]:.2f}x)")
        assert last_factory is not None
        repo = last_factory.paths.work_tree
        assert repo is not None
        subprocess.run([*cli(), "log", "--limit", "1"], cwd=repo, check=True,
                       capture_output=True)  # warm the index
        version = cli_median_ms(["--version"], repo)
        query = cli_median_ms(["log", "--limit", "20"], repo)
        append = cli_median_ms(["log", "append", "note", "bench"], repo)
        print(f"CLI (median of 11 runs): gitfactory --version {version:.0f} ms; "
              f"gitfactory log --limit 20 at {large:,}+ records, warm index {query:.0f} ms; "
              f"gitfactory log append {append:.0f} ms")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
