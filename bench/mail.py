#!/usr/bin/env python3
"""Mailboxes at scale: CLI send and inbox latency at 100, 10,000 and 100,000 stored
messages, and throughput with 8 concurrent senders, next to plain git doing the
same jobs.

  send          `gitfactory mail send coder/a1 -s ... --body ...` (CLI wall time)
  inbox         `gitfactory mail inbox --as coder/a1 --json` with a warm index
  git send      protocol/examples/send-message.sh: the plain-git client (read-tree,
                hash-object, update-index, write-tree, commit-tree, update-ref)
  git inbox     `git grep` of the recipients lines of every message on the branch

Messages are spread over 20 agents and 30 days of ids; a tenth are marked read.
Latencies are medians of 11 runs measured in this one run. For scale: mcp_agent_mail
publishes 118 ms per send and 8.4 sends/s.

    python bench/mail.py [--sizes 100,10000,100000] [--storm-size 10000] [--per-sender 20]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import GIT_ENV, cli, median_ms

from gitfactory import create
from gitfactory.mail.messages import Message
from gitfactory.store import clock, ids, log, records
from gitfactory.store.branch import Change
from gitfactory.store.factory import Factory
from gitfactory.store.git import discover
from gitfactory.store.log import Draft

AGENTS = 20
DAY_MS = 86_400_000
SEND_SCRIPT = Path(__file__).resolve().parents[1] / "protocol" / "examples" / "send-message.sh"


def seeded(root: Path, n: int) -> tuple[Path, float]:
    """A factory holding ``n`` messages; returns it and how long the first index took."""
    repo = root / f"mail-{n}"
    subprocess.run(["git", "init", "-q", str(repo)], check=True, env=GIT_ENV)
    # We pack once ourselves below; a background `gc --auto` would race with it.
    subprocess.run(["git", "config", "gc.auto", "0"], cwd=repo, check=True, env=GIT_ENV)
    factory = Factory(discover(repo))
    create.init(factory, "bench", actor="bench/seed")
    start = time.time_ns() // 1_000_000 - 30 * DAY_MS
    step = max(1, 30 * DAY_MS // n)
    files: dict[str, bytes] = {}
    for i in range(n):
        ms = start + i * step
        message = Message(
            id=ids.new_id(ms), sender=f"coder/a{i % AGENTS}",
            to=(f"coder/a{(i + 1) % AGENTS}",), subject=f"message {i} about the parser",
            created=clock.format_time(ms), body=f"Body of message {i}.\n\nSome *markdown*.\n",
            cc=("reviewer/*",) if i % 7 == 0 else (),
        )  # fmt: skip
        files[message.path] = records.encode(message.to_record(), records.MESSAGE)
        if i % 10 == 0:
            read = log.stamp(
                Draft(kind="mail.read", actor=message.to[0], data={"message": message.id}),
                now_ms=ms + 1,
            )
            files[read.path] = records.encode(read.to_record())
    factory.store.write(Change(files, f"bench: {n} messages"))
    subprocess.run(["git", "gc", "-q"], cwd=repo, check=True, env=GIT_ENV)
    started = time.perf_counter()
    subprocess.run(
        [*cli(), "mail", "inbox", "--as", "coder/a1"], cwd=repo, check=True, capture_output=True
    )
    return repo, time.perf_counter() - started


def storm(repo: Path, per_sender: int, plain: bool) -> float:
    """Messages/s with 8 processes sending ``per_sender`` messages each at once."""
    if plain:
        # The plain-git client loses compare-and-swap races: it retries until it wins.
        loop = (
            f"for i in $(seq 1 {per_sender}); do "
            f'until bash "{SEND_SCRIPT}" coder/a1 "storm $W-$i" coder/a$W < /dev/null '
            ">/dev/null 2>&1; do :; done; done"
        )
    else:
        loop = (
            f"for i in $(seq 1 {per_sender}); do "
            f'"{cli()[0]}" mail send coder/a1 -s "storm $W-$i" --as coder/a$W >/dev/null'
            " || exit 1; done"
        )
    started = time.perf_counter()
    procs = [
        subprocess.Popen(["bash", "-c", loop], cwd=repo, env={**GIT_ENV, "W": str(w)})
        for w in range(8)
    ]
    for proc in procs:
        if proc.wait() != 0:
            raise SystemExit("a sender failed")
    return 8 * per_sender / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="100,10000,100000")
    parser.add_argument("--storm-size", type=int, default=10000)
    parser.add_argument("--per-sender", type=int, default=20)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    root = Path(tempfile.mkdtemp(prefix="gitfactory-bench-mail-"))
    try:
        print(
            f"gitfactory mail benchmark: CLI wall time, median of 11 runs; "
            f"{os.cpu_count()} cores; Python {sys.version.split()[0]}"
        )
        print(
            f"{'messages':>8} | {'first index':>11} | {'send':>7} | {'inbox':>7} | "
            f"{'git send':>8} | {'git inbox':>9} | {'send/git':>8} | {'inbox/git':>9}"
        )
        print("-" * 90)
        repos = {}
        for n in sizes:
            repo, first = seeded(root, n)
            repos[n] = repo
            send = median_ms(
                [*cli(), "mail", "send", "coder/a1", "-s", "bench", "--body", "hello",
                 "--as", "coder/a2"], repo,
            )  # fmt: skip
            inbox = median_ms([*cli(), "mail", "inbox", "--as", "coder/a1", "--json"], repo)
            git_send = median_ms(
                ["bash", "-c", f'bash "{SEND_SCRIPT}" coder/a1 bench coder/a2 <<< hello'], repo
            )
            git_inbox = median_ms(
                ["git", "grep", "-l", "-E", '^(to|cc): .*"(coder/a1|coder/[*])"', "factory",
                 "--", ".factory/mail"], repo,
            )  # fmt: skip
            print(
                f"{n:>8,} | {first:>9.1f} s | {send:>4.0f} ms | {inbox:>4.0f} ms | "
                f"{git_send:>5.0f} ms | {git_inbox:>6.0f} ms | {send / git_send:>7.2f}x | "
                f"{inbox / git_inbox:>8.2f}x",
                flush=True,
            )
        py = sys.executable
        floor_send = median_ms([py, "-c", "import click, filelock, pygit2"], root)
        floor_read = median_ms([py, "-c", "import click, sqlite3"], root)
        print(
            f"\nfloor of a Python CLI on this machine (interpreter start + imports, no work): "
            f"{floor_send:.0f} ms for what a send imports (click, filelock, pygit2), "
            f"{floor_read:.0f} ms for what an inbox imports (click, sqlite3)"
        )
        repo = repos.get(args.storm_size) or seeded(root, args.storm_size)[0]
        ours = storm(repo, args.per_sender, plain=False)
        theirs = storm(repo, args.per_sender, plain=True)
        print(
            f"\n8 concurrent senders x {args.per_sender} messages at {args.storm_size:,} "
            f"stored: gitfactory CLI {ours:.1f} msgs/s, plain git (retrying lost races) "
            f"{theirs:.1f} msgs/s ({ours / theirs:.1f}x)"
        )
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
