#!/usr/bin/env python3
"""The board at 1,000 and 10,000 tasks: how long its pages take, and how soon an open
page hears of a commit.

1. Page load: the wall time of a request on 127.0.0.1 (server time plus loopback),
   median of 11, warm: the board `/` (200 cards per column at most), its live
   fragment, the graph, a task page, the JSON board. Beside it, plain git listing
   the same tasks (`git ls-tree -r --name-only factory -- .factory/tasks`).
2. Live update: a task is added (`gitfactory task add`, the clock starts when it
   returns), an open event stream hears the new tip, and the page's fragment is
   fetched with the new card in it (the clock stops). Beside it, plain git noticing
   the same commit by polling `git rev-parse factory` every 100 ms, as a script
   would.

Targets (issue 16): first page <= 500 ms at 10,000 tasks, an update <= 1 s.

    python bench/board.py [--sizes 1000,10000] [--samples 11]
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from common import GIT_ENV, cli
from plan import seeded


class Board:
    def __init__(self, repo: Path) -> None:
        self.proc = subprocess.Popen([*cli(), "board", "--port", "0", "--json"], cwd=repo,
                                     stdout=subprocess.PIPE, text=True, env=GIT_ENV)  # fmt: skip
        assert self.proc.stdout is not None
        info = json.loads(self.proc.stdout.readline())
        self.port, self.token = info["port"], info["token"]
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        conn.request("GET", f"/?token={self.token}")
        self.prefix = conn.getresponse().getheader("location", "/").rstrip("/")
        conn.close()

    def get(self, path: str) -> str:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        conn.request("GET", self.prefix + path, headers={"X-Gitfactory-Token": self.token})
        response = conn.getresponse()
        body = response.read().decode()
        conn.close()
        assert response.status == 200, (path, response.status, body[:200])
        return body

    def stream(self) -> http.client.HTTPResponse:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        conn.request("GET", f"{self.prefix}/events", headers={"X-Gitfactory-Token": self.token})
        response = conn.getresponse()
        next_tip(response)  # the tip as of now
        return response

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(60)


def next_tip(response: http.client.HTTPResponse) -> str:
    kind = ""
    while True:
        line = response.fp.readline().decode().rstrip("\n")
        if line.startswith("event: "):
            kind = line[7:]
        elif line.startswith("data: ") and kind == "tip":
            return str(json.loads(line[6:]))


def timed_ms(fn: object, samples: int) -> float:
    times = []
    for _ in range(samples):
        started = time.perf_counter()
        fn()  # type: ignore[operator]
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True,
                          text=True, env=GIT_ENV).stdout  # fmt: skip


def update_ms(repo: Path, board: Board, samples: int) -> tuple[float, float]:
    """(median ms from a task add to the card in the fetched fragment, the same
    commit noticed by plain git polling the ref)."""
    stream = board.stream()
    ours, plain = [], []
    for k in range(samples):
        title = f"live {k} {time.time_ns()}"
        subprocess.run([*cli(), "task", "add", title], cwd=repo, check=True,
                       capture_output=True, env=GIT_ENV)  # fmt: skip
        started = time.perf_counter()
        tip = git(repo, "rev-parse", "factory").strip()
        while next_tip(stream) != tip:
            pass
        assert title in board.get("/fragment/board?text=live")
        ours.append((time.perf_counter() - started) * 1000)
    for _ in range(samples):
        before = git(repo, "rev-parse", "factory").strip()
        subprocess.run([*cli(), "log", "append", "note", "poll"], cwd=repo, check=True,
                       capture_output=True, env=GIT_ENV)  # fmt: skip
        started = time.perf_counter()
        # A script polling every 100 ms notices on average half a period late.
        time.sleep(0.05)
        while git(repo, "rev-parse", "factory").strip() == before:
            time.sleep(0.1)
        plain.append((time.perf_counter() - started) * 1000)
    return statistics.median(ours), statistics.median(plain)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000,10000")
    parser.add_argument("--samples", type=int, default=11)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="gf-bench-board-") as tmp:
        for n in (int(s) for s in args.sizes.split(",")):
            factory = seeded(Path(tmp), n)
            repo = factory.paths.work_tree or Path(tmp)
            board = Board(repo)
            try:
                some = json.loads(subprocess.run([*cli(), "task", "list", "--json"], cwd=repo,
                                                 capture_output=True, check=True,
                                                 env=GIT_ENV).stdout)[n // 2]["id"]  # fmt: skip
                for path in ("/", "/fragment/board", "/graph", f"/tasks/{some}", "/api/board"):
                    board.get(path)  # warm
                listing = timed_ms(lambda: git(repo, "ls-tree", "-r", "--name-only", "factory",
                                               "--", ".factory/tasks"), args.samples)  # fmt: skip
                for path in ("/", "/fragment/board", "/graph", f"/tasks/{some}", "/api/board"):
                    ms = timed_ms(lambda p=path: board.get(p), args.samples)  # type: ignore[misc]
                    name = "/tasks/ID" if path.startswith("/tasks/") else path
                    rows.append((n, f"GET {name}", ms, listing))
                live, polled = update_ms(repo, board, args.samples)
                rows.append((n, "update: task add -> card in the page", live, polled))
            finally:
                board.stop()
    print(f"{'tasks':>6}  {'what':<40} {'board ms':>9} {'plain git ms':>13} {'ratio':>6}")
    for n, what, ms, ref in rows:
        print(f"{n:>6}  {what:<40} {ms:>9.1f} {ref:>13.1f} {ms / ref:>6.2f}")
    print("\nplain git: `git ls-tree` of the task files for a page; a script polling "
          "`git rev-parse factory` every 100 ms for an update. Medians of this run.")


if __name__ == "__main__":
    main()
