"""gitfactory report: the factory, or one task, as one HTML file."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from gitfactory.cli import Context, output
from gitfactory.errors import UsageError


@click.command("report")
@click.option(
    "--html",
    "target",
    required=True,
    metavar="FILE",
    help="Write the report to FILE ('-': standard output).",
)
@click.option("--task", "task", metavar="ID", help="Only this task (any unique id prefix).")
@click.option("--json", "as_json", is_flag=True, help="Print what was written as JSON.")
@click.pass_obj
def report_cmd(obj: Context, target: str, task: str | None, as_json: bool) -> None:
    """Write one self-contained HTML file of the factory or of a task: to attach
    to a pull request or a chat, to read offline, to keep.

    \b
    The factory's report: the board, the open plan's dependency graph, and the
    timelines (steps, attempts, gate verdicts, the merge, mail) of the tasks that
    need a look and the most recent others. A task's: its timeline, its mail, its
    neighbours in the graph and its artifacts' text (gate reports, transcripts).
    Styles and graphs are inline: no script, nothing fetched.
      gitfactory report --html factory.html
      gitfactory report --html 2tx9n.html --task 2tx9n
    """
    from gitfactory.board import report

    factory = obj.factory
    text, held = report.html(factory, task)
    if target == "-":
        sys.stdout.write(text)
        return
    path = Path(target)
    if path.is_dir():
        raise UsageError(f"{target} is a folder", hint="give a file name, e.g. report.html")
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot write {target}: {exc.strerror or exc}") from exc
    if as_json:
        output.emit_json({"path": str(path), **held})
        return
    output.echo(f"wrote {target}: {output.counted(held['tasks'], 'task')} in full, "
                f"{held['graph']} in the graph, {output.counted(held['artifacts'], 'artifact')}, "
                f"{held['bytes'] / 1024:,.0f} KB")  # fmt: skip
