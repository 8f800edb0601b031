"""Clones of one factory and the remotes they share: a bare repository over file://
and the same over git:// (`git daemon` on 127.0.0.1, started and stopped by the test)."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import gf, git


def records(clone: Path, ref: str = "factory") -> set[str]:
    """Every record (and artifact content) path on ``ref`` of ``clone``."""
    out = git(clone, "ls-tree", "-r", "--name-only", ref, "--", ".factory")
    return {p for p in out.splitlines()
            if p.split("/")[1] in ("log", "tasks", "mail", "artifacts", "blobs")}


def bare_remote(tmp: Path, name: str = "remote.git") -> Path:
    """An empty bare repository under ``tmp``: the remote the clones share."""
    bare = tmp / name
    git(tmp, "init", "-q", "--bare", str(bare))
    return bare


def make_clones(tmp: Path, url: str, names: tuple[str, ...] = ("a", "b", "c"),
                remote_yaml: str | None = "origin") -> list[Path]:
    """The first clone creates the factory (with ``sync: remote:`` set) and pushes it;
    the others `git clone` the remote and join with `gitfactory sync`."""
    first = tmp / names[0]
    git(tmp, "init", "-q", "-b", "main", str(first))
    git(first, "commit", "-q", "--allow-empty", "-m", "first")
    git(first, "remote", "add", "origin", url)
    git(first, "push", "-q", "origin", "main")
    gf(first, "init", "--name", "shared")
    if remote_yaml:
        set_sync(first, f"  remote: {remote_yaml}\n")
    gf(first, "sync")
    clones = [first]
    for name in names[1:]:
        git(tmp, "clone", "-q", url, str(tmp / name))
        gf(tmp / name, "sync")
        clones.append(tmp / name)
    return clones


def set_sync(clone: Path, body: str) -> None:
    text = git(clone, "show", "factory:.factory/factory.yaml")
    text = text.replace("\n# sync:\n", f"\nsync:\n{body}", 1)
    assert "\nsync:\n" in text
    gf(clone, "config", "edit", "--file", "-", input=text)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class GitDaemon:
    """`git daemon` serving every repository under ``base`` on 127.0.0.1, pushes
    allowed; it can be stopped and started again on the same port."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    def url(self, name: str) -> str:
        return f"git://127.0.0.1:{self.port}/{name}"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["git", "daemon", "--reuseaddr", "--export-all", "--enable=receive-pack",
             f"--base-path={self.base}", "--listen=127.0.0.1", f"--port={self.port}",
             "--informative-errors", str(self.base)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                if self.proc.poll() is not None:
                    raise AssertionError("git daemon exited at start") from None
                time.sleep(0.05)
        raise AssertionError("git daemon did not start listening")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=30)
            self.proc = None


@pytest.fixture
def git_daemon(tmp_path: Path) -> Iterator[GitDaemon]:
    base = tmp_path / "served"
    base.mkdir()
    daemon = GitDaemon(base)
    daemon.start()
    try:
        yield daemon
    finally:
        daemon.stop()


@pytest.fixture(params=["file", "git-daemon"])
def shared_remote(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A bare remote, as (url, path), over file:// or over git:// on 127.0.0.1."""
    if request.param == "file":
        bare = bare_remote(tmp_path)
        yield bare.as_uri(), bare
        return
    daemon = request.getfixturevalue("git_daemon")
    yield daemon.url("remote.git"), bare_remote(daemon.base)
