"""gitfactory demo."""

from __future__ import annotations

from pathlib import Path

import click

from gitfactory import demo, log, output
from gitfactory.log import EventQuery


@click.command("demo")
@click.argument("directory", required=False, type=click.Path(file_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print {repo, events} as JSON at the end.")
def demo_cmd(directory: Path | None, as_json: bool) -> None:
    """Run a complete factory on a built-in sample project, offline, in seconds.

    Builds a small Python project with a real bug in DIRECTORY (default: a new
    temporary directory), initialises a factory with two scripted agents (real
    programs, no LLM): a coder and a reviewer, adds two tasks (the second waits for
    the first), and runs the daemon until nothing is left to do. The daemon gives
    each task its own worktree and branch, starts the coder, runs the tests gate,
    starts the reviewer; the agents talk by mail. Prints the timeline at the end
    and leaves the repository for you to inspect.
    """
    factory = demo.run(directory, output.progress if as_json else output.echo)
    rows, _ = log.query(factory, EventQuery())
    repo = factory.paths.work_tree
    if as_json:
        output.emit_json({"repo": str(repo), "events": [e.to_record() for _, e in rows]})
        return
    output.echo("")
    output.echo("timeline (gitfactory log):")
    for _, event in rows:
        output.echo(
            f"  {output.local_time(event.time)}  {event.actor:<14} {event.kind:<16} {event.text}"
        )
    output.echo("")
    output.echo(f"the demo repository is {repo}; look around:")
    output.echo(f"  cd {repo}")
    output.echo("  git log --oneline factory              # one commit per record written")
    output.echo("  gitfactory log --json                  # the same timeline for scripts")
    output.echo("  gitfactory mail inbox --as coder/ada   # the reviewer's answers")
    output.echo("  git branch --list 'task/*'             # the tasks' branches with the work")
