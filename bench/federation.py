#!/usr/bin/env python3
"""Two factories in two repositories, through a `git daemon` on 127.0.0.1, with a
`gitfactory daemon` running in each (SPEC §20).

1. Request to accepted: `task add --in api` on web returns (the clock starts), and
   the clock stops when api's plan holds the task (api accepts requests from web
   automatically). Then, on web, until the proxy shows api's receipt.
2. Completion to visible: api's task is completed (`step done --override` by a
   person; the clock starts when it returns) and the clock stops when web's proxy
   task is completed.
3. Messages per second: web sends N messages to api's humans, one `mail send` each,
   as fast as it can; the clock stops when api has delivered the last one.

Beside each, plain git doing the transport alone: a commit pushed to a ref of the
other repository through the same git daemon (one push per message).

Medians and percentiles are of this one run.

    python bench/federation.py [--samples 15] [--messages 100]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from common import GIT_ENV

from gitfactory import create
from gitfactory.config.factory_yaml import CONFIG_PATH
from gitfactory.demo_peers import git_daemon
from gitfactory.mail import mailbox, messages
from gitfactory.peers import asking
from gitfactory.plan import decisions
from gitfactory.store.branch import Change
from gitfactory.store.factory import Factory
from gitfactory.store.git import discover

CONFIG = """protocol: "0.4"
name: {name}
sync: {{interval: 1s}}
workflows:
  default:
    steps:
      implement: {{role: coder, on_success: done}}
peers:
  {peer}:
    url: {url}
    deliver: push
    accept: {{mail: ["*"], tasks: auto, per_day: 1000000}}
"""


def git(cwd: Path, *args: str) -> str:
    out = subprocess.run(["git", *args], cwd=cwd, env=GIT_ENV, check=True, capture_output=True)
    return out.stdout.decode().strip()


def make(served: Path, name: str, peer: str, url: str) -> Factory:
    repo = served / name
    git(served, "init", "-q", "-b", "main", str(repo))
    git(repo, "commit", "-q", "--allow-empty", "-m", "first")
    factory = Factory(discover(repo))
    create.init(factory, name, actor="human/bench")
    text = CONFIG.format(name=name, peer=peer, url=url)
    factory.store.write(Change({CONFIG_PATH: text.encode()}, "bench: peers",
                               replace=frozenset({CONFIG_PATH})))  # fmt: skip
    return factory


@contextlib.contextmanager
def daemons(*factories: Factory) -> Iterator[None]:
    procs = [subprocess.Popen([sys.executable, "-m", "gitfactory", "daemon"],
                              cwd=f.paths.common_dir.parent, env=GIT_ENV,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True) for f in factories]  # fmt: skip
    try:
        yield
    finally:
        for proc in procs:
            os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs:
            proc.wait(timeout=60)


def until(condition: Callable[[], bool], timeout: float = 60.0) -> float:
    """Poll ``condition`` every 10 ms; the monotonic time it first held."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return time.monotonic()
        time.sleep(0.01)
    raise SystemExit("timed out: is a daemon down? (see `gitfactory daemon status`)")


def fresh(factory: Factory) -> Factory:
    """A new handle (the daemons write): its index refreshed to the tip."""
    handle = Factory(factory.paths, factory.branch)
    handle.index.refresh()
    return handle


def api_task(api: Factory, request: str) -> str | None:
    row = fresh(api).index.db.execute(
        "SELECT task FROM events WHERE kind = 'task.created' "
        "AND json_extract(data, '$.origin.request') = ?", (request,)).fetchone()  # fmt: skip
    return str(row[0]) if row else None


def remote_state(web: Factory, proxy: str) -> tuple[str, str]:
    st = decisions.load(fresh(web), proxy)
    return st.state, (st.remote or {}).get("state", "")


def delivered(api: Factory) -> int:
    row = fresh(api).index.db.execute(
        "SELECT COUNT(*) FROM events WHERE kind = 'mail.delivered' "
        "AND json_extract(data, '$.via') = 'peer:web'").fetchone()  # fmt: skip
    return int(row[0])


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def plain_push(served: Path, url: str, samples: int) -> list[float]:
    """A commit in one repository pushed to a ref of the other, through git daemon."""
    work = served / "plain"
    git(served, "init", "-q", str(work))
    times = []
    for n in range(samples):
        (work / "msg.txt").write_text(f"message {n}\n")
        started = time.monotonic()
        git(work, "add", "msg.txt")
        git(work, "commit", "-qm", f"message {n}")
        git(work, "push", "-q", "--force", url, "HEAD:refs/bench/inbox")
        times.append((time.monotonic() - started) * 1000)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=15)
    parser.add_argument("--messages", type=int, default=100)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="gitfactory-bench-fed-") as tmp:
        served = Path(tmp) / "served"
        served.mkdir()
        with git_daemon(served) as url:
            api = make(served, "api", "web", url("web"))
            web = make(served, "web", "api", url("api"))
            accepted, receipted, completed = [], [], []
            with daemons(api, web):
                for n in range(args.samples):
                    proxy, request = asking.request(web, "api", title=f"bench request {n}",
                                                    requester="human/bench")  # fmt: skip
                    started = time.monotonic()
                    accepted.append(until(lambda: api_task(api, request.id) is not None)
                                    - started)  # fmt: skip
                    receipted.append(until(lambda: remote_state(web, proxy.id)[1] != "sent")
                                     - started)  # fmt: skip
                    theirs = api_task(api, request.id)
                    assert theirs is not None
                    subprocess.run([sys.executable, "-m", "gitfactory", "step", "done", theirs,
                                    "--override", "--reason", "bench", "--as", "human/bench"],
                                   cwd=api.paths.common_dir.parent, env=GIT_ENV, check=True,
                                   capture_output=True)  # fmt: skip
                    started = time.monotonic()
                    completed.append(until(lambda: remote_state(web, proxy.id)[0] == "completed")
                                     - started)  # fmt: skip
                before = delivered(api)
                started = time.monotonic()
                for n in range(args.messages):
                    message = messages.compose(web, sender="human/bench", to=["api:human/*"],
                                               subject=f"message {n}", body="hello")  # fmt: skip
                    mailbox.send(web, message)
                sent_s = time.monotonic() - started
                done = until(lambda: delivered(api) >= before + args.messages, timeout=600)
                rate = args.messages / (done - started)
            plain = plain_push(served, url("api"), max(args.samples, 11))
        ms = [x * 1000 for x in accepted], [x * 1000 for x in receipted]
        done_ms = [x * 1000 for x in completed]
        plain_rate = 1000 / statistics.median(plain)
        print(f"two factories over git daemon on 127.0.0.1, daemons running; "
              f"{args.samples} requests, {args.messages} messages\n")
        print(f"{'what':<44} {'p50':>9} {'p90':>9} {'max':>9}   plain git (a push)")
        rows = [("request -> task in api's plan", ms[0]), ("request -> receipt on web's proxy", ms[1]),
                ("api task completed -> web's proxy completed", done_ms)]  # fmt: skip
        for label, values in rows:
            print(f"{label:<44} {statistics.median(values):>7.0f}ms {pct(values, 90):>7.0f}ms "
                  f"{max(values):>7.0f}ms   {statistics.median(plain):.0f}ms p50 "
                  f"({statistics.median(values) / statistics.median(plain):.1f}x)")  # fmt: skip
        print(f"{'messages web -> api, delivered per second':<44} {rate:>9.1f}/s "
              f"{'':>19}   {plain_rate:.1f} pushes/s "
              f"({rate / plain_rate:.2f}x); sending alone {args.messages / sent_s:.1f}/s")


if __name__ == "__main__":
    main()
