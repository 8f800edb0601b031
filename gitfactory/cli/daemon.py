"""gitfactory daemon …, gitfactory hooks …"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import click

from gitfactory import output
from gitfactory.cli import Context

if TYPE_CHECKING:
    from gitfactory.daemon import TickReport


@click.group("daemon", invoke_without_command=True)
@click.option("--burst", is_flag=True, help="Exit 0 as soon as a tick finds nothing to do.")
@click.option("--max-ticks", type=click.IntRange(1), help="Exit after this many ticks.")
@click.option("--json-log", is_flag=True, help="Print one JSON object per tick.")
@click.pass_context
def daemon_group(ctx: click.Context, burst: bool, max_ticks: int | None, json_log: bool) -> None:
    """Watch every worktree for commits and move the factory's work along.

    \b
    In the foreground (Ctrl-C or SIGTERM stops it after the current tick; a second
    one stops it at once):
      gitfactory daemon                 run until stopped
      gitfactory daemon --burst         run until there is nothing left to do, exit 0
    Each tick takes in messages committed on watched branches, escalates overdue
    acknowledgements and puts tasks whose lease ran out back in the queue; every
    decision is a record in the log. One daemon runs per repository.
    """
    if ctx.invoked_subcommand is not None:
        return
    from gitfactory.daemon import Daemon

    def report(tick: TickReport) -> None:
        if json_log:
            output.emit_json(tick.to_json(), lines=True)
            return
        for line in _lines(tick):
            output.echo(f"{time.strftime('%H:%M:%S')}  {line}")

    obj: Context = ctx.obj
    daemon = Daemon(obj.factory, burst=burst, max_ticks=max_ticks, report=report)
    ctx.exit(daemon.run())


@daemon_group.command("start")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def start_cmd(obj: Context, as_json: bool) -> None:
    """Start the daemon in the background (its output goes to .git/gitfactory/daemon.log)."""
    import subprocess
    import sys

    from gitfactory.daemon import read_pid
    from gitfactory.errors import BusyError, FactoryError

    factory = obj.factory
    factory.require_tip()
    directory = factory.paths.factory_dir
    pid = read_pid(directory)
    if pid is not None and _alive(pid):
        raise BusyError(f"a daemon already runs for this repository (pid {pid})")
    directory.mkdir(exist_ok=True)
    log = directory / "daemon.log"
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gitfactory", "daemon"], cwd=factory.paths.common_dir,
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    deadline = time.monotonic() + 30
    while read_pid(directory) != proc.pid:
        if proc.poll() is not None or time.monotonic() > deadline:
            raise FactoryError(f"the daemon did not start; see {log}")
        time.sleep(0.05)
    if as_json:
        output.emit_json({"pid": proc.pid, "log": str(log)})
    else:
        output.echo(f"daemon started: pid {proc.pid}, log {log}")


@daemon_group.command("stop")
@click.option(
    "--timeout", default=600, show_default=True, help="Seconds to wait for running steps."
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def stop_cmd(obj: Context, timeout: int, as_json: bool) -> None:
    """Stop the background daemon: running steps finish first (a second stop is immediate)."""
    import os
    import signal

    from gitfactory.daemon import read_pid

    pid = read_pid(obj.factory.paths.factory_dir)
    if pid is None or not _alive(pid):
        if as_json:
            output.emit_json({"stopped": False, "pid": None})
        else:
            output.echo("no daemon runs for this repository")
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    stopped = not _alive(pid)
    if as_json:
        output.emit_json({"stopped": stopped, "pid": pid})
    elif stopped:
        output.echo(f"daemon stopped (pid {pid})")
    else:
        output.echo(
            f"daemon {pid} is still finishing its running steps; run stop again to end it now"
        )


@daemon_group.command("install-systemd")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def install_systemd_cmd(obj: Context, as_json: bool) -> None:
    """Write a systemd user unit that runs this repository's daemon, and say how to enable it."""
    import hashlib
    import os
    import shutil
    import sys
    from pathlib import Path

    from gitfactory.resources import template_file
    from gitfactory.worktrees import main_top

    factory = obj.factory
    factory.require_tip()
    repo = main_top(factory.paths)
    digest = hashlib.sha256(str(repo).encode()).hexdigest()[:8]
    unit = f"gitfactory-{repo.name}-{digest}.service"
    program = shutil.which("gitfactory") or f"{sys.executable} -m gitfactory"
    text = template_file("systemd", "gitfactory.service").read_text("utf-8")
    text = text.replace("__UNIT__", unit).replace("__REPO__", str(repo))
    text = text.replace("__GITFACTORY__", program)
    config_home = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    path = config_home / "systemd" / "user" / unit
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    enable = f"systemctl --user daemon-reload && systemctl --user enable --now {unit}"
    if as_json:
        output.emit_json({"unit": unit, "path": str(path), "enable": enable})
        return
    output.echo(f"wrote {path}")
    output.echo(f"enable and start it: {enable}")
    output.echo(f"its log: journalctl --user -u {unit}")


@daemon_group.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def status_cmd(obj: Context, as_json: bool) -> None:
    """Whether a daemon runs for this repository, and its last tick."""
    from gitfactory.daemon import read_pid, read_status

    directory = obj.factory.paths.factory_dir
    pid = read_pid(directory)
    alive = pid is not None and _alive(pid)
    status = read_status(directory) if alive else None
    if as_json:
        output.emit_json({"running": alive, "pid": pid if alive else None, "status": status})
        return
    if not alive:
        output.echo("no daemon runs for this repository")
        return
    last = output.local_time(status["last_tick"]) if status else "not yet"
    ticks = status["ticks"] if status else 0
    output.echo(f"daemon running: pid {pid}, {ticks} tick(s), last tick {last}")


def _lines(tick: TickReport) -> list[str]:
    """What a human watching the daemon wants to see of one tick."""
    lines = []
    if tick.n == 1:
        lines.append(f"caught up: {len(tick.moved)} ref(s) looked at")
    for r in tick.finished:
        result = r["outcome"] or r["how"].replace("_", " ")
        lines.append(f"finished {r['agent']} {r['step']} of {r['task'][:8]}: {result} ({r['how']})")
    for r in tick.started:
        lines.append(f"started  {r['agent']} {r['step']} of {r['task'][:8]}")
    for count, what in ((tick.delivered, "message(s) delivered"),
                        (tick.quarantined, "message file(s) quarantined"),
                        (tick.escalated, "acknowledgement(s) escalated"),
                        (len(tick.expired), "lease(s) expired")):  # fmt: skip
        if count:
            lines.append(f"{count} {what}")
    return lines


def _alive(pid: int) -> bool:
    import os

    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@click.group("hooks")
def hooks_group() -> None:
    """The reference-transaction hook that tells the daemon about commits at once.

    Without it the daemon still sees every commit (it watches the ref files and
    reconciles), just a little later. A hook you already have is kept and run
    first; uninstalling puts it back.
    """


@hooks_group.command("install")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def hooks_install(obj: Context, as_json: bool) -> None:
    """Install the hook in the repository's hooks directory (idempotent)."""
    from gitfactory import hooks

    _print_hook(hooks.install(obj.factory.paths), as_json)


@hooks_group.command("uninstall")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def hooks_uninstall(obj: Context, as_json: bool) -> None:
    """Remove the hook and restore the one it chained to."""
    from gitfactory import hooks

    _print_hook(hooks.uninstall(obj.factory.paths), as_json)


@hooks_group.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def hooks_status(obj: Context, as_json: bool) -> None:
    """Whether the hook is installed, and which hook of yours it runs first."""
    from gitfactory import hooks

    _print_hook(hooks.state(obj.factory.paths), as_json)


def _print_hook(state: object, as_json: bool) -> None:
    from gitfactory.hooks import HookState

    assert isinstance(state, HookState)
    if as_json:
        output.emit_json(
            {"path": str(state.path), "installed": state.installed,
             "chained": str(state.chained) if state.chained else None}
        )  # fmt: skip
        return
    word = "installed" if state.installed else "not installed"
    output.echo(f"{state.path}: {word}")
    if state.chained:
        output.echo(f"  runs your hook first: {state.chained}")
