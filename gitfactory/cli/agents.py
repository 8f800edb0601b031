"""gitfactory agents, gitfactory gc."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from gitfactory.cli import Context, output
from gitfactory.plan import states

if TYPE_CHECKING:
    from gitfactory.run.runs import Run


@click.command("agents")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@click.pass_obj
def agents_cmd(obj: Context, as_json: bool) -> None:
    """The agents of factory.yaml and what each runs now.

    For each agent: its address (role/name), how it runs (preset), and its current
    run on this machine, if any: task, step, since when, process id, lease.
    """
    from gitfactory.config import factory_yaml
    from gitfactory.plan import decisions
    from gitfactory.run.runs import RunBook, alive
    from gitfactory.store import clock

    factory = obj.factory
    factory.require_tip()
    config = factory_yaml.load(factory)
    factory.index.refresh()
    runs = {r.agent: r for r in RunBook(factory.paths.factory_dir).active()}
    now = clock.now_ms()
    rows: list[dict[str, Any]] = []
    for spec in [*config.agents.values()]:
        run = runs.get(spec.address)
        current = None
        if run is not None:
            st = decisions.load(factory, run.task)
            current = {
                "task": run.task, "step": run.step, "attempt": run.attempt,
                "since": clock.format_time(run.started_ms), "pid": run.pid,
                "alive": run.pid is not None and alive(run.pid),
                "lease_until": clock.format_time(st.lease_until) if st.lease_until else None,
                "worktree": run.worktree,
            }  # fmt: skip
        rows.append({"agent": spec.address, "preset": spec.preset, "running": current})
    gate = runs.get("factory/gate")
    if as_json:
        output.emit_json(rows)
        return
    if not rows:
        output.echo("no agents in factory.yaml (see the `agents:` section of its comments)")
    short = factory.index.short_ids("tasks", [r.task for r in runs.values()])
    for spec in config.agents.values():
        doing = _doing(runs.get(spec.address), short, now)
        output.echo(f"{spec.address:<24} {spec.preset:<12} {doing}")
    if gate is not None:
        output.echo(f"{'factory/gate':<24} {'gate':<12} {_doing(gate, short, now)}")


def _doing(run: Run | None, short: dict[str, str], now: int) -> str:
    if run is None:
        return "idle"
    minutes = (now - run.started_ms) // 60_000
    return f"{run.step} of {short[run.task]} for {minutes} min (pid {run.pid})"


@click.command("gc")
@click.option(
    "--runs-older-than",
    default="30d",
    show_default=True,
    metavar="DURATION",
    help="Also delete finished runs' prompts and transcripts older than this.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def gc_cmd(obj: Context, runs_older_than: str, as_json: bool) -> None:
    """Remove the worktrees of finished tasks; keep (and name) those with uncommitted work.

    Branches are kept: the work is on them. Your own checkout is never touched.
    Finished runs' directories under .git/gitfactory/runs/ (prompt, inbox copy,
    transcript) are deleted once older than --runs-older-than; the log keeps what
    happened.
    """
    from gitfactory.config import factory_yaml
    from gitfactory.plan.tasks import TERMINAL
    from gitfactory.run import worktrees
    from gitfactory.run.runs import RunBook
    from gitfactory.store.clock import parse_duration

    factory = obj.factory
    factory.require_tip()
    factory.index.refresh()
    finished = {d["task"]["id"][:8] for d in states.task_states(factory) if d["state"] in TERMINAL}
    result = worktrees.collect(factory.paths, factory_yaml.load(factory).dispatch, finished)
    age_s = parse_duration(runs_older_than, "--runs-older-than") / 1000
    runs = RunBook(factory.paths.factory_dir).prune(age_s)
    if as_json:
        output.emit_json(
            {"removed": [str(p) for p in result.removed], "kept": [str(p) for p in result.kept],
             "runs_deleted": runs}
        )  # fmt: skip
        return
    output.echo(f"removed {len(result.removed)} worktree(s) of finished tasks")
    output.echo(f"deleted {runs} finished run director(ies) older than {runs_older_than}")
    for path in result.kept:
        output.echo(f"kept {path}: it holds uncommitted changes")
