"""gitfactory docs …"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from gitfactory.cli import Context, Group, output, text
from gitfactory.knowledge import documents
from gitfactory.store import actors
from gitfactory.store.factory import Factory

_HELP = """The living documents every agent's prompt includes, in .factory/docs/.

\b
  best-practices   the house rules of this repository (fill in its placeholders)
  start-sequence   what an agent does first on every task here
  history          one entry per finished task; generated, never edited
Any other NAME.md you add there is included too. People and agents edit the
documents in place and git keeps every version, like code:
  git log -p factory -- .factory/docs/best-practices.md

\b
Examples:
  gitfactory docs                                 list them
  gitfactory docs show start-sequence             print one
  gitfactory docs edit best-practices             change one in $EDITOR
  gitfactory docs edit testing --file notes.md    add or replace one from a file
  gitfactory docs regenerate                      summarize finished tasks, rebuild history
"""


@click.group("docs", cls=Group, invoke_without_command=True, help=_HELP)
@click.option("--json", "as_json", is_flag=True, help="Print the list as a JSON array.")
@click.pass_context
def docs_group(ctx: click.Context, as_json: bool) -> None:
    if ctx.invoked_subcommand is None:
        _list(ctx.obj, as_json)


@docs_group.command("list")
@click.option(
    "--json", "as_json", is_flag=True, help="Print a JSON array of {name, path, size, generated}."
)
@click.pass_obj
def list_cmd(obj: Context, as_json: bool) -> None:
    """The documents on the factory branch, by name, with their sizes."""
    _list(obj, as_json)


def _list(obj: Context, as_json: bool) -> None:
    found = documents.listing(obj.factory)
    if as_json:
        output.emit_json([d.to_json() for d in found])
        return
    if not found:
        output.echo("no documents yet: `gitfactory docs edit best-practices` starts one")
    for d in found:
        note = "  (generated)" if d.generated else ""
        output.echo(f"{d.name:<24} {d.size:>8,} bytes  {d.path}{note}")


@docs_group.command("show")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print {name, path, size, text} as JSON.")
@click.pass_obj
def show_cmd(obj: Context, name: str, as_json: bool) -> None:
    """Print the document NAME as committed, byte for byte."""
    data = documents.read(obj.factory, name)
    if as_json:
        wanted = documents.check_name(name)
        output.emit_json({"name": wanted, "path": documents.path_of(wanted), "size": len(data),
                          "text": data.decode("utf-8", "replace")})  # fmt: skip
        return
    sys.stdout.buffer.write(data)
    sys.stdout.flush()


@docs_group.command("edit")
@click.argument("name")
@text.file_option
@click.option("--as", "actor", metavar="ADDRESS", help="Who edits it (default: you).")
@click.option(
    "--json", "as_json", is_flag=True, help="Print {name, path, changed, commit} as JSON."
)
@click.pass_obj
def edit_cmd(
    obj: Context, name: str, source: Path | None, actor: str | None, as_json: bool
) -> None:
    """Change the document NAME (or create it) in one commit on the factory branch.

    Without --file, $EDITOR opens on the current text; if you leave it unchanged,
    nothing is committed. history cannot be edited: it is generated from the
    session summaries (`gitfactory docs regenerate`).

    \b
    Examples:
      gitfactory docs edit best-practices
      gitfactory docs edit start-sequence --file start.md --as human/lead
      echo "- Run make check before every commit." | gitfactory docs edit rules --file -
    """
    factory = obj.factory
    wanted = documents.check_name(name, writing=True)
    who = actors.who(factory, actor)
    path = documents.path_of(wanted)
    data = _edited(factory, wanted) if source is None else text.read_source(source)
    commit = None
    if data is not None:
        with text.keeping(factory, f"{wanted}.md", data, from_editor=source is None):
            commit = documents.write(factory, wanted, data, who)
    text.report_edit(wanted, path, data, commit, as_json)


def _edited(factory: Factory, name: str) -> bytes | None:
    """The text after $EDITOR, or None if it was left as it was."""
    try:
        current: bytes | None = documents.read(factory, name)
    except documents.DocumentNotFoundError:
        current = None
    return text.edited(name, current, f"# {name}\n\n")


@docs_group.command("regenerate")
@click.option("--json", "as_json", is_flag=True, help="Print {summarized, commit} as JSON.")
@click.pass_obj
def regenerate_cmd(obj: Context, as_json: bool) -> None:
    """Summarize finished tasks that have no summary yet, and rewrite history from them.

    The daemon does this after every finished task; without a daemon, run it
    yourself. history.md is a function of the `session.summary` records only: the
    same records always give the same file, so a damaged or deleted history comes
    back as it was. Nothing is committed when it already matches.
    """
    factory = obj.factory
    summarized = documents.catch_up(factory)
    commit = documents.regenerate(factory)
    if as_json:
        output.emit_json({"summarized": [e.task for e in summarized],
                          "commit": commit.oid if commit else None})  # fmt: skip
        return
    short = factory.index.short_ids("tasks", [str(e.task) for e in summarized])
    for event in summarized:
        output.echo(f"summarized {short[str(event.task)]}: {event.text}")
    if commit is not None:
        output.echo(f"rewrote {documents.HISTORY_PATH} at {commit.oid[:12]}")
    elif not summarized:
        output.echo(f"{documents.HISTORY_PATH} already matches the session summaries")
