"""Factories in separate repositories that are each other's peers (SPEC §20), over
file:// or over git:// (`git daemon` on 127.0.0.1, started and stopped by the test)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import gf, gf_json, git
from tests.sync.conftest import GitDaemon


class Fleet:
    """Repositories, one factory each, all under one folder that a `git daemon` may
    serve; ``url(name)`` is how the others reach one."""

    def __init__(self, base: Path, daemon: GitDaemon | None) -> None:
        self.base, self.daemon = base, daemon
        self.repos: dict[str, Path] = {}

    def url(self, name: str) -> str:
        if self.daemon is not None:
            return self.daemon.url(name)
        return (self.base / name).as_uri()

    def factory(self, name: str) -> Path:
        """A repository with a first commit on main and a factory called ``name``."""
        repo = self.base / name
        git(self.base, "init", "-q", "-b", "main", str(repo))
        (repo / "README.md").write_text(f"the {name} project\n")
        git(repo, "add", ".")
        git(repo, "commit", "-qm", "first")
        # git daemon lets a client push only where receive.denyCurrentBranch allows
        # it; the inbox refs are never checked out, so the default is fine.
        gf(repo, "init", "--name", name)
        self.repos[name] = repo
        return repo

    def working_factory(self, name: str) -> Path:
        """A factory whose scripted agent does every task (a line in work.txt, a commit,
        `step done`), a gate that checks the file, and the merge into main."""
        repo = self.factory(name)
        (repo / "agent.sh").write_text(AGENT)
        (repo / "agent.sh").chmod(0o755)
        git(repo, "add", "agent.sh")
        git(repo, "commit", "-qm", "the agent")
        gf(repo, "config", "edit", "--file", "-", input=WORKING.format(name=name))
        return repo

    def __getitem__(self, name: str) -> Path:
        return self.repos[name]


AGENT = """#!/bin/sh
set -e
echo "$GITFACTORY_TASK" >> work.txt
git add work.txt
git commit -qm "work on $GITFACTORY_TASK"
gitfactory step done "$GITFACTORY_TASK" --note "wrote work.txt"
"""

WORKING = """protocol: "0.3"
name: {name}
agents:
  agent: {{role: coder, command: ./agent.sh}}
dispatch: {{kill_grace: 1s}}
gates:
  tests: {{command: test -s work.txt}}
workflows:
  default:
    start: implement
    steps:
      implement: {{role: coder, requires_change: true, on_success: test, on_failure: implement}}
      test: {{gate: tests, on_success: merge, on_failure: implement}}
      merge: {{action: merge, strategy: merge, on_success: done, on_failure: implement}}
"""


def set_peers(repo: Path, block: str) -> None:
    """Replace (or add) the ``peers:`` section of ``repo``'s factory.yaml."""
    text = git(repo, "show", "factory:.factory/factory.yaml")
    if "\npeers:\n" in text:
        text = text[: text.index("\npeers:\n")] + "\n"
    gf(repo, "config", "edit", "--file", "-", input=text.rstrip("\n") + "\n\npeers:\n" + block)


def peer(name: str, url: str, deliver: str = "push", **accept: Any) -> str:
    """One entry of ``peers:``, as YAML."""
    lines = [f"  {name}:", f"    url: {url}", f"    deliver: {deliver}"]
    if accept:
        lines.append("    accept:")
        for key, value in accept.items():
            if isinstance(value, list | tuple):
                value = json.dumps(list(value))
            lines.append(f"      {key}: {value}")
    return "\n".join(lines) + "\n"


def sync(repo: Path, *args: str, code: int = 0) -> dict[str, Any]:
    result: dict[str, Any] = gf_json(repo, "peers", "sync", *args, "--json", code=code)
    return result


def received(repo: Path, **match: Any) -> list[dict[str, Any]]:
    """The data of every peer.received event of ``repo`` whose fields equal ``match``."""
    events = gf_json(repo, "log", "--kind", "peer.received")
    return [e["data"] for e in events
            if all(e["data"].get(k) == v for k, v in match.items())]


def tree(repo: Path, ref: str = "factory", under: str = ".factory") -> set[str]:
    return set(git(repo, "ls-tree", "-r", "--name-only", ref, "--", under).split())


@pytest.fixture(params=["file", "git-daemon"])
def fleet(request: pytest.FixtureRequest, tmp_path: Path) -> Fleet:
    """Factories that reach each other over file:// or over git://."""
    if request.param == "git-daemon":
        served: Fleet = request.getfixturevalue("served_fleet")
        return served
    return request.getfixturevalue("local_fleet")  # type: ignore[no-any-return]


@pytest.fixture
def served_fleet(tmp_path: Path) -> Iterator[Fleet]:
    """Factories that reach each other over git:// (``fleet.daemon`` may be stopped
    and started again on its port)."""
    base = tmp_path / "served"
    base.mkdir()
    daemon = GitDaemon(base)
    daemon.start()
    try:
        yield Fleet(base, daemon)
    finally:
        daemon.stop()


@pytest.fixture
def local_fleet(tmp_path: Path) -> Fleet:
    """Factories that reach each other over file:// only (tests of rules, not transports)."""
    base = tmp_path / "served"
    base.mkdir()
    return Fleet(base, None)
