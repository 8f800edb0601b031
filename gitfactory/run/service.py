"""The daemon as a background service: start it, stop it, or hand it to systemd."""

from __future__ import annotations

import hashlib
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from gitfactory.errors import BusyError, FactoryError
from gitfactory.run.daemon import LOCK_FILE, PID_FILE, read_pid
from gitfactory.run.runs import alive
from gitfactory.store.actors import slug

if TYPE_CHECKING:
    from gitfactory.store.factory import Factory

LOG_FILE = "daemon.log"


def running(factory: Factory) -> int | None:
    """The pid of this repository's daemon, if one runs.

    The daemon's lock decides, not the pid file alone: after a SIGKILL or a reboot
    the file names a pid that may now be any other process, which `daemon stop`
    must never signal.
    """
    from filelock import FileLock, Timeout

    directory = factory.paths.factory_dir
    pid = read_pid(directory)
    if pid is None or not alive(pid):
        return None
    lock = FileLock(str(directory / LOCK_FILE), timeout=0)
    try:
        lock.acquire()
    except Timeout:
        return pid  # held: a daemon runs, and wrote this pid when it took the lock
    except OSError:
        return None
    lock.release()
    (directory / PID_FILE).unlink(missing_ok=True)  # stale: no daemon holds the lock
    return None


def start(factory: Factory, wait_s: float = 30) -> tuple[int, Path]:
    """Start `gitfactory daemon` detached; returns its pid once it holds the lock."""
    factory.require_tip()
    pid = running(factory)
    if pid is not None:
        raise BusyError(f"a daemon already runs for this repository (pid {pid})")
    directory = factory.paths.factory_dir
    directory.mkdir(exist_ok=True)
    log = directory / LOG_FILE
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gitfactory", "daemon"], cwd=factory.paths.common_dir,
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    deadline = time.monotonic() + wait_s
    while read_pid(directory) != proc.pid:
        if proc.poll() is not None or time.monotonic() > deadline:
            raise FactoryError(f"the daemon did not start; its output is in {log}")
        time.sleep(0.05)
    return proc.pid, log


def stop(factory: Factory, wait_s: float) -> tuple[int | None, bool]:
    """SIGTERM the daemon (it lets running steps finish); (pid, whether it has exited)."""
    pid = running(factory)
    if pid is None:
        return None, False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + wait_s
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    return pid, not alive(pid)


@dataclass(frozen=True)
class Unit:
    name: str
    path: Path
    enable: str  # the command that enables and starts it


def install_systemd(factory: Factory) -> Unit:
    """Write a systemd user unit running this repository's daemon."""
    from gitfactory.resources import template_file
    from gitfactory.store.git import main_top

    factory.require_tip()
    repo = main_top(factory.paths)
    digest = hashlib.sha256(str(repo).encode()).hexdigest()[:8]
    # A unit name systemd accepts whatever the directory is called (spaces, '%').
    name = f"gitfactory-{slug(repo.name) or 'repo'}-{digest}.service"
    program = shutil.which("gitfactory") or f"{shlex.quote(sys.executable)} -m gitfactory"
    text = template_file("systemd", "gitfactory.service").read_text("utf-8")
    text = text.replace("__UNIT__", name).replace("__REPO__", str(repo))
    text = text.replace("__GITFACTORY__", program)
    config_home = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    path = config_home / "systemd" / "user" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return Unit(
        name, path, f"systemctl --user daemon-reload && systemctl --user enable --now {name}"
    )
