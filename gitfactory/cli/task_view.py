"""How the task commands find a task and print one (shared by `task`, `next`, `ready`)."""

from __future__ import annotations

import json
from typing import Any

import click

from gitfactory.cli import Context, output
from gitfactory.plan import decisions, states, tasks
from gitfactory.plan.tasks import TaskState
from gitfactory.store import actors, clock
from gitfactory.store.factory import Factory

LEASE_OPTION = click.option(
    "--lease",
    default="15m",
    show_default=True,
    metavar="DURATION",
    help="How long the claim holds without a heartbeat (90s, 15m, 2h).",
)


def target(obj: Context, task_id: str, actor: str | None) -> tuple[Factory, str, str]:
    """The factory, the full id of the task a prefix names, and who acts on it."""
    factory = obj.factory
    factory.require_tip()
    factory.index.refresh()
    return factory, decisions.resolve(factory, task_id), actors.who(factory, actor)


def to_json(st: TaskState, now: int) -> dict[str, Any]:
    return tasks.as_of(tasks.summary(st), now)


def summaries(factory: Factory, now: int, **filters: Any) -> list[str]:
    """Task summaries as JSON text straight from the index, patched where a lease ran out."""
    texts = []
    for text, state, lease in states.summaries(factory, now, **filters):
        if state == tasks.WORKING and lease is not None and lease <= now:
            text = json.dumps(tasks.as_of(json.loads(text), now), ensure_ascii=False)
        texts.append(text)
    return texts


def print_summaries(factory: Factory, texts: list[str], as_json: bool, empty: str) -> None:
    """Task rows (or ``empty``, the one line that says there are none)."""
    if as_json:
        output.emit_json_texts(texts)
        return
    if not texts:
        output.echo(empty)
        return
    rows = [json.loads(text) for text in texts]
    short = factory.index.short_ids("tasks", [t["id"] for t in rows])
    for t in rows:
        held = f"  {t['assignee']}" if t["assignee"] else ""
        labels = f"  [{', '.join(t['labels'])}]" if t["labels"] else ""
        step = f" {t['step']}" if t["step"] and t["state"] not in tasks.TERMINAL else ""
        remote = t.get("remote")
        if remote:  # a proxy: the peer's task moves it
            said = remote.get("state", "")
            step = f" @{remote['peer']}" + (f":{said}" if said and said != t["state"] else "")
        output.echo(
            f"{short[t['id']]:<8} P{t['priority']}  {t['state'] + step:<22} "
            f"{t['title']}{labels}{held}"
        )


def filters(**given: str | None) -> str:
    """The filters a listing was given, as typed (``--label x --state working``)."""
    return " ".join(f"--{k.replace('_', '-')} {v}" for k, v in given.items() if v)


def short(factory: Factory, task_id: str) -> str:
    """How listings show a task's id: its shortest unique prefix."""
    return factory.index.short_id("tasks", task_id)


def print_state(st: TaskState, as_json: bool, message: str) -> None:
    now = clock.now_ms()
    if as_json:
        output.emit_json(to_json(st, now))
    else:
        output.echo(message)


@click.command("ready")
@click.option("--role", help="Only tasks whose current workflow step is for this role.")
@click.option("--label", help="Only tasks with this label.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@click.pass_obj
def ready_cmd(obj: Context, role: str | None, label: str | None, as_json: bool) -> None:
    """Tasks ready to be worked on: submitted, every dependency completed.

    Most urgent first (priority 0 before 9), then oldest. A task whose lease ran out
    is ready again. With --role, only tasks waiting at a step of that role (the
    factory's own gates and actions have the role `factory`).
    """
    from gitfactory.config import factory_yaml

    factory = obj.factory
    factory.require_tip()
    factory.index.refresh()
    texts = summaries(factory, clock.now_ms(), ready=True, label=label)
    if role is not None:
        from gitfactory.config import workflows

        config = factory_yaml.load(factory)

        def for_role(text: str) -> bool:
            row = json.loads(text)
            return workflows.plays(role, config.workflow(row["workflow"]).step(row["step"]))

        texts = [t for t in texts if for_role(t)]
    given = filters(role=role, label=label)
    empty = f"no ready task matches {given}" if given else "no task is ready"
    print_summaries(factory, texts, as_json, empty)
