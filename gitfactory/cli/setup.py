"""gitfactory init."""

from __future__ import annotations

import click

from gitfactory.cli import Context, output


@click.command("init")
@click.option("--name", help="The factory's name (default: the repository's directory name).")
@click.option(
    "--agent", "agents", multiple=True, metavar="SPEC",
    help="An agent for the new factory.yaml (repeatable): a preset (claude-code, codex, "
    "gemini, aider, opencode) makes a coder named after its tool; command:CMD a coder "
    "running CMD; ROLE/NAME=PRESET or ROLE/NAME=command:CMD any other agent.",
)  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.pass_obj
def init(obj: Context, name: str | None, agents: tuple[str, ...], as_json: bool) -> None:
    """Create the factory branch with a commented .factory/factory.yaml.

    The branch (`factory`) is an orphan branch: it shares no history with your code,
    and gitfactory never checks it out. Your HEAD, index and working tree are not
    touched. Works in a repository with no commits yet. Running init again is safe:
    it reports the existing factory and changes nothing (to add agents to it, use
    `gitfactory config edit`). Then it runs the quick checks of `gitfactory doctor`
    and prints each problem with the command that fixes it.

    \b
    Examples:
      gitfactory init
      gitfactory init --name payments
      gitfactory init --agent claude-code --agent reviewer/rex=command:./review.sh
      git log factory --stat        # see what init wrote
    """
    from gitfactory import create
    from gitfactory.cli.doctor import show
    from gitfactory.config.agents import from_specs
    from gitfactory.run import doctor

    result = create.init(obj.factory, name, agents=from_specs(agents))
    problems = [c for c in doctor.run(obj.factory, quick=True) if not c.ok]
    if as_json:
        output.emit_json(
            {
                "created": result.created,
                "name": result.name,
                "branch": result.branch,
                "tip": result.tip,
                "agents": list(result.agents),
                "joined": result.joined,
                "warning": result.warning,
                "problems": [c.to_json() for c in problems],
            }
        )
        return
    if result.warning:
        output.progress(f"warning: {result.warning}")
    if result.joined:
        output.echo(
            f"joined factory {result.name!r}: {result.joined}/{result.branch} already had it; "
            f"this clone's '{result.branch}' branch tracks it (at {result.tip[:12]}); "
            "nothing was created"
        )
    elif result.created:
        output.echo(
            f"initialised factory {result.name!r} on branch {result.branch} at {result.tip[:12]}"
        )
        output.echo(
            f"agents: {', '.join(result.agents) or 'none yet (see agents: in factory.yaml)'}"
        )
        output.echo('next: `gitfactory log append note "hello"`, then `gitfactory log`')
    else:
        output.echo(
            f"factory {result.name!r} already initialised on branch {result.branch} "
            f"at {result.tip[:12]}; nothing changed"
        )
    if problems:
        output.echo(f"doctor: {len(problems)} problem{'s' * (len(problems) != 1)} to fix:")
        show(problems)
