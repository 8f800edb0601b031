"""gitfactory daemon …, gitfactory hooks …"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import click

from gitfactory.cli import Context, Group, output
from gitfactory.errors import UsageError

if TYPE_CHECKING:
    from gitfactory.run.hooks import HookState
    from gitfactory.run.ticks import TickReport


@click.group("daemon", cls=Group, invoke_without_command=True)
@click.option(
    "--burst", is_flag=True, help="Exit 0 once nothing runs and a tick finds nothing to do."
)
@click.option("--max-ticks", type=click.IntRange(1), help="Exit after this many ticks.")
@click.option("--json-log", is_flag=True, help="Print one JSON object per tick.")
@click.option(
    "--idle-wake",
    metavar="DURATION",
    default="5s",
    show_default=True,
    help="The longest an idle daemon sleeps when no commit wakes it (it then looks at "
    "leases and overdue acknowledgements).",
)
@click.pass_context
def daemon_group(
    ctx: click.Context, burst: bool, max_ticks: int | None, json_log: bool, idle_wake: str
) -> None:
    """Watch every worktree for commits and move the factory's work along.

    \b
    In the foreground (Ctrl-C or SIGTERM starts nothing new and lets running steps
    finish; a second one stops at once, and the next daemon adopts what still runs):
      gitfactory daemon                 run until stopped
      gitfactory daemon --burst         run until there is nothing left to do, exit 0
                                        (exit 4: what is left is blocked; it says by what)
      gitfactory daemon start           the same in the background (also: stop, status)
    Each tick takes in messages committed on watched branches, escalates overdue
    acknowledgements, puts tasks whose lease ran out back in the queue, ends the
    steps whose agent finished or ran out of time, and starts the agents (see
    `agents:` in factory.yaml) and gates of ready steps, each task in its own
    worktree. Every decision is a record in the log. One daemon runs per repository.
    """
    if ctx.invoked_subcommand is not None:
        return
    from gitfactory.run.daemon import Daemon
    from gitfactory.store.clock import parse_duration

    idle_wake_s = parse_duration(idle_wake, "--idle-wake") / 1000
    if idle_wake_s < 0.1:
        raise UsageError(
            f"--idle-wake: {idle_wake} would keep the daemon busy doing nothing",
            hint="give it 1s or more (commits wake the daemon at once anyway)",
        )
    if idle_wake_s > 86_400:
        raise UsageError(
            f"--idle-wake: {idle_wake} is longer than a day; leases and overdue "
            "acknowledgements would wait that long",
            hint="give it at most 1d",
        )

    def report(tick: TickReport) -> None:
        if json_log:
            output.emit_json(tick.to_json(), lines=True)
            return
        task_ids = [r["task"] for r in (*tick.finished, *tick.started, *tick.merged, *tick.failed)]
        short = obj.factory.index.short_ids("tasks", task_ids) if task_ids else {}
        for line in _lines(tick, short):
            output.echo(f"{time.strftime('%H:%M:%S')}  {line}")

    obj: Context = ctx.obj
    daemon = Daemon(
        obj.factory, burst=burst, max_ticks=max_ticks, report=report, idle_wake_s=idle_wake_s
    )
    code = daemon.run()
    if code and not json_log:
        blocked = list(daemon.blocked.values())
        things = output.counted(len(blocked), "thing")
        output.echo(f"stopped: the work left waits on {things} only you can change:")
        for b in blocked:
            output.echo(f"  - {b.what}\n    fix: {b.fix}")
    ctx.exit(code)


@daemon_group.command("start")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def start_cmd(obj: Context, as_json: bool) -> None:
    """Start the daemon in the background (its output goes to .git/gitfactory/daemon.log)."""
    from gitfactory.run import service

    pid, log = service.start(obj.factory)
    if as_json:
        output.emit_json({"pid": pid, "log": str(log)})
    else:
        output.echo(f"daemon started: pid {pid}, log {log}")


@daemon_group.command("stop")
@click.option(
    "--timeout", default=600, show_default=True, help="Seconds to wait for running steps."
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def stop_cmd(obj: Context, timeout: int, as_json: bool) -> None:
    """Stop the background daemon: running steps finish first (a second stop is immediate)."""
    from gitfactory.run import service

    pid, stopped = service.stop(obj.factory, timeout)
    if as_json:
        output.emit_json({"stopped": stopped, "pid": pid})
    elif pid is None:
        output.echo("no daemon runs for this repository")
    elif stopped:
        output.echo(f"daemon stopped (pid {pid})")
    else:
        output.echo(f"daemon {pid} is still finishing its running steps; stop again to end it now")


@daemon_group.command("install-systemd")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def install_systemd_cmd(obj: Context, as_json: bool) -> None:
    """Write a systemd user unit that runs this repository's daemon, and say how to enable it."""
    from gitfactory.run import service

    unit = service.install_systemd(obj.factory)
    if as_json:
        output.emit_json({"unit": unit.name, "path": str(unit.path), "enable": unit.enable})
        return
    output.echo(f"wrote {unit.path}")
    output.echo(f"enable and start it: {unit.enable}")
    output.echo(f"its log: journalctl --user -u {unit.name}")


@daemon_group.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def status_cmd(obj: Context, as_json: bool) -> None:
    """Whether a daemon runs for this repository, and its last tick."""
    from gitfactory.run import service
    from gitfactory.run.daemon import read_status

    pid = service.running(obj.factory)
    status = read_status(obj.factory.paths.factory_dir) if pid is not None else None
    if as_json:
        output.emit_json({"running": pid is not None, "pid": pid, "status": status})
        return
    if pid is None:
        output.echo("no daemon runs for this repository")
        return
    last = output.local_time(status["last_tick"]) if status else "not yet"
    ticks = status["ticks"] if status else 0
    output.echo(f"daemon running: pid {pid}, {ticks} tick(s), last tick {last}")
    sync = (status or {}).get("sync") or {}
    if sync.get("remote"):
        state = "in touch" if sync.get("ok") else f"cannot sync: {sync.get('error')}"
        output.echo(f"sync with {sync['remote']}: {state}; {sync.get('received', 0)} record(s) "
                    f"in, {sync.get('sent', 0)} out since it started")  # fmt: skip


def _lines(tick: TickReport, short: dict[str, str]) -> list[str]:
    """What a human watching the daemon wants to see of one tick (``short``: the
    tasks' short ids)."""
    lines = []
    if tick.n == 1:
        lines.append(f"caught up: {output.counted(len(tick.moved), 'ref')} looked at")
    for r in tick.finished:
        result = f"{r['outcome']} ({r['how']})" if r["outcome"] else r["how"].replace("_", " ")
        if r["outcome"] in ("failure", "timeout") and r.get("why"):
            result = f"{r['outcome']}: {r['why']}"
        then = {"failed": "; the task failed: `gitfactory task retry "
                f"{short[r['task']]}` once the cause is fixed", "completed": "; task completed",
                None: ""}.get(r.get("then"), f"; next: {r.get('then')}")  # fmt: skip
        lines.append(f"finished {r['agent']} {r['step']} of {short[r['task']]}: {result}{then}")
        lines.extend(f"         | {line}" for line in r.get("tail", ()))
    for r in tick.started:
        lines.append(f"started  {r['agent']} {r['step']} of {short[r['task']]}")
    for r in tick.merged:
        lines.append(f"merge    {short[r['task']]} into {r['target']}: {r['why']}")
    for r in tick.failed:
        lines.append(f"failed   {r['agent']} on {short[r['task']]}: workspace: {r['why']}")
    for count, noun, nouns, what in (
        (tick.delivered, "message", None, "delivered"),
        (tick.quarantined, "message file", None, "quarantined"),
        (tick.escalated, "acknowledgement", None, "escalated"),
        (len(tick.expired), "lease", None, "expired"),
        (len(tick.summarized), "session summary", "session summaries", "written"),
    ):
        if count:
            lines.append(f"{output.counted(count, noun, nouns)} {what}")
    for b in tick.new_blockers:
        lines.append(f"waiting  {b.what}")
        lines.append(f"         fix: {b.fix}")
    for b in tick.cleared:
        lines.append(f"resolved {b.what}")
    lines.extend(tick.synced)
    if tick.violations_changed and tick.violations:
        lines.append(f"integrity: {tick.violations} record(s) deleted or changed on the factory "
                     "branch (human/* told; `verify --repair` restores them)")  # fmt: skip
    return lines


@click.group("hooks", cls=Group)
def hooks_group() -> None:
    """The hooks that guard the factory branch and wake the daemon.

    \b
    reference-transaction (this repository): refuses, before it happens, any git
      command that would move the factory branch to a tree that deletes or changes
      a record (a commit from a stale checkout of the branch does that), and tells
      the daemon about every commit at once (without it the daemon still sees them,
      a little later).
    pre-receive (--server, a shared bare remote): refuses such a push.

    A hook you already have is kept and run first; uninstalling puts it back.
    """


_SERVER = click.option(
    "--server",
    is_flag=True,
    help="The pre-receive hook, for a shared (bare) remote: refuses pushes that lose records.",
)


@hooks_group.command("install")
@_SERVER
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def hooks_install(obj: Context, server: bool, as_json: bool) -> None:
    """Install the hook in the repository's hooks directory (idempotent)."""
    from gitfactory.run import hooks

    hook = hooks.SERVER_HOOK if server else hooks.HOOK
    _print_hook(hooks.install(obj.factory.paths, obj.factory.branch, hook), as_json)


@hooks_group.command("uninstall")
@_SERVER
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def hooks_uninstall(obj: Context, server: bool, as_json: bool) -> None:
    """Remove the hook and restore the one it chained to."""
    from gitfactory.run import hooks

    hook = hooks.SERVER_HOOK if server else hooks.HOOK
    _print_hook(hooks.uninstall(obj.factory.paths, hook), as_json)


@hooks_group.command("status")
@_SERVER
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def hooks_status(obj: Context, server: bool, as_json: bool) -> None:
    """Whether the hook is installed, and which hook of yours it runs first."""
    from gitfactory.run import hooks

    _print_hook(hooks.state(obj.factory.paths, hooks.SERVER_HOOK if server else hooks.HOOK),
                as_json)  # fmt: skip


def _print_hook(state: HookState, as_json: bool) -> None:
    if as_json:
        output.emit_json(
            {"path": str(state.path), "installed": state.installed,
             "chained": str(state.chained) if state.chained else None}
        )  # fmt: skip
        return
    word = "installed" if state.installed else "not installed"
    output.echo(f"{state.path}: {word}")
    if state.installed:
        guards = ("refuses pushes that would delete or change a record of the factory branch"
                  if state.path.name == "pre-receive" else
                  "refuses git commands that would delete or change a record of the factory "
                  "branch, and wakes the daemon on every commit")  # fmt: skip
        output.echo(f"  {guards}")
    if state.chained:
        output.echo(f"  runs your hook first: {state.chained}")
