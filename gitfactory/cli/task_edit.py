"""gitfactory task edit, depend, split, supersede: changing the plan by new events."""

from __future__ import annotations

from typing import Any

import click

from gitfactory.cli import Context, output, task_view
from gitfactory.errors import UsageError
from gitfactory.plan import decisions, edits


@click.command("edit")
@click.argument("task_id", metavar="ID")
@click.option("--title", help="A new title.")
@click.option("--priority", type=click.IntRange(0, 9), help="A new priority (0 most urgent).")
@click.option("--body", help="A new description (markdown).")
@click.option("--add-label", "add_labels", multiple=True, metavar="L", help="Repeatable.")
@click.option("--remove-label", "remove_labels", multiple=True, metavar="L", help="Repeatable.")
@click.option("--as", "actor", metavar="ACTOR", help="Who edits (default: you).")
@click.option("--json", "as_json", is_flag=True, help="Print the task as JSON.")
@click.pass_obj
def edit(
    obj: Context,
    task_id: str,
    title: str | None,
    priority: int | None,
    body: str | None,
    add_labels: tuple[str, ...],
    remove_labels: tuple[str, ...],
    actor: str | None,
    as_json: bool,
) -> None:
    """Retitle, reprioritise, relabel or redescribe a task (a new event; history kept)."""

    change: dict[str, Any] = {k: v for k, v in (
        ("title", title), ("priority", priority),
        ("body", body.rstrip() + "\n" if body and body.strip() else body),
        ("add_labels", list(add_labels)), ("remove_labels", list(remove_labels)),
    ) if v not in (None, [])}  # fmt: skip
    factory, tid, who = task_view.target(obj, task_id, actor)
    st = edits.edit(factory, tid, who, change)
    task_view.print_state(st, as_json, f"edited {task_view.short(factory, tid)}: {st.task.title}")


@click.command("depend")
@click.argument("task_id", metavar="ID")
@click.option("--on", "add", multiple=True, metavar="DEP", help="Add a dependency. Repeatable.")
@click.option("--remove", multiple=True, metavar="DEP", help="Remove one. Repeatable.")
@click.option("--as", "actor", metavar="ACTOR", help="Who changes it (default: you).")
@click.option("--json", "as_json", is_flag=True, help="Print the task as JSON.")
@click.pass_obj
def depend(
    obj: Context,
    task_id: str,
    add: tuple[str, ...],
    remove: tuple[str, ...],
    actor: str | None,
    as_json: bool,
) -> None:
    """Make a task wait for others (or stop waiting). A cycle is refused, and named."""

    if not add and not remove:
        raise UsageError("give --on DEP or --remove DEP")
    factory, tid, who = task_view.target(obj, task_id, actor)
    st = edits.depend(
        factory,
        tid,
        who,
        [decisions.resolve(factory, d) for d in add],
        [decisions.resolve(factory, d) for d in remove],
    )
    short = factory.index.short_ids("tasks", [tid, *st.task.depends_on])
    deps = ", ".join(short[d] for d in st.task.depends_on) or "nothing"
    task_view.print_state(st, as_json, f"{short[tid]} now waits for {deps}")


@click.command("split")
@click.argument("task_id", metavar="ID")
@click.option(
    "--into",
    "titles",
    multiple=True,
    required=True,
    metavar="TITLE",
    help="A subtask's title. Repeatable.",
)
@click.option("--as", "actor", metavar="ACTOR", help="Who splits it (default: you).")
@click.option("--json", "as_json", is_flag=True, help='Print {"ids": [...]}.')
@click.pass_obj
def split(
    obj: Context, task_id: str, titles: tuple[str, ...], actor: str | None, as_json: bool
) -> None:
    """Split a task into subtasks; the task then waits for all of them."""

    factory, tid, who = task_view.target(obj, task_id, actor)
    children = edits.split(factory, tid, who, list(titles))
    if as_json:
        output.emit_json({"ids": children})
    else:
        for child in children:
            output.echo(child)


@click.command("supersede")
@click.argument("task_id", metavar="ID")
@click.option("--by", "successor", required=True, metavar="NEW", help="The task replacing it.")
@click.option("--reason", default="", help="Why.")
@click.option("--as", "actor", metavar="ACTOR", help="Who decides (default: you).")
@click.option("--json", "as_json", is_flag=True, help="Print the task as JSON.")
@click.pass_obj
def supersede(
    obj: Context, task_id: str, successor: str, reason: str, actor: str | None, as_json: bool
) -> None:
    """Replace a task by another: it is canceled, and tasks that waited for it now wait
    for its successor."""

    factory, tid, who = task_view.target(obj, task_id, actor)
    new = decisions.resolve(factory, successor)
    st = edits.supersede(factory, tid, who, new, reason)
    short = factory.index.short_ids("tasks", [tid, new])
    task_view.print_state(st, as_json, f"{short[tid]} superseded by {short[new]}")


COMMANDS = (edit, depend, split, supersede)
