#!/usr/bin/env python3
"""Append throughput of the factory store, next to plain git doing the same job.

For 100, 10,000 and 100,000 existing records it measures records/s for
  - gitfactory, one record per commit (library call: lock, build, CAS, commit);
  - gitfactory, grouped commits of 100 records;
  - plain git, one record per commit (write the file, `git add`, `git commit`);
  - plain git, 100 records per commit.
Then the CLI: `gitfactory --version`, `gitfactory log --limit 20` with a warm index
at the largest size, and one `gitfactory log append`.

Each figure is the median of several rounds measured in this one run, after one
uncounted warm-up round; before measuring, both repositories are packed with
`git gc` (a settled repository). The existing records are spread over 30 days of
ids, as a real log would be. Also printed: what creating one small file costs on
this disk, since every git object written loose is one such file.

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

from common import GIT_ENV, cli, median_ms

from gitfactory import create
from gitfactory.store import log, records
from gitfactory.store.branch import Change
from gitfactory.store.factory import Factory
from gitfactory.store.git import discover
from gitfactory.store.log import Draft

DAY_MS = 86_400_000


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
    create.init(factory, "bench", actor="bench/seed")
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


def gitfactory_round(factory: Factory, batch: int, commits: int) -> float:
    draft = Draft(kind="bench.append", actor="bench/writer", text="appended")
    started = time.perf_counter()
    for _ in range(commits):
        log.append(factory, [log.stamp(draft) for _ in range(batch)])
    return rate(batch * commits, time.perf_counter() - started)


def plain_git_round(repo: Path, batch: int, commits: int) -> float:
    draft = Draft(kind="bench.append", actor="bench/writer", text="appended")
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
    return rate(batch * commits, time.perf_counter() - started)


def file_create_us(directory: Path, n: int = 300) -> float:
    """Median cost of creating, writing and renaming a small file: one loose object."""
    times = []
    for i in range(n):
        started = time.perf_counter()
        tmp = directory / f"tmp{i}"
        with open(tmp, "wb") as fh:
            fh.write(b"x" * 64)
        os.rename(tmp, directory / f"obj{i}")
        times.append((time.perf_counter() - started) * 1e6)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="100,10000,100000")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    probe = Path(tempfile.mkdtemp(prefix="gitfactory-bench-fs-"))
    create = file_create_us(probe)
    shutil.rmtree(probe)
    print(
        f"gitfactory append benchmark: median of {args.rounds} rounds; "
        f"{os.cpu_count()} cores; Python {sys.version.split()[0]}; "
        f"creating one small file costs {create:.0f} us here",
        flush=True,
    )
    root = Path(tempfile.mkdtemp(prefix="gitfactory-bench-"))
    try:
        setups = {}
        for size in sizes:
            work = root / str(size)
            work.mkdir()
            seed = old_events(size)
            factory = seeded_factory(work, seed)
            plain = seeded_plain_repo(work, seed)
            assert factory.paths.work_tree is not None
            settle(factory.paths.work_tree)
            settle(plain)
            setups[size] = (factory, plain)
            print(f"  seeded {size:,} records", file=sys.stderr, flush=True)
        os.sync()
        # Rounds go round-robin over the sizes, so that the disk's slow and fast
        # moments fall on every size alike; round 0 is a warm-up and is not counted.
        results: dict[tuple[int, str], list[float]] = {}
        for round_no in range(args.rounds + 1):
            for size, (factory, plain) in setups.items():
                git_commits = 10 if size < 50_000 else 3
                measured = {
                    "gf1": gitfactory_round(factory, 1, 100),
                    "gf100": gitfactory_round(factory, 100, 5),
                    "git1": plain_git_round(plain, 1, git_commits),
                    "git100": plain_git_round(plain, 100, 2),
                }
                if round_no:
                    for key, value in measured.items():
                        results.setdefault((size, key), []).append(value)
            print(f"  round {round_no} done", file=sys.stderr, flush=True)
        print(
            f"{'existing':>9} | {'gf 1/commit':>12} | {'gf 100/commit':>13} | "
            f"{'git 1/commit':>12} | {'git 100/commit':>14} | {'gf/git 1':>8} | "
            f"{'gf/git 100':>10}"
        )
        print("-" * 97)
        per_record: dict[int, float] = {}
        for size in sizes:
            gf_one, gf_many, git_one, git_many = (
                statistics.median(results[(size, key)])
                for key in ("gf1", "gf100", "git1", "git100")
            )
            per_record[size] = 1 / gf_one
            print(
                f"{size:>9,} | {gf_one:>10,.0f}/s | {gf_many:>11,.0f}/s | "
                f"{git_one:>10,.1f}/s | {git_many:>12,.0f}/s | {gf_one / git_one:>7,.0f}x | "
                f"{gf_many / git_many:>9,.1f}x",
                flush=True,
            )
        small, large = min(per_record), max(per_record)
        print(
            f"\ncost per record, one per commit: {per_record[large] * 1000:.2f} ms at "
            f"{large:,} vs {per_record[small] * 1000:.2f} ms at {small:,} "
            f"({per_record[large] / per_record[small]:.2f}x)"
        )
        repo = setups[large][0].paths.work_tree
        assert repo is not None
        subprocess.run(
            [*cli(), "log", "--limit", "1"], cwd=repo, check=True, capture_output=True
        )  # warm the index
        version = median_ms([*cli(), "--version"], repo)
        query = median_ms([*cli(), "log", "--limit", "20"], repo)
        append = median_ms([*cli(), "log", "append", "note", "bench"], repo)
        print(
            f"CLI (median of 11 runs): gitfactory --version {version:.0f} ms; "
            f"gitfactory log --limit 20 at {large:,}+ records, warm index {query:.0f} ms; "
            f"gitfactory log append {append:.0f} ms"
        )
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
