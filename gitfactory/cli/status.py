"""gitfactory status, gitfactory index rebuild."""

from __future__ import annotations

import time

import click

from gitfactory import output
from gitfactory.cli import Context
from gitfactory.errors import EXIT_OK, InvalidRecordError


@click.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print the status as a JSON object.")
@click.pass_obj
def status(obj: Context, as_json: bool) -> int:
    """Show the factory: name, branch tip, record counts, invalid records, index state.

    Brings the derived index up to date first (it lives in .git/gitfactory/ and is
    never committed). Exit code 4 if the factory holds invalid records; each one is
    listed with its file, field and reason.
    """
    factory = obj.factory
    config = factory.config()
    index = factory.index
    before = index.indexed_tip()
    refresh = index.refresh()
    invalid = index.invalid()
    report = {
        "factory": config.name,
        "protocol": config.protocol,
        "branch": factory.branch,
        "tip": refresh.tip,
        "records": index.counts(),
        "invalid": [{"path": e.path, "field": e.field, "reason": e.reason} for e in invalid],
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
        counts = ", ".join(f"{k}: {n}" for k, n in sorted(index.counts().items())) or "none"
        state = "up to date" if before == refresh.tip else f"updated (+{refresh.added} records)"
        output.echo(f"factory   {config.name} (protocol {config.protocol})")
        output.echo(f"branch    {factory.branch} at {(refresh.tip or '')[:12]}")
        output.echo(f"records   {counts}")
        output.echo(f"invalid   {len(invalid) or 'none'}")
        for exc in invalid:
            output.echo(f"  {exc.message}")
        output.echo(f"index     {state}: {index.path}")
    return InvalidRecordError.exit_code if invalid else EXIT_OK


@click.group("index")
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
    result = factory.index.rebuild()
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
