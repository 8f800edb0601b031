#!/usr/bin/env python3
"""What quality gates and artifacts cost.

1. Gate overhead: the wall time the factory adds around a gate's bare command. For
   each of N tasks whose worktree already exists (an earlier step made it), the
   clock runs from the dispatcher picking the ready gate step (claim, prompt,
   spawn) through the command to the task having moved on (verdict, transcript and
   report kept as artifacts, gate.result and step records); the bare command's own
   median time in the same worktree is subtracted. For each gate type: a command
   (`true`), a judge (a Python program printing a verdict) and a scenario gate with
   one scenario (a Python QA agent writing a verdict). Beside it, plain git doing
   the same bookkeeping by hand: run the command, store its output with
   `git hash-object -w`, and commit one record with plumbing (read-tree,
   update-index, write-tree, commit-tree, update-ref).
2. Artifact throughput: `artifacts.put` (blob + manifest in one commit) and `get`
   (read + SHA-256 check) at 1 KiB, 1 MiB and 16 MiB, against plain git storing the
   same bytes (`hash-object -w` + a commit) and reading them (`cat-file blob`).

    python bench/qa.py [--tasks 20]
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

from common import GIT_ENV

from gitfactory import create
from gitfactory.config import factory_yaml
from gitfactory.config.factory_yaml import CONFIG_PATH
from gitfactory.knowledge import artifacts
from gitfactory.plan import decisions
from gitfactory.run import worktrees
from gitfactory.run.dispatch import Dispatcher
from gitfactory.store import log
from gitfactory.store.branch import Change
from gitfactory.store.factory import Factory
from gitfactory.store.git import discover

JUDGE = "import json; print(json.dumps({'pass': True, 'score': 1, 'reasons': ['ok']}))"
QA = (
    "import json, os; open(os.environ['GITFACTORY_VERDICT_FILE'], 'w')"
    ".write(json.dumps({'pass': True, 'reasons': ['ok']}))"
)


def git(cwd: Path, *args: str, input: bytes | None = None, env: dict[str, str] | None = None) -> str:
    out = subprocess.run(["git", *args], cwd=cwd, env=env or GIT_ENV, check=True,
                         capture_output=True, input=input)  # fmt: skip
    return out.stdout.decode().strip()


def new_factory(root: Path, name: str, config: str) -> Factory:
    repo = root / name
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True, env=GIT_ENV)
    (repo / "app.py").write_text("print('hello')\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "project")
    factory = Factory(discover(repo))
    create.init(factory, "bench", actor="bench/seed")
    files = {CONFIG_PATH: config.encode(),
             ".factory/scenarios/smoke.md": b"# Smoke\nThe user starts the app.\n"}  # fmt: skip
    factory.store.write(Change(files, "bench: config", replace=frozenset(files)))
    return factory


def gate_overhead(root: Path, kind: str, tasks: int) -> tuple[list[float], float]:
    python = sys.executable
    command = {"command": "true", "judge": f'{python} -c "{JUDGE}"',
               "scenario": f'{python} -c "{QA}"'}[kind]  # fmt: skip
    quoted = json.dumps(command)  # a JSON string is a YAML string
    gate = {"command": f"    command: {quoted}\n",
            "judge": f"    type: judge\n    command: {quoted}\n",
            "scenario": "    type: scenario\n    role: qa\n"}[kind]  # fmt: skip
    config = (
        f'protocol: "0.2"\nname: bench\ndispatch:\n  base: main\n  max_concurrent: 1\n  worktrees: ../wt-{kind}\n'
        f"agents:\n  quinn:\n    role: qa\n    command: {quoted}\n"
        f"gates:\n  check:\n{gate}"
        "workflows:\n  default:\n    steps:\n      check:\n        gate: check\n"
    )
    factory = new_factory(root, f"gate-{kind}", config)
    dispatch = factory_yaml.load(factory).dispatch
    for i in range(tasks):  # the worktrees an earlier step would have made
        task = decisions.add(factory, title=f"task {i}", requester="bench/seed")
        worktrees.ensure(factory.paths, dispatch, task)
    dispatcher = Dispatcher(factory, lambda e: log.append(factory, e if isinstance(e, list) else [e]))
    totals = []
    for _ in range(tasks):
        started = time.perf_counter()
        (run,) = dispatcher.start_ready()[:1] or [None]
        assert run is not None, "nothing was ready"
        dispatcher.children[run.id].wait()
        (ended,) = dispatcher.reap()
        totals.append((time.perf_counter() - started) * 1000)
        assert ended.outcome == "success", ended
    space = next(p for p in (root / f"wt-{kind}").iterdir() if not p.name.startswith("."))
    env = {**os.environ, "GITFACTORY_VERDICT_FILE": str(root / "verdict.json")}
    bare = []
    for _ in range(tasks):
        started = time.perf_counter()
        subprocess.run(["sh", "-c", command], cwd=space, env=env, check=True,
                       capture_output=True, stdin=subprocess.DEVNULL)  # fmt: skip
        bare.append((time.perf_counter() - started) * 1000)
    return totals, statistics.median(bare)


def plain_git_gate(root: Path, runs: int) -> list[float]:
    """Run `true`, keep its output as a blob and commit one record: by hand."""
    repo = root / "plain"
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True, env=GIT_ENV)
    env = {**GIT_ENV, "GIT_INDEX_FILE": str(root / "plain-index")}
    times = []
    parent = ""
    for i in range(runs):
        started = time.perf_counter()
        out = subprocess.run(["sh", "-c", "true"], capture_output=True).stdout
        blob = git(repo, "hash-object", "-w", "--stdin", input=out, env=env)
        record = f'{{"kind": "gate.result", "pass": true, "output": "{blob}"}}\n'.encode()
        rec = git(repo, "hash-object", "-w", "--stdin", input=record, env=env)
        if parent:
            git(repo, "read-tree", parent, env=env)
        git(repo, "update-index", "--add", "--cacheinfo", f"100644,{blob},out/{i}.log", env=env)
        git(repo, "update-index", "--add", "--cacheinfo", f"100644,{rec},rec/{i}.json", env=env)
        tree = git(repo, "write-tree", env=env)
        commit = git(repo, "commit-tree", tree, *(["-p", parent] if parent else []), "-m", "gate",
                     env=env)  # fmt: skip
        git(repo, "update-ref", "refs/heads/factory", commit, env=env)
        parent = commit
        times.append((time.perf_counter() - started) * 1000)
    return times


def artifact_throughput(root: Path, size: int, count: int) -> dict[str, float]:
    factory = new_factory(root, f"art-{size}", 'protocol: "0.2"\nname: bench\n')
    task = decisions.add(factory, title="bench", requester="bench/seed").id
    payloads = [os.urandom(size) for _ in range(count)]
    started = time.perf_counter()
    ids = [artifacts.put(factory, task, p, name=f"a{i}.bin", producer="bench/seed").id
           for i, p in enumerate(payloads)]  # fmt: skip
    put_s = time.perf_counter() - started
    started = time.perf_counter()
    for i, artifact_id in enumerate(ids):
        _, data = artifacts.get(factory, artifact_id)
        assert data == payloads[i]
    get_s = time.perf_counter() - started
    repo = root / f"plain-{size}"  # its own repository: these objects must be new to it
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True, env=GIT_ENV)
    env = {**GIT_ENV, "GIT_INDEX_FILE": str(root / f"idx-{size}")}
    started = time.perf_counter()
    blobs, parent = [], ""
    for i, p in enumerate(payloads):
        blob = git(repo, "hash-object", "-w", "--stdin", input=p, env=env)
        if parent:
            git(repo, "read-tree", parent, env=env)
        git(repo, "update-index", "--add", "--cacheinfo", f"100644,{blob},b/{i}", env=env)
        tree = git(repo, "write-tree", env=env)
        parent = git(repo, "commit-tree", tree, *(["-p", parent] if parent else []), "-m", "a",
                     env=env)  # fmt: skip
        git(repo, "update-ref", "refs/heads/plain", parent, env=env)
        blobs.append(blob)
    git_put_s = time.perf_counter() - started
    started = time.perf_counter()
    for blob in blobs:
        subprocess.run(["git", "cat-file", "blob", blob], cwd=repo, env=GIT_ENV, check=True,
                       capture_output=True)  # fmt: skip
    git_get_s = time.perf_counter() - started
    mib = size * count / 2**20
    return {"put_ms": put_s * 1000 / count, "get_ms": get_s * 1000 / count,
            "put_mibs": mib / put_s, "get_mibs": mib / get_s,
            "git_put_ms": git_put_s * 1000 / count, "git_get_ms": git_get_s * 1000 / count}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=20)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="gitfactory-bench-qa-"))
    try:
        print(f"gate overhead over the bare command, {args.tasks} gate runs each (ms):")
        print(f"{'gate':<10}| {'bare p50':>9} | {'gate p50':>9} | {'overhead p50':>12} | "
              f"{'overhead p90':>12}")  # fmt: skip
        print("-" * 64)
        for kind in ("command", "judge", "scenario"):
            totals, bare = gate_overhead(root, kind, args.tasks)
            over = sorted(t - bare for t in totals)
            p90 = over[int(len(over) * 0.9) - 1]
            print(f"{kind:<10}| {bare:>9.1f} | {statistics.median(totals):>9.1f} | "
                  f"{statistics.median(over):>12.1f} | {p90:>12.1f}")  # fmt: skip
        plain = plain_git_gate(root, args.tasks)
        print(f"plain git, by hand: run `true`, store its output, commit one record: "
              f"{statistics.median(plain):.1f} ms (median)")
        print()
        print("artifacts (library calls; plain git: hash-object -w + commit, cat-file blob):")
        print(f"{'size':>7} x {'n':<3}| {'put':>8} | {'put MiB/s':>9} | {'get':>8} | "
              f"{'get MiB/s':>9} | {'git put':>8} | {'git get':>8}")  # fmt: skip
        print("-" * 82)
        for size, count, label in ((1024, 200, "1 KiB"), (2**20, 20, "1 MiB"),
                                   (16 * 2**20, 5, "16 MiB")):  # fmt: skip
            r = artifact_throughput(root, size, count)
            print(f"{label:>7} x {count:<3}| {r['put_ms']:>6.1f}ms | {r['put_mibs']:>9.1f} | "
                  f"{r['get_ms']:>6.1f}ms | {r['get_mibs']:>9.1f} | {r['git_put_ms']:>6.1f}ms | "
                  f"{r['git_get_ms']:>6.1f}ms")  # fmt: skip
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
