"""gitfactory verify"""

from __future__ import annotations

import sys
from typing import Any

import click

from gitfactory.cli import Context, output
from gitfactory.store import actors


@click.command("verify")
@click.option("--full", is_flag=True, help="Walk the whole history, not only what is new.")
@click.option(
    "--repair",
    is_flag=True,
    help="Restore every deleted or changed record from history, in one commit with a "
    "factory.repaired event.",
)
@click.option("--as", "actor", metavar="ACTOR", help="Who repairs (default: you).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.pass_obj
def verify_cmd(obj: Context, full: bool, repair: bool, actor: str | None, as_json: bool) -> None:
    """Check that every record the factory branch ever held is still there, byte for byte.

    Records are append-only: only factory.yaml, documents and scenarios change in
    place. A plain-git commit can break that (one from a stale checkout of the
    factory branch deletes everything written since), and so can moving the branch
    back. verify walks the commits it has not seen yet (remembering where it
    stopped) and names every record deleted or changed after it was written, with
    the commit that did it. Exit 0: intact; 1: records are missing or changed.
    It also lists each time a sync found the shared remote moved back (a
    force-push that dropped records) and pushed the records back.

    \b
      gitfactory verify               what changed since the last check
      gitfactory verify --full        the whole history again
      gitfactory verify --repair      restore them, byte for byte, in one commit
    """
    from gitfactory.store import integrity

    factory = obj.factory
    factory.require_tip()
    ticker = output.Ticker("verify", "commits read")
    try:
        found = report = integrity.check(factory, full=full, progress=ticker)
    finally:
        ticker.done()
    repaired = None
    if repair and not found.ok:
        report, commit = integrity.repair(factory, actors.who(factory, actor))
        repaired = {"count": len(found.violations), "commit": commit.oid if commit else None}
    rewinds = _rewinds(factory)
    if as_json:
        out: dict[str, Any] = {
            "ok": report.ok, "tip": report.tip, "commits_read": found.commits,
            "full": found.full,
            "violations": [_violation_json(v) for v in found.violations],
            "remote_rewinds": rewinds,
        }  # fmt: skip
        if repaired is not None:
            out["repaired"] = repaired
            out["remaining"] = [_violation_json(v) for v in report.violations]
        output.emit_json(out)
    else:
        _print(found, repaired, report.ok)
        for r in rewinds:
            output.echo(f"remote: {r['text']} (at {output.local_time(r['time'])}; "
                        f"{r['actor']} pushed them back; event {r['id'][:10]})")  # fmt: skip
    sys.exit(0 if report.ok else 1)


def _rewinds(factory: Any) -> list[dict[str, Any]]:
    """The sync.rewound events: the shared remote moved back, and a sync healed it."""
    from gitfactory.store.log import EventQuery
    from gitfactory.store.sync import REWOUND

    factory.index.refresh()
    found = factory.index.events(EventQuery(kind=REWOUND))
    return [{"id": e.id, "time": e.time, "actor": e.actor, "text": e.text,
             **{k: e.data.get(k) for k in ("remote", "from", "to", "count")}}
            for _, e in found]  # fmt: skip


def _violation_json(v: Any) -> dict[str, Any]:
    return {"path": v.path, "how": v.how, "commit": v.commit, "subject": v.subject,
            "blob": v.blob}  # fmt: skip


def _print(found: Any, repaired: dict[str, Any] | None, ok: bool) -> None:
    tip = (found.tip or "")[:10]
    if not found.violations:
        output.echo(f"verify: every record is intact at {tip} ({found.commits:,} new commits read)")
        return
    n = len(found.violations)
    output.echo(f"verify: {n} record{'s' * (n != 1)} deleted or changed after being written "
                f"(factory at {tip}):")  # fmt: skip
    for v in found.violations[:50]:
        by = f"by {v.commit[:10]} {output.sanitize(v.subject)}" if v.commit else v.subject
        output.echo(f"  {v.how:<8} {output.sanitize(v.path)}  {by}")
    if n > 50:
        output.echo(f"  ... and {n - 50} more (--json lists them all)")
    if repaired is None:
        output.echo("restore them, byte for byte, in one commit: gitfactory verify --repair")
    elif repaired["commit"]:
        state = "intact now" if ok else "still not intact: run verify again"
        output.echo(f"restored {repaired['count']} in commit {repaired['commit'][:10]}; {state}")
