"""gitfactory scenario …"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from gitfactory.cli import Context, Group, output, text
from gitfactory.qa import scenarios
from gitfactory.store import actors

_HELP = """Scenarios: small user journeys that QA agents play, in .factory/scenarios/.

Each NAME.md on the factory branch is one journey in plain markdown: a title,
the user's goal, numbered steps, and what the user must see. A scenario gate
has an agent of its role play each scenario it picks against a task's work,
alone and one at a time, in the task's worktree; the agent writes a verdict
{"pass": true|false, "reasons": [...]} for each, and the gate passes when every
scenario passed. The gates are declared in .factory/factory.yaml:

\b
  gates:
    journeys:
      type: scenario
      role: qa                          # agents of this role play them
      scenarios: [login, 'checkout-*']  # names or patterns (default: all)

A workflow step `gate: journeys` then runs them. Scenarios are data, never
code; they change in place, one commit each, and git keeps every version:

\b
  git log -p factory -- .factory/scenarios

\b
Examples:
  gitfactory scenario                                 list them, with their titles
  gitfactory scenario edit login                      write one in $EDITOR (new: a template)
  gitfactory scenario edit checkout-guest --file checkout.md
  gitfactory scenario show login                      print one
  gitfactory scenario rm login                        remove one (git keeps its history)
"""


@click.group("scenario", cls=Group, invoke_without_command=True, help=_HELP)
@click.option("--json", "as_json", is_flag=True, help="Print the list as a JSON array.")
@click.pass_context
def scenario_group(ctx: click.Context, as_json: bool) -> None:
    if ctx.invoked_subcommand is None:
        _list(ctx.obj, as_json)


@scenario_group.command("list")
@click.option(
    "--json", "as_json", is_flag=True, help="Print a JSON array of {name, path, size, title}."
)
@click.pass_obj
def list_cmd(obj: Context, as_json: bool) -> None:
    """The scenarios on the factory branch, by name, with their sizes and titles.

    The title is the scenario's first markdown heading.
    """
    _list(obj, as_json)


def _list(obj: Context, as_json: bool) -> None:
    found = scenarios.listing(obj.factory)
    if as_json:
        output.emit_json([s.to_json() for s in found])
        return
    if not found:
        output.echo("no scenarios yet: `gitfactory scenario edit NAME` writes one from a template")
    for s in found:
        output.echo(f"{s.name:<24} {s.size:>8,} bytes  {s.title or '(no title)'}")


@scenario_group.command("show")
@click.argument("name")
@click.option(
    "--json", "as_json", is_flag=True, help="Print {name, path, size, title, text} as JSON."
)
@click.pass_obj
def show_cmd(obj: Context, name: str, as_json: bool) -> None:
    """Print the scenario NAME as committed, byte for byte."""
    data = scenarios.read(obj.factory, name)
    if as_json:
        wanted = scenarios.check_name(name)
        output.emit_json({"name": wanted, "path": scenarios.path_of(wanted),
                          "size": len(data), "title": scenarios.title_of(data),
                          "text": data.decode("utf-8", "replace")})  # fmt: skip
        return
    sys.stdout.buffer.write(data)
    sys.stdout.flush()


@scenario_group.command("edit")
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
    """Write the scenario NAME (new or changed) in one commit on the factory branch.

    Without --file, $EDITOR opens on the current text, or on a template for a
    new scenario (a title, the user's goal, numbered steps, what the user must
    see); if you leave it unchanged, nothing is committed. NAME is letters,
    digits, '.', '_' and '-' (at most 100); the file is .factory/scenarios/NAME.md.
    Write what a user does and sees, not how the code works: the QA agent plays
    it against the task's worktree and judges only what it sees.

    \b
    Examples:
      gitfactory scenario edit login
      gitfactory scenario edit checkout-guest --file checkout.md --as human/lead
      printf '# Help\\n\\n1. Run `app --help`.\\n\\nThe user sees the usage.\\n' \\
        | gitfactory scenario edit help --file -
    """
    factory = obj.factory
    wanted = scenarios.check_name(name)
    who = actors.who(factory, actor)
    path = scenarios.path_of(wanted)
    if source is None:
        current = scenarios.current(factory, wanted)
        data = text.edited(wanted, current, scenarios.template(wanted))
    else:
        data = text.read_source(source)
    commit = None
    if data is not None:
        with text.keeping(factory, f"scenario-{wanted}.md", data, from_editor=source is None):
            commit = scenarios.write(factory, wanted, data, who)
    text.report_edit(wanted, path, data, commit, as_json)


@scenario_group.command("rm")
@click.argument("name")
@click.option("--as", "actor", metavar="ADDRESS", help="Who removes it (default: you).")
@click.option("--json", "as_json", is_flag=True, help="Print {name, path, commit} as JSON.")
@click.pass_obj
def rm_cmd(obj: Context, name: str, actor: str | None, as_json: bool) -> None:
    """Remove the scenario NAME in one commit on the factory branch.

    Gates stop playing it from then on. Git keeps it: `git log -p factory --
    .factory/scenarios/NAME.md` shows every version, and `gitfactory scenario
    edit NAME --file F` brings one back.

    \b
    Example:
      gitfactory scenario rm login --as human/lead
    """
    factory = obj.factory
    wanted = scenarios.check_name(name)
    who = actors.who(factory, actor)
    commit = scenarios.remove(factory, wanted, who)
    path = scenarios.path_of(wanted)
    if as_json:
        output.emit_json({"name": wanted, "path": path, "commit": commit.oid})
    else:
        output.echo(f"removed {path} at {commit.oid[:12]}")
