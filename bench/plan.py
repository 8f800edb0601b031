#!/usr/bin/env python3
"""The plan at scale: `ready` and `task list` at 1,000 and 10,000 tasks, and claims
under 8 racing processes.

CLI wall time, warm index, median of 11 runs, next to plain git doing the smallest
comparable job (listing the task files: `git ls-tree -r --name-only factory`).
A quarter of the tasks depend on an earlier one, a fifth are claimed.

    python bench/plan.py [--sizes 1000,10000] [--claims 400]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import GIT_ENV, cli, median_ms

from gitfactory import create
from gitfactory.plan.tasks import Task
from gitfactory.store import clock, ids, log, records
from gitfactory.store.branch import Change
from gitfactory.store.factory import Factory
from gitfactory.store.git import discover
from gitfactory.store.log import Draft


def seeded(root: Path, n: int) -> Factory:
    repo = root / f"plan-{n}"
    subprocess.run(["git", "init", "-q", str(repo)], check=True, env=GIT_ENV)
    factory = Factory(discover(repo))
    create.init(factory, "bench", actor="bench/seed")
    start = clock.format_time(1_790_000_000_000)
    tasks = []
    for i in range(n):
        deps = (tasks[i - 7].id,) if i % 4 == 3 and i >= 7 else ()
        tasks.append(
            Task(
                id=ids.random_id(),
                title=f"task {i}",
                requester="bench/seed",
                created=start,
                priority=i % 5,
                depends_on=deps,
            )
        )
    claims = [log.stamp(Draft(kind="task.claimed", actor=f"coder/c{i % 8}", task=t.id,
                              data={"seq": 0, "lease_until": 4_000_000_000_000}))
              for i, t in enumerate(tasks) if i % 5 == 0]  # fmt: skip
    files = {t.path: records.encode(t.to_record(), records.TASK) for t in tasks}
    files.update({e.path: records.encode(e.to_record()) for e in claims})
    factory.store.write(Change(files, f"bench: {n} tasks"))
    subprocess.run(
        [*cli(), "task", "list", "--json"], cwd=repo, check=True, capture_output=True
    )  # index it
    return factory


CLAIMER = """
import json, sys
from gitfactory.plan import decisions
from gitfactory.errors import FactoryError
from gitfactory.store.factory import Factory
factory = Factory.discover()
won = 0
for tid in json.loads(sys.argv[1]):
    try:
        decisions.claim(factory, tid, sys.argv[2])
        won += 1
    except FactoryError:
        pass
print(won)
"""


def claim_storm(root: Path, n_tasks: int) -> tuple[float, int]:
    repo = root / "storm"
    subprocess.run(["git", "init", "-q", str(repo)], check=True, env=GIT_ENV)
    factory = Factory(discover(repo))
    create.init(factory, "storm", actor="bench/seed")
    created = clock.format_time(1_790_000_000_000)
    tasks = [Task(id=ids.random_id(), title=f"t{i}", requester="bench/seed",
                       created=created) for i in range(n_tasks)]  # fmt: skip
    factory.store.write(Change({t.path: records.encode(t.to_record(), records.TASK)
                                for t in tasks}, "bench: storm tasks"))  # fmt: skip
    order = [t.id for t in tasks]
    started = time.perf_counter()
    procs = [subprocess.Popen([sys.executable, "-c", CLAIMER,
                               json.dumps(order[k * 7 % n_tasks:] + order[:k * 7 % n_tasks]),
                               f"agent/a{k}"], cwd=repo, stdout=subprocess.PIPE, text=True)
             for k in range(8)]  # fmt: skip
    won = sum(int(p.communicate()[0]) for p in procs)
    return time.perf_counter() - started, won


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000,10000")
    parser.add_argument("--claims", type=int, default=400)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="gitfactory-bench-plan-"))
    try:
        print(
            f"gitfactory plan benchmark: CLI wall time, warm index, median of 11 runs; "
            f"{os.cpu_count()} cores"
        )
        print(
            f"{'tasks':>7} | {'ready':>9} | {'task list':>9} | {'git ls-tree':>11} | "
            f"{'ready/ls-tree':>13}"
        )
        print("-" * 63)
        for n in (int(s) for s in args.sizes.split(",")):
            factory = seeded(root, n)
            repo = factory.paths.work_tree
            assert repo is not None
            ready = median_ms([*cli(), "ready", "--json"], repo)
            listing = median_ms([*cli(), "task", "list", "--json"], repo)
            plain = median_ms(
                ["git", "ls-tree", "-r", "--name-only", "factory", "--", ".factory/tasks"], repo
            )
            print(
                f"{n:>7,} | {ready:>6.0f} ms | {listing:>6.0f} ms | {plain:>8.0f} ms | "
                f"{ready / plain:>12.1f}x",
                flush=True,
            )
        seconds, won = claim_storm(root, args.claims)
        print(
            f"\nclaim storm: 8 processes racing over the same {args.claims} tasks: "
            f"{won} claims won (each task exactly once: {won == args.claims}), "
            f"{won / seconds:.0f} claims/s, {seconds:.1f} s"
        )
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
