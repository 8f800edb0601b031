#!/usr/bin/env python3
"""The integrity check (`gitfactory verify`), next to plain git doing the same job.

For 10,000 and 100,000 existing records, written as group commits of 100 records
(100,000 records: 1,000 commits), it measures
  - a full verify, in-process: `integrity.check(factory, full=True)`, which diffs
    every commit against its parents; beside it plain git's
    `git log --format=%H --diff-filter=DMT --name-only -m factory -- .factory`,
    which finds the same deletions and changes over the whole history;
  - an incremental verify after one new commit holding one new record, in-process:
    `integrity.check(factory)` with the state file of the previous check present
    (the daemon's cost per tick; the target is <= 50 ms at 100,000 records);
    beside it `git diff-tree -r --no-renames --diff-filter=DMT --name-only <old>
    <new> -- .factory` on the same commit;
  - the same incremental verify through the CLI: the wall time of
    `gitfactory verify --json` as a subprocess, Python start and imports included;
    with Python's bytecode cache (kept in a private PYTHONPYCACHEPREFIX, so nothing
    is written beside the sources) whatever PYTHONDONTWRITEBYTECODE says here, as an
    installed CLI runs.
The one-record commit before each incremental round is not timed. Plain git's
figures are always the wall time of a subprocess (its start included).

Each figure is the median of several rounds measured in this one run, after one
uncounted warm-up round; the rounds go round-robin over the sizes, and before
measuring each repository is packed with `git gc` (a settled repository). The
records' ids are spread over 30 days, as a real log's would be (so they fill the
time-sharded directories as a real log does). Last, once per size
and after the timings, a correctness check: a commit made with plain git plumbing
(hooks off) deletes 3 records, and both the incremental and the full check must
report exactly those 3 (and plain git's full walk name the same 3).

    python bench/verify.py [--sizes 10000,100000] [--rounds 5]
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
import time
from pathlib import Path

from append import DAY_MS, settle
from common import GIT_ENV, cli

from gitfactory import create
from gitfactory.store import integrity, log, records
from gitfactory.store.branch import Change
from gitfactory.store.factory import Factory
from gitfactory.store.git import discover
from gitfactory.store.log import Draft

GROUP = 100  # records per seeding commit
TARGET_MS = 50.0  # the incremental check at TARGET_SIZE records (the daemon's tick)
TARGET_SIZE = 100_000
NO_HOOKS = ("-c", "core.hooksPath=/dev/null")


def git(cwd: Path, *args: str, env: dict[str, str] | None = None) -> str:
    out = subprocess.run(
        ["git", *args], cwd=cwd, env=env or GIT_ENV, check=True, capture_output=True
    )
    return out.stdout.decode().strip()


def timed_ms(cmd: list[str], cwd: Path, env: dict[str, str] | None = None) -> tuple[float, str]:
    """Wall time of running ``cmd`` in ``cwd`` (it must succeed), and its output."""
    started = time.perf_counter()
    out = subprocess.run(cmd, cwd=cwd, env=env or GIT_ENV, check=True, capture_output=True)
    return (time.perf_counter() - started) * 1000, out.stdout.decode()


def seed_events(sizes: list[int]) -> dict[int, list[log.Event]]:
    """For each size, that many events with ids spread evenly over the last 30 days.

    All stamped at once, in time order, before anything else in this process is:
    ids are monotonic per process, so a time earlier than an id already made is
    clamped to it (append.py's ``old_events`` called again after a factory was
    created would give every record the same millisecond and one directory).
    """
    start = time.time_ns() // 1_000_000 - 30 * DAY_MS
    times = sorted(
        (start + i * max(1, 30 * DAY_MS // size), size) for size in sizes for i in range(size)
    )
    draft = Draft(kind="bench.seed", actor="bench/seed", text="seed record")
    events: dict[int, list[log.Event]] = {size: [] for size in sizes}
    for at, size in times:
        events[size].append(log.stamp(draft, now_ms=at))
    return events


def leaf_max(factory: Factory) -> int:
    """The most records in one directory of the log: a check that ids were spread."""
    prefix = f"{records.FACTORY_DIR}/{records.EVENT.directory}"
    repo = factory.paths.work_tree
    assert repo is not None
    out = git(repo, "ls-tree", "-r", "--name-only", factory.branch, "--", prefix)
    counts: dict[str, int] = {}
    for path in out.splitlines():
        folder = path.rsplit("/", 1)[0]
        counts[folder] = counts.get(folder, 0) + 1
    return max(counts.values())


def seeded_factory(root: Path, events: list[log.Event]) -> Factory:
    """A new factory holding ``events``, written as group commits of GROUP records."""
    repo = root / "gf"
    git(root, "init", "-q", str(repo))
    factory = Factory(discover(repo))
    create.init(factory, "bench", actor="bench/seed")
    for i in range(0, len(events), GROUP):
        chunk = events[i : i + GROUP]
        factory.store.write(
            Change({e.path: records.encode(e.to_record()) for e in chunk}, "bench: seed")
        )
    return factory


def append_one(factory: Factory) -> tuple[str, str]:
    """One new commit holding one new record; (old tip, new tip)."""
    old = factory.require_tip()
    draft = Draft(kind="bench.verify", actor="bench/writer", text="one more")
    commit = log.append(factory, [log.stamp(draft)])
    return old, commit.oid


def full_git_cmd(factory: Factory) -> list[str]:
    return ["git", "log", "--format=%H", "--diff-filter=DMT", "--name-only", "-m",
            factory.branch, "--", records.FACTORY_DIR]  # fmt: skip


def cli_env(pycache: Path) -> dict[str, str]:
    """The CLI's environment: with a bytecode cache, private to this run."""
    env = {k: v for k, v in GIT_ENV.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(pycache)
    return env


def one_round(factory: Factory, repo: Path, env: dict[str, str]) -> dict[str, float]:
    """Every measurement once; asserts the repository is intact throughout."""
    measured: dict[str, float] = {}
    started = time.perf_counter()
    report = integrity.check(factory, full=True)
    measured["gf_full"] = (time.perf_counter() - started) * 1000
    assert report.ok and report.full, report
    measured["commits_full"] = report.commits
    measured["git_full"], out = timed_ms(full_git_cmd(factory), repo)
    assert not [line for line in out.splitlines() if "/" in line], out[:500]

    old, new = append_one(factory)  # not timed
    started = time.perf_counter()
    report = integrity.check(factory)
    measured["gf_incr"] = (time.perf_counter() - started) * 1000
    assert report.ok and not report.full and report.commits == 1, report
    measured["git_incr"], out = timed_ms(
        ["git", "diff-tree", "-r", "--no-renames", "--diff-filter=DMT", "--name-only",
         old, new, "--", records.FACTORY_DIR], repo,
    )  # fmt: skip
    assert not out.strip(), out

    append_one(factory)  # not timed
    measured["cli_incr"], out = timed_ms([*cli(), "verify", "--json"], repo, env)
    found = json.loads(out)
    assert found["ok"] and found["commits_read"] == 1 and not found["full"], found
    return measured


def delete_three(factory: Factory, repo: Path, seed: list[log.Event]) -> tuple[set[str], str]:
    """A plain-git commit (plumbing, hooks off) deleting 3 seeded records; (paths, commit)."""
    paths = {seed[0].path, seed[len(seed) // 2].path, seed[-1].path}
    assert len(paths) == 3
    tip = factory.require_tip()
    with tempfile.TemporaryDirectory(prefix="gitfactory-bench-index-") as tmp:
        env = {**GIT_ENV, "GIT_INDEX_FILE": str(Path(tmp) / "index")}
        git(repo, "read-tree", tip, env=env)
        git(repo, "update-index", "--force-remove", "--", *sorted(paths), env=env)
        tree = git(repo, "write-tree", env=env)
    commit = git(repo, *NO_HOOKS, "commit-tree", tree, "-p", tip, "-m", "stale checkout")
    git(repo, *NO_HOOKS, "update-ref", factory.refname, commit, tip)
    return paths, commit


def correctness(factory: Factory, repo: Path, seed: list[log.Event]) -> None:
    integrity.check(factory)  # the state file at the tip: the next check is incremental
    paths, commit = delete_three(factory, repo, seed)
    incremental = integrity.check(factory)
    assert not incremental.full and incremental.commits == 1, incremental
    full = integrity.check(factory, full=True)
    for report in (incremental, full):
        assert {v.path for v in report.violations} == paths, report.violations
        assert all(v.how == "deleted" and v.commit == commit for v in report.violations)
    _, out = timed_ms(full_git_cmd(factory), repo)
    named = {line for line in out.splitlines() if "/" in line}
    assert named == paths, named


def ms(values: list[float]) -> float:
    return statistics.median(values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    began = time.perf_counter()
    print(
        f"gitfactory verify benchmark: median of {args.rounds} rounds; "
        f"{os.cpu_count()} cores; Python {sys.version.split()[0]}; "
        f"{GROUP} records per seeding commit; load average {os.getloadavg()[0]:.1f}",
        flush=True,
    )
    root = Path(tempfile.mkdtemp(prefix="gitfactory-bench-"))
    try:
        seeds = seed_events(sizes)
        setups = {}
        for size in sizes:
            work = root / str(size)
            work.mkdir()
            started = time.perf_counter()
            seed = seeds[size]
            factory = seeded_factory(work, seed)
            repo = factory.paths.work_tree
            assert repo is not None
            settle(repo)
            setups[size] = (factory, repo, seed)
            print(
                f"  seeded {size:,} records in {time.perf_counter() - started:.0f} s "
                f"(at most {leaf_max(factory):,} in one directory)",
                file=sys.stderr,
                flush=True,
            )
        os.sync()
        env = cli_env(root / "pycache")
        results: dict[tuple[int, str], list[float]] = {}
        for round_no in range(args.rounds + 1):
            for size, (factory, repo, _) in setups.items():
                measured = one_round(factory, repo, env)
                if round_no:  # round 0 is a warm-up
                    for key, value in measured.items():
                        results.setdefault((size, key), []).append(value)
            print(f"  round {round_no} done", file=sys.stderr, flush=True)

        rows = [
            ("full verify, in-process", "gf_full", "git_full"),
            ("incremental, 1 new commit, in-process", "gf_incr", "git_incr"),
            ("incremental, CLI verify --json", "cli_incr", "git_incr"),
        ]
        print(
            f"{'what':<40} | {'size':>8} | {'gitfactory (ms)':>15} | "
            f"{'plain git (ms)':>14} | {'ratio':>6}"
        )
        print("-" * 95)
        for what, gf_key, git_key in rows:
            for size in sizes:
                gf, plain = ms(results[(size, gf_key)]), ms(results[(size, git_key)])
                print(
                    f"{what:<40} | {size:>8,} | {gf:>15,.1f} | {plain:>14,.1f} | "
                    f"{gf / plain:>5,.1f}x"
                )
        read = "; ".join(
            f"{size:,} records: full {ms(results[(size, 'commits_full')]):,.0f}" for size in sizes
        )
        print(f"commits read: {read}; incremental 1 (every size)")
        print(
            "full, plain git: git log --format=%H --diff-filter=DMT --name-only -m factory "
            "-- .factory; incremental, plain git: git diff-tree -r --no-renames "
            "--diff-filter=DMT --name-only <old> <new> -- .factory"
        )
        if TARGET_SIZE in sizes:
            incr = ms(results[(TARGET_SIZE, "gf_incr")])
            verdict = "met" if incr <= TARGET_MS else "NOT met"
            print(
                f"target: incremental verify <= {TARGET_MS:.0f} ms at {TARGET_SIZE:,} records "
                f"(in-process): {incr:.1f} ms, {verdict}"
            )
        else:
            print(f"target: incremental verify <= {TARGET_MS:.0f} ms at {TARGET_SIZE:,} "
                  "records: not measured (that size was not run)")  # fmt: skip

        for factory, repo, seed in setups.values():
            correctness(factory, repo, seed)
        print(
            "correctness: ok (a plain-git commit deleting 3 records: the incremental and the "
            "full check each report exactly those 3, and so does plain git's full walk)"
        )
        print(
            f"total run time {time.perf_counter() - began:.0f} s; "
            f"load average now {os.getloadavg()[0]:.1f}",
            file=sys.stderr,
        )
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
