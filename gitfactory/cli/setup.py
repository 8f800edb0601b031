"""gitfactory init."""

from __future__ import annotations

import click

from gitfactory.cli import Context, output


@click.command("init")
@click.option("--name", help="The factory's name (default: the repository's directory name).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.pass_obj
def init(obj: Context, name: str | None, as_json: bool) -> None:
    """Create the factory branch with a commented .factory/factory.yaml.

    The branch (`factory`) is an orphan branch: it shares no history with your code,
    and gitfactory never checks it out. Your HEAD, index and working tree are not
    touched. Works in a repository with no commits yet. Running init again is safe:
    it reports the existing factory and changes nothing.

    \b
    Examples:
      gitfactory init
      gitfactory init --name payments
      git log factory --stat        # see what init wrote
    """
    from gitfactory import create

    result = create.init(obj.factory, name)
    if as_json:
        output.emit_json(
            {
                "created": result.created,
                "name": result.name,
                "branch": result.branch,
                "tip": result.tip,
            }
        )
    elif result.created:
        output.echo(
            f"initialised factory {result.name!r} on branch {result.branch} at {result.tip[:12]}"
        )
        output.echo('next: `gitfactory log append note "hello"`, then `gitfactory log`')
    else:
        output.echo(
            f"factory {result.name!r} already initialised on branch {result.branch} "
            f"at {result.tip[:12]}; nothing changed"
        )
