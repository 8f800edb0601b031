"""gitfactory log, gitfactory log append."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any

import click

from gitfactory.cli import Context, log_view, output
from gitfactory.errors import EXIT_OK, InvalidRecordError, UsageError
from gitfactory.store import actors, ids, log, records
from gitfactory.store.log import Draft, Event, EventQuery

if TYPE_CHECKING:
    from gitfactory.store.factory import Factory

_LOG_HELP = """Read the execution log, oldest first and newest last.

The log is every event the factory recorded: one immutable JSON record per event
under .factory/log/ on the factory branch. Events are shown in fold order: by id,
which sorts by the writer's clock.

\b
Examples:
  gitfactory log                          everything
  gitfactory log --limit 20               the 20 newest events
  gitfactory log --kind note --since 2h   notes of the last two hours
  gitfactory log --task 4jrc7 --json      one task's events, as a JSON array
  gitfactory log --follow                 keep printing events as they are committed
  gitfactory log --full                   every line of the text, every data field

Each event is one line: time, kind, who wrote it, the task (its short id), the
first line of its text and its data as key=value pairs, cut to the terminal's
width; --full prints them whole, --json as they are recorded.

--since takes a duration (30s, 15m, 2h, 3d, 1w) or a date or time (2026-11-22,
2026-11-22T10:30, 2026-11-22T10:30:00Z; without a zone it is local time).
With --follow, --json prints one JSON object per line. If the log holds invalid
records they are named on stderr and the exit code is 4.
"""


@click.group("log", invoke_without_command=True, help=_LOG_HELP)
@click.option("--kind", help="Only events of this kind.")
@click.option("--task", metavar="ID", help="Only events about this task (any unique prefix).")
@click.option("--as", "actor", metavar="ACTOR", help="Only events written by ACTOR (role/name).")
@click.option("--since", metavar="TIME", help="Only events at or after TIME.")
@click.option("--limit", type=click.IntRange(min=0), help="Only the N newest matching events.")
@click.option("--follow", "-f", is_flag=True, help="Keep running and print new events.")
@click.option("--full", is_flag=True, help="Print each event's whole text and data.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array of events.")
@click.pass_context
def log_group(
    ctx: click.Context,
    kind: str | None,
    task: str | None,
    actor: str | None,
    since: str | None,
    limit: int | None,
    follow: bool,
    full: bool,
    as_json: bool,
) -> int:
    if ctx.invoked_subcommand is not None:
        return EXIT_OK
    factory = ctx.find_object(Context).factory  # type: ignore[union-attr]
    factory.require_tip()
    since_ms = log.parse_since(since) if since else None
    query = EventQuery(kind, _task(factory, task), actor, since_ms, limit)
    rows, invalid = log.query(factory, query)
    events = [event for _, event in rows]
    if as_json and not follow:
        output.emit_json([e.to_record() for e in events])
    elif not events and not follow:
        given = " ".join(f"--{k} {v}" for k, v in (("kind", kind), ("task", task),
                         ("as", actor), ("since", since)) if v)  # fmt: skip
        output.echo(f"no events match {given}" if given else "no events yet")
    else:
        _show(factory, events, as_json, full)
    _report_invalid(invalid)
    if follow:
        after = rows[-1][0] if rows else factory.index.last_seq()
        for event in log.follow(factory, query, after):
            _show(factory, [event], as_json, full)
    return InvalidRecordError.exit_code if invalid else EXIT_OK


def _task(factory: Factory, text: str | None) -> str | None:
    """The task id --task names: a whole id as it is (events may name a task this
    factory does not hold), else the task whose id starts with it."""
    if text is None or ids.is_id(text.strip().lower()):
        return text.strip().lower() if text else None
    from gitfactory.plan import decisions

    factory.index.refresh()
    return decisions.resolve(factory, text)


def _show(factory: Factory, events: list[Event], as_json: bool, full: bool) -> None:
    if as_json:
        for event in events:
            output.emit_json(event.to_record(), lines=True)
        return
    short = factory.index.short_ids("tasks", {e.task for e in events if e.task})
    for event in events:
        log_view.show(event, short, full)


def _report_invalid(invalid: list[InvalidRecordError]) -> None:
    for exc in invalid:
        sys.stderr.write(f"error: invalid record {output.sanitize(exc.message)}\n")
    if invalid:
        sys.stderr.write(
            f"hint: {len(invalid)} invalid record(s) skipped; see protocol/SPEC.md for the "
            "record format, `gitfactory status` for the list\n"
        )


def _parse_data(items: tuple[str, ...]) -> dict[str, Any]:
    """--data KEY=VALUE (a string) and KEY:=JSON (any JSON value), as in httpie."""
    data: dict[str, Any] = {}
    for item in items:
        eq = item.find("=")
        raw = eq > 0 and item[eq - 1] == ":"
        key = item[: eq - 1] if raw else item[:eq]
        if eq < 0 or not key:
            raise UsageError(
                f"--data {item!r}: expected KEY=VALUE or KEY:=JSON",
                hint='for example --data files=3 stores the string "3", '
                "--data files:=3 the number 3",
            )
        if key in data:
            raise UsageError(f"--data: key {key!r} given twice")
        value = item[eq + 1 :]
        try:
            data[key] = records.loads(value) if raw else value
        except json.JSONDecodeError as exc:
            raise UsageError(f"--data {item!r}: not valid JSON after ':=' ({exc.msg})") from None
        except (ValueError, RecursionError) as exc:
            why = "nested too deep" if isinstance(exc, RecursionError) else str(exc)
            raise UsageError(f"--data {item!r}: not valid JSON after ':=' ({why})") from None
    return data


@log_group.command("append")
@click.argument("kind", required=False)
@click.argument("text", required=False, default="")
@click.option("--task", metavar="ID", help="The task it is about (any unique prefix of its id).")
@click.option(
    "--as",
    "actor",
    metavar="ACTOR",
    help="Who writes it (role/name). Default: $GITFACTORY_AGENT, else human/<git user>.",
)
@click.option(
    "--data",
    "data",
    multiple=True,
    metavar="KEY=VALUE",
    help="Structured data: KEY=VALUE stores a string, KEY:=JSON any JSON value. Repeatable.",
)
@click.option(
    "--stdin",
    "from_stdin",
    is_flag=True,
    help="Read events as JSON lines from stdin and write them all in one commit.",
)
@click.option("--json", "as_json", is_flag=True, help='Print {"id": ...} (or {"ids": [...]}).')
@click.pass_obj
def append(
    obj: Context,
    kind: str | None,
    text: str,
    task: str | None,
    actor: str | None,
    data: tuple[str, ...],
    from_stdin: bool,
    as_json: bool,
) -> None:
    """Append an event to the execution log and print its id.

    KIND says what happened (lowercase, e.g. note, build.failed, review); TEXT is
    free text for humans. The event is one commit on the factory branch; your HEAD,
    index and working tree are not touched.

    \b
    Examples:
      gitfactory log append note "parser rewritten" --as coder/ada
      gitfactory log append test.run --data suite=unit --data passed:=42
      printf '%s\\n' '{"kind":"note","text":"a"}' '{"kind":"note","text":"b"}' \\
        | gitfactory log append --stdin        # both events in one commit

    With --stdin each line is an object with "kind" (required), "text", "task",
    "actor" and "data"; nothing is written unless every line is valid.
    """
    factory = obj.factory
    factory.require_tip()
    who = actors.who(factory, actor)
    if from_stdin:
        if kind or text or task or data:
            raise UsageError(
                "--stdin takes the events from stdin: give no KIND, TEXT, --task or --data"
            )
        events = log.events_from_lines(sys.stdin, who)
    else:
        if not kind:
            raise UsageError("missing KIND", hint='e.g. gitfactory log append note "hello"')
        draft = Draft(
            kind=kind, actor=who, text=text, task=_task(factory, task), data=_parse_data(data)
        )
        events = [log.new_event(draft)]
    commit = log.append(factory, events)
    if as_json:
        if from_stdin:
            output.emit_json({"ids": [e.id for e in events], "commit": commit.oid})
        else:
            output.emit_json({"id": events[0].id, "commit": commit.oid})
    else:
        for event in events:
            output.echo(event.id)
