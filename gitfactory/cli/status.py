"""gitfactory status, gitfactory index rebuild."""

from __future__ import annotations

import json
import time
from typing import Any

import click

from gitfactory.cli import Context, Group, output
from gitfactory.errors import EXIT_OK, FactoryError, InvalidRecordError
from gitfactory.plan import states
from gitfactory.store.factory import Factory

SHOWN = 10  # held tasks listed by the text output; --json lists them all


@click.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print the status as a JSON object.")
@click.pass_obj
def status(obj: Context, as_json: bool) -> int:
    """Show the factory at a glance: tasks by state, who holds what, who waits for an
    answer, whether the daemon runs; then the branch, record counts, invalid records
    and the index.

    Brings the derived index up to date first (it lives in .git/gitfactory/ and is
    never committed). Exit code 4 if the factory holds invalid records; each one is
    listed with its file, field and reason.
    """
    from gitfactory.config import factory_yaml
    from gitfactory.peers import listing
    from gitfactory.plan import sharing, tasks
    from gitfactory.run import service
    from gitfactory.run.daemon import read_status
    from gitfactory.store import clock

    factory = obj.factory
    config = factory_yaml.load(factory)
    index = factory.index
    before = index.indexed_tip()
    index.on_progress = ticker = output.Ticker("indexing", "records read")
    try:
        refresh = index.refresh()
    finally:
        ticker.done()
    invalid = index.invalid()
    now = clock.now_ms()

    def held(state: str) -> list[dict[str, Any]]:
        rows = states.summaries(factory, now, state=state)
        return [tasks.as_of(json.loads(summary), now) for summary, _, _ in rows]

    working = held(tasks.WORKING)
    # Failed and not replaced: a person decides what next (the newest last).
    failed = [row for row in held(tasks.FAILED) if not row.get("superseded_by")]
    asking = [{**row, "question": _question(factory, row["id"])}
              for row in held(tasks.INPUT_REQUIRED)]  # fmt: skip
    pid = service.running(factory)
    integrity = _integrity(factory)
    daemon = read_status(factory.paths.factory_dir) if pid is not None else None
    report = {
        "factory": config.name,
        "protocol": config.protocol,
        "branch": factory.branch,
        "tip": refresh.tip,
        "tasks": {
            "by_state": states.state_counts(factory, now),
            "ready": len(states.summaries(factory, now, ready=True)),
            "working": working,
            "input_required": asking,
            "failed": failed,
        },
        "blockers": [b.to_json() for b in _blockers(factory)],
        "daemon": {"running": pid is not None, "pid": pid, "status": daemon},
        "sync": sharing.state(factory),
        "peers": listing.summary(factory),
        "records": index.counts(),
        "invalid": [{"path": e.path, "field": e.field, "reason": e.reason} for e in invalid],
        "integrity": integrity,
        "index": {
            "path": str(index.path),
            "tip": index.indexed_tip(),
            "was_current": before == refresh.tip,
            "indexed_now": refresh.added,
        },
    }
    if as_json:
        output.emit_json(report)
    else:
        short = index.short_ids("tasks", [row["id"] for row in (*working, *asking, *failed)])
        _print(report, short, before == refresh.tip, refresh.added, invalid)
    return InvalidRecordError.exit_code if invalid else EXIT_OK


def _integrity(factory: Factory) -> dict[str, Any]:
    """What `verify` would say, checked from where it last stopped (never a first full
    walk: that is `gitfactory verify`'s, or the daemon's)."""
    from gitfactory.run import hooks
    from gitfactory.store import integrity

    try:
        guarded = hooks.state(factory.paths).installed
    except FactoryError:
        guarded = False
    if integrity.cached(factory) is None:
        return {"checked": False, "ok": None, "violations": [], "guarded": guarded}
    report = integrity.check(factory)
    return {"checked": True, "ok": report.ok, "guarded": guarded,
            "violations": [{"path": v.path, "how": v.how, "commit": v.commit}
                           for v in report.violations]}  # fmt: skip


def _blockers(factory: Factory) -> list[Any]:
    from gitfactory.run import blockers

    return blockers.find(factory)


def _question(factory: Factory, task_id: str) -> str | None:
    from gitfactory.store.log import EventQuery

    asked = factory.index.events(EventQuery(kind="task.asked", task=task_id, limit=1))
    return asked[-1][1].text if asked else None


def _print(
    report: dict[str, Any],
    short: dict[str, str],
    current: bool,
    added: int,
    invalid: list[InvalidRecordError],
) -> None:
    from gitfactory.plan.tasks import STATES

    plan, daemon = report["tasks"], report["daemon"]
    by_state = plan["by_state"]
    states = ", ".join(f"{s} {by_state[s]}" for s in STATES if by_state.get(s)) or "none yet"
    output.echo(f"factory   {report['factory']} (protocol {report['protocol']})")
    output.echo(f"branch    {report['branch']} at {(report['tip'] or '')[:12]}")
    output.echo(f"tasks     {states}; {plan['ready']} ready to claim")
    for title, rows in (("working", plan["working"]), ("asking", plan["input_required"])):
        for row in rows[:SHOWN]:
            where = f" at {row['step']}" if row.get("step") else ""
            if row.get("lease_until"):
                where += f", lease until {output.local_time(row['lease_until'])}"
            output.echo(
                f"  {title:<8}{short[row['id']]}  {row['assignee'] or '-'}{where}: {row['title']}"
            )
            if row.get("question"):
                output.echo(f"            question: {row['question']}")
        if rows and title == "asking":
            which = short[rows[0]["id"]] if len(rows) == 1 else "ID"
            output.echo(f"  answer with `gitfactory task answer {which} TEXT`")
        if len(rows) > SHOWN:
            output.echo(f"  ... and {len(rows) - SHOWN} more {title} (--json lists them all)")
    failed = plan["failed"]
    for row in failed[-SHOWN:]:
        where = f" at {row['step']}" if row.get("step") else ""
        output.echo(f"  failed  {short[row['id']]}{where}: {row['title']}")
    if len(failed) > SHOWN:
        output.echo(f"  ... and {len(failed) - SHOWN} more failed (--json lists them all)")
    if failed:
        which = short[failed[0]["id"]] if len(failed) == 1 else "ID"
        output.echo(f"  why: `gitfactory log --task {which}`; once the cause is fixed: "
                    f"`gitfactory task retry {which}`")  # fmt: skip
    for b in report["blockers"]:
        if b["cause"] != "answer":  # listed with their question above
            output.echo(f"blocked   {b['what']}")
            output.echo(f"          fix: {b['fix']}")
    if daemon["running"]:
        last = daemon["status"]["last_tick"] if daemon["status"] else None
        since = f", last tick {output.local_time(last)}" if last else ""
        output.echo(f"daemon    running, pid {daemon['pid']}{since}")
    else:
        output.echo("daemon    not running (`gitfactory daemon start` runs it in the background)")
    if report["sync"]:
        _print_sync(report["sync"])
    _print_peers(report["peers"])
    counts = ", ".join(f"{k}: {n}" for k, n in sorted(report["records"].items())) or "none"
    output.echo(f"records   {counts}")
    output.echo(f"invalid   {len(invalid) or 'none'}")
    for exc in invalid:
        output.echo(f"  {exc.message}")
    integrity = report["integrity"]
    if not integrity["guarded"]:
        output.echo("guard     none: a stale checkout of the factory branch can delete records; "
                    "`gitfactory hooks install` refuses that")  # fmt: skip
    if not integrity["checked"]:
        output.echo("integrity not verified yet: `gitfactory verify` walks the history once")
    elif integrity["ok"]:
        output.echo("integrity every record intact")
    else:
        n = len(integrity["violations"])
        output.echo(f"integrity {n} record{'s' * (n != 1)} deleted or changed after being written: "
                    "`gitfactory verify` names them, `--repair` restores them")  # fmt: skip
    state = "up to date" if current else f"updated (+{added} records)"
    output.echo(f"index     {state}: {report['index']['path']}")


@click.group("index", cls=Group)
def index_group() -> None:
    """The derived SQLite index under .git/gitfactory/ (never committed).

    Every query keeps it up to date by itself, reading only what changed since the
    commit it last saw. Deleting it loses nothing: it is rebuilt from the factory
    branch on the next query.
    """


@index_group.command("rebuild")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.pass_obj
def rebuild(obj: Context, as_json: bool) -> None:
    """Drop the index and build it again from the whole factory branch."""
    factory = obj.factory
    factory.require_tip()
    started = time.monotonic()
    factory.index.on_progress = ticker = output.Ticker("indexing", "records read")
    try:
        result = factory.index.rebuild()
    finally:
        ticker.done()
    seconds = time.monotonic() - started
    if as_json:
        output.emit_json(
            {
                "tip": result.tip,
                "records": result.added,
                "invalid": result.invalid,
                "seconds": round(seconds, 3),
            }
        )
    else:
        output.echo(
            f"indexed {result.added} records ({result.invalid} invalid) at "
            f"{(result.tip or '')[:12]} in {seconds:.2f}s"
        )


def _print_peers(peers: dict[str, Any] | None) -> None:
    if peers is None:
        return
    waiting = peers["pending_requests"]
    ask = (
        f"; {waiting} task request(s) wait for you (`gitfactory task requests`)" if waiting else ""
    )
    output.echo(f"peers     {', '.join(peers['peers']) or 'none'}{ask}")
    for name, error in peers["unreachable"].items():
        output.echo(f"          {name} unreachable: {error}")
    for name in peers["strangers"]:
        output.echo(f"          {name!r} pushed to refs/factory/inbox/{name} but is not a peer")


def _print_sync(sync: dict[str, Any]) -> None:
    if sync.get("problem"):
        output.echo(f"sync      problem: {sync['problem']}")
        output.echo(f"          fix: {sync['hint']}")
        return
    name = sync["remote"]
    if sync["ahead"] < 0:
        apart = f"{name} has no factory branch yet: `gitfactory sync` pushes it"
    elif sync["ahead"] or sync["behind"]:
        apart = (f"{sync['ahead']} commit(s) here not on {name} yet, {sync['behind']} there "
                 "not merged here (as last fetched)")  # fmt: skip
    else:
        apart = f"in step with {name} (as last fetched)"
    contact = sync["contact"] or {}
    if isinstance(contact.get("at"), int) and contact.get("ok"):
        apart += f", last answered {_ago(contact['at'])}"
    output.echo(f"sync      {apart}")
    if (sync["ahead"] or sync["behind"]) and not contact.get("blocked"):
        output.echo("          `gitfactory sync` exchanges them (the daemon does it on its own)")
    if contact.get("blocked"):
        output.echo(f"          blocked: {contact['blocked']}")
        output.echo(f"          fix: {contact.get('fix') or 'run `gitfactory sync` to see why'}")
    if contact and not contact.get("ok"):
        since = output.local_time(_rfc3339(contact.get("down_since")))
        output.echo(f"          {name} unreachable since {since}: {contact.get('error')}")
    for t in sync["tentative"]:
        output.echo(f"          tentative claim of {t['task'][:8]} for {t['agent']}: "
                    "nothing starts on it until `gitfactory sync` confirms it")  # fmt: skip


def _ago(ms: int) -> str:
    import time

    seconds = max(0, int(time.time() - ms / 1000))
    if seconds < 120:
        return f"{seconds}s ago"
    return f"{seconds // 60}m ago" if seconds < 7200 else f"{seconds // 3600}h ago"


def _rfc3339(ms: Any) -> str:
    from gitfactory.store import clock

    return clock.format_time(ms if isinstance(ms, int) else 0)
