"""The two-factory demo (`gitfactory demo --federation`): a web factory asks an api
factory for an endpoint, and its own page waits for it.

Everything is real and offline: two repositories served by `git daemon` on
127.0.0.1 (started and stopped here), a factory in each with the other as its peer,
a daemon in each (child processes, as a user would start them), and scripted agents
(real programs, no LLM). The web factory's request travels as a parcel pushed to the
api repository's inbox ref; the api factory takes it in (its policy accepts tasks
from web), its agent does it, the merge lands, and the news flows back: the web
factory's proxy task completes, its page becomes ready, and its agent builds the page
against the commit where the api's work landed.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from gitfactory.errors import FactoryError
from gitfactory.resources import template_file
from gitfactory.store.factory import Factory
from gitfactory.store.git import discover, run_git

CONFIG = """\
# The two-factory demo's {name} factory: one scripted coder, a gate, the merge, and
# the other factory as its peer. The daemon exchanges with peers on its own.
protocol: "0.4"
name: {name}
dispatch:
  worktrees: ../{name}-worktrees
  base: main
  kill_grace: 2s
sync:
  interval: 1s
agents:
  coder:
    role: coder
    description: scripted coder (templates/demo/federation/agent.py)
    command: "{python} {agent}"
gates:
  built:
    command: test -s {product}
workflows:
  default:
    steps:
      implement:
        role: coder
        requires_change: true
        timeout: 5m
        on_success: check
      check:
        gate: built
        on_success: merge
        on_failure: implement
      merge:
        action: merge
        strategy: merge
        into: main
        on_success: done
        on_failure: implement
peers:
  {peer}:
    url: {url}
    deliver: push
    accept:
      mail: [human, coder]
      tasks: {tasks}
"""
TIMEOUT_S = 120.0


@contextlib.contextmanager
def git_daemon(base: Path) -> Iterator[Callable[[str], str]]:
    """`git daemon` serving the repositories under ``base`` on 127.0.0.1, pushes
    allowed; yields the URL of a repository by name, and stops it on the way out."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    proc = subprocess.Popen(
        ["git", "daemon", "--reuseaddr", "--export-all", "--enable=receive-pack",
         f"--base-path={base}", "--listen=127.0.0.1", f"--port={port}", str(base)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise FactoryError("git daemon did not start on 127.0.0.1") from None
                time.sleep(0.05)
        yield lambda name: f"git://127.0.0.1:{port}/{name}"
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def make_factory(root: Path, name: str, peer: str, url: str, product: str, tasks: str) -> Factory:
    from gitfactory import create
    from gitfactory.config.factory_yaml import CONFIG_PATH
    from gitfactory.store.branch import Change

    repo = root / name
    repo.mkdir()
    run_git(["init", "-q", "-b", "main"], repo)
    for key, value in (("user.name", f"{name} team"), ("user.email", f"{name}@example.com")):
        run_git(["config", key, value], repo)
    (repo / "README.md").write_text(f"# {name}\n\nThe {name} project of the two-factory demo.\n")
    (repo / "factory.name").write_text(name + "\n")
    run_git(["add", "."], repo)
    run_git(["commit", "-qm", f"{name}: first commit"], repo)
    factory = Factory(discover(repo))
    create.init(factory, name, actor=f"human/{name}-lead")
    agent = template_file("demo", "federation") / "agent.py"
    text = CONFIG.format(name=name, python=sys.executable, product=product, peer=peer, url=url,
                         agent=agent, tasks=tasks)  # fmt: skip
    factory.store.write(Change({CONFIG_PATH: text.encode()}, f"factory: {name}'s demo setup",
                               replace=frozenset({CONFIG_PATH})))  # fmt: skip
    return factory


def run(directory: Path | None, say: Callable[[str], None]) -> tuple[Factory, Factory, Path]:
    """Build both factories, run them to the end; (web, api, the folder of both)."""
    from gitfactory import demo
    from gitfactory.peers import asking
    from gitfactory.plan import decisions

    root = demo.prepare(directory)
    served = root / "served"
    served.mkdir()
    with git_daemon(served) as url:
        say(f"two repositories in {served}, served by git daemon at {url('')}")
        api = make_factory(served, "api", "web", url("web"), "users_v2.py", "auto")
        web = make_factory(served, "web", "api", url("api"), "users.html", "no")
        say("factory 'api': accepts task requests from web; factory 'web': asks api")
        proxy, request = asking.request(web, "api", title="Add GET /v2/users",
                                        body="Paginated, JSON. The web's users page needs it.",
                                        requester="human/web-lead")  # fmt: skip
        page = decisions.add(web, title="Users page", requester="human/web-lead",
                             depends_on=[proxy.id])  # fmt: skip
        say(f"web: task {proxy.id[:8]} asks api for {proxy.title!r} (request "
            f"{request.id[:10]}); task {page.id[:8]} {page.title!r} depends on it")  # fmt: skip
        say("starting a daemon in each repository")
        with daemons(root, [api, web]):
            follow(web, proxy.id, page.id, say)
    say("both daemons and git daemon stopped")
    return web, api, served


@contextlib.contextmanager
def daemons(root: Path, factories: list[Factory]) -> Iterator[None]:
    procs = []
    try:
        for factory in factories:
            top = factory.paths.common_dir.parent
            log = (root / f"{top.name}-daemon.log").open("wb")
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "gitfactory", "daemon"], cwd=top,
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            ))  # fmt: skip
        yield
    finally:
        for proc in procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def follow(web: Factory, proxy: str, page: str, say: Callable[[str], None]) -> None:
    """Say each change of the proxy and the page until the page is completed."""
    from gitfactory.plan import decisions

    seen: dict[str, str] = {}
    deadline = time.monotonic() + TIMEOUT_S
    while time.monotonic() < deadline:
        watcher = Factory(web.paths, web.branch)  # a fresh handle: the daemons write
        watcher.index.refresh()
        for task_id, name in ((proxy, "web's proxy of the api task"), (page, "web's page")):
            st = decisions.load(watcher, task_id)
            said = st.state if st.remote is None else f"{st.state} (api says {st.remote['state']})"
            if seen.get(task_id) != said:
                seen[task_id] = said
                say(f"  {time.strftime('%H:%M:%S')}  {name}: {said}")
        if decisions.load(watcher, page).state == "completed":
            return
        time.sleep(0.2)
    raise FactoryError(
        f"the demo did not finish in {TIMEOUT_S:.0f} s",
        hint="the daemons' logs are next to the repositories (*-daemon.log)",
    )
