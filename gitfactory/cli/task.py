"""gitfactory task …, gitfactory ready."""

from __future__ import annotations

from pathlib import Path

import click

from gitfactory.cli import Context, Group, output, task_edit, task_peers, task_view
from gitfactory.errors import UsageError
from gitfactory.plan import decisions, tasks
from gitfactory.store import actors, clock


@click.group("task", cls=Group)
def task_group() -> None:
    """The plan: add tasks, see them, claim them, and move them along.

    \b
    A task's state is submitted -> working -> (input_required <-> working) ->
    completed | failed | canceled | rejected. Ids are random: any unique prefix of
    one works wherever an ID is asked for (`task list` shows the short forms).
    """


@task_group.command("add")
@click.argument("title")
@click.option("--body", help="The task's description (markdown).")
@click.option(
    "--file",
    "body_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Read the description from a file ('-' is not supported; use --body).",
)
@click.option(
    "--depends-on",
    "depends_on",
    multiple=True,
    metavar="ID",
    help="A task that must be completed first. Repeatable.",
)
@click.option(
    "--priority",
    type=click.IntRange(0, 9),
    default=tasks.DEFAULT_PRIORITY,
    show_default=True,
    help="0 is the most urgent.",
)
@click.option("--label", "labels", multiple=True, help="A label (lowercase). Repeatable.")
@click.option("--workflow", help="The workflow in factory.yaml the task follows.")
@click.option("--parent", metavar="ID", help="The task this one is part of.")
@click.option("--in", "peer", metavar="PEER", help="Ask the peer factory PEER for it instead.")
@click.option("--as", "actor", metavar="ACTOR", help="Who asks for it (default: you).")
@click.option("--json", "as_json", is_flag=True, help='Print {"id": ...}.')
@click.pass_obj
def add(
    obj: Context,
    title: str,
    body: str | None,
    body_file: Path | None,
    depends_on: tuple[str, ...],
    priority: int,
    labels: tuple[str, ...],
    workflow: str | None,
    parent: str | None,
    peer: str | None,
    actor: str | None,
    as_json: bool,
) -> None:
    """Add a task to the plan and print its id.

    With --in PEER, the task is asked of a peer factory instead: a proxy task here
    stands for it and moves as the peer's task does (a dependency on it is met when
    the peer's task completes). A --depends-on PEER:ID names such a task by the id
    it has at the peer.

    \b
    Examples:
      gitfactory task add "Fix the off-by-one in stats.mean" --label bug --priority 1
      gitfactory task add "Release 1.2" --depends-on 4jrc7 --depends-on 150ht
      gitfactory task add --in api "Add /v2/users" --body "paginated, JSON"
    """
    if body is not None and body_file is not None:
        raise UsageError("give --body or --file, not both")
    text = body_file.read_text(encoding="utf-8") if body_file else (body or "")
    if peer is not None:
        if depends_on or parent or workflow:
            raise UsageError("--in asks a peer: --depends-on, --parent and --workflow are "
                             "for tasks of this plan")  # fmt: skip
        fields = {"title": title, "body": text, "priority": priority, "labels": labels}
        task_peers.add_in(obj, peer, fields, actor, as_json)
        return
    factory = obj.factory
    task = decisions.add(factory, title=title, requester=actors.who(factory, actor), body=text,
                    priority=priority, labels=labels, depends_on=depends_on, parent=parent,
                    workflow=workflow)  # fmt: skip
    if as_json:
        output.emit_json({"id": task.id})
    else:
        output.echo(task.id)


@task_group.command("list")
@click.option("--state", type=click.Choice(tasks.STATES), help="Only tasks in this state.")
@click.option("--label", help="Only tasks with this label.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@click.pass_obj
def list_cmd(obj: Context, state: str | None, label: str | None, as_json: bool) -> None:
    """List tasks: short id, priority, state, title, labels, assignee."""
    factory = obj.factory
    factory.require_tip()
    factory.index.refresh()
    texts = task_view.summaries(factory, clock.now_ms(), state=state, label=label)
    given = task_view.filters(state=state, label=label)
    empty = (
        f"no tasks match {given}" if given else "no tasks yet (add one: gitfactory task add TITLE)"
    )
    task_view.print_summaries(factory, texts, as_json, empty)


@task_group.command("show")
@click.argument("task_id", metavar="ID")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object.")
@click.pass_obj
def show(obj: Context, task_id: str, as_json: bool) -> None:
    """Show one task: state, workflow step, assignee, lease, body, history, and the
    artifacts it produced (transcripts, gate reports; `gitfactory artifact get ID`)."""
    from gitfactory.knowledge import artifacts

    factory = obj.factory
    factory.require_tip()
    factory.index.refresh()
    st = decisions.load(factory, decisions.resolve(factory, task_id), history=True)
    produced = artifacts.listing(factory, st.task.id)
    now = clock.now_ms()
    if as_json:
        out = task_view.to_json(st, now)
        out["body"] = st.task.body
        out["attempts"] = st.attempts  # how often each step was entered since the last retry
        out["history"] = [e.to_record() for e in st.history]
        out["artifacts"] = [a.to_record() for a in produced]
        if st.remote:
            out["remote"] = st.remote  # all its peer said: step, question, merge, reason
        output.emit_json(out)
        return
    t = st.task
    output.echo(f"{t.id}  {t.title}")
    output.echo(
        f"state      {st.effective(now)}" + ("  (lease ran out)" if st.expired(now) else "")
    )
    if st.step and st.state not in tasks.TERMINAL:
        attempt = st.attempts.get(st.step)
        output.echo(f"step       {st.step}" + (f" (attempt {attempt})" if attempt else ""))
    if st.assignee:
        output.echo(f"assignee   {st.assignee}")
    if st.lease_until:
        output.echo(f"lease      until {clock.format_time(st.lease_until)}")
    if st.cancel_requested:
        output.echo(f"cancel     requested: {st.cancel_requested}")
    if st.remote:
        task_peers.show_remote(st)
    output.echo(f"priority   {t.priority}   labels: {', '.join(t.labels) or '-'}")
    if t.depends_on:
        deps = factory.index.short_ids("tasks", t.depends_on)
        output.echo(f"depends on {', '.join(deps[d] for d in t.depends_on)}")
    output.echo(f"requester  {t.requester}, {output.local_time(t.created)}")
    if t.body:
        output.echo("")
        output.echo(t.body.rstrip())
    output.echo("")
    output.echo("history:")
    for e in st.history:
        text = f": {e.text}" if e.text else ""
        output.echo(f"  {output.local_time(e.time)}  {e.kind:<22} {e.actor}{text}")
    if produced:
        output.echo("")
        output.echo("artifacts (gitfactory artifact get ID):")
        kept = factory.index.short_ids("artifacts", [a.id for a in produced])
        for a in produced:
            output.echo(f"  {kept[a.id]:<10} {a.size:>10,}  {a.name}  ({a.producer})")


@task_group.command("claim")
@click.argument("task_id", metavar="ID")
@click.option("--as", "actor", metavar="AGENT", help="Who claims it (default: you).")
@task_view.LEASE_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print the task as JSON.")
@click.pass_obj
def claim(obj: Context, task_id: str, actor: str | None, lease: str, as_json: bool) -> None:
    """Take a task until the lease runs out. Exit 0: yours; exit 1: someone else holds it.

    Exactly one of any number of racing claimers wins. Keep the claim alive with
    `task heartbeat`; if the lease runs out the task goes back to the queue.

    With `sync: remote:` in factory.yaml the remote decides among clones: the claim
    counts once it was pushed there. Exit 6: the remote could not be reached, and
    the claim is tentative (nothing may start on it) until `gitfactory sync`
    confirms it or reports it lost.
    """
    from gitfactory.plan import steps

    lease_ms = clock.parse_duration(lease, "--lease")
    factory, tid, agent = task_view.target(obj, task_id, actor)
    st = steps.claim(factory, tid, agent, lease_ms, keep_tentative=True)
    until = clock.format_time(st.lease_until or 0)
    task_view.print_state(
        st, as_json, f"claimed {task_view.short(factory, tid)} for {agent} until {until}"
    )


@task_group.command("heartbeat")
@click.argument("task_id", metavar="ID")
@click.option("--as", "actor", metavar="AGENT", help="The holder (default: you).")
@task_view.LEASE_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print the task as JSON.")
@click.pass_obj
def heartbeat(obj: Context, task_id: str, actor: str | None, lease: str, as_json: bool) -> None:
    """Renew your lease on a task (refused once it has run out)."""
    factory, tid, agent = task_view.target(obj, task_id, actor)
    st = decisions.holder_move(
        factory,
        tid,
        agent,
        "task.heartbeat",
        lease_ms=clock.parse_duration(lease, "--lease"),
    )
    until = clock.format_time(st.lease_until or 0)
    task_view.print_state(
        st, as_json, f"lease on {task_view.short(factory, tid)} renewed until {until}"
    )


@task_group.command("release")
@click.argument("task_id", metavar="ID")
@click.option("--as", "actor", metavar="AGENT", help="The holder (default: you).")
@click.option("--json", "as_json", is_flag=True, help="Print the task as JSON.")
@click.pass_obj
def release(obj: Context, task_id: str, actor: str | None, as_json: bool) -> None:
    """Give a task back to the queue (or withdraw your tentative claim of it)."""
    from gitfactory.plan import arbiter

    factory, tid, agent = task_view.target(obj, task_id, actor)
    if arbiter.withdraw(factory, tid, agent):
        st = decisions.load(factory, tid)
        short = task_view.short(factory, tid)
        task_view.print_state(st, as_json, f"withdrew the tentative claim of {short}: it "
                              "was never written, and no sync will confirm it now")  # fmt: skip
        return
    st = decisions.holder_move(factory, tid, agent, "task.released")
    task_view.print_state(st, as_json, f"released {task_view.short(factory, tid)}")


@task_group.command("cancel")
@click.argument("task_id", metavar="ID")
@click.option("--reason", default="", help="Why.")
@click.option("--as", "actor", metavar="ACTOR", help="Who cancels (default: you).")
@click.option("--json", "as_json", is_flag=True, help="Print the task as JSON.")
@click.pass_obj
def cancel(obj: Context, task_id: str, reason: str, actor: str | None, as_json: bool) -> None:
    """Cancel a task. One being worked on gets a request its assignee honours.

    A proxy (a task asked of a peer factory) is withdrawn: canceled here, and the
    peer is asked to stop its task. Only a person withdraws one."""
    factory, tid, who = task_view.target(obj, task_id, actor)
    if decisions.load(factory, tid).remote is not None:
        return task_peers.withdraw(obj, tid, who, reason, as_json)
    st = decisions.cancel(factory, tid, who, reason)
    done = st.state == tasks.CANCELED
    short = task_view.short(factory, tid)
    task_view.print_state(
        st,
        as_json,
        f"canceled {short}"
        if done
        else f"asked {st.assignee} to stop {short}; it stays working until then",
    )


_FROM = click.option("--from", "step", metavar="STEP", help="The workflow step it starts at again.")
_REASON = click.option("--reason", default="", help="Why (recorded with the event).")


@task_group.command("retry")
@click.argument("task_id", metavar="ID")
@_FROM
@_REASON
@click.option("--as", "actor", metavar="ACTOR", help="Who decides (default: you).")
@click.option("--json", "as_json", is_flag=True, help="Print the task as JSON.")
@click.pass_obj
def retry(
    obj: Context, task_id: str, step: str | None, reason: str, actor: str | None, as_json: bool
) -> None:
    """Give a failed, canceled or rejected task another go.

    \b
    It is submitted again at the step it ended at (or --from STEP), every step's
    attempts back at zero; its branch and what is committed there stay. The daemon
    picks it up like any ready task. Only a person (human/NAME) may do this.
      gitfactory task retry 2tx9n                      after fixing what made it fail
      gitfactory task retry 2tx9n --from implement --reason "agent command fixed"
    """
    _restart(obj, task_id, step, reason, actor, as_json)


@task_group.command("reopen")
@click.argument("task_id", metavar="ID")
@_FROM
@_REASON
@click.option("--as", "actor", metavar="ACTOR", help="Who decides (default: you).")
@click.option("--json", "as_json", is_flag=True, help="Print the task as JSON.")
@click.pass_obj
def reopen(
    obj: Context, task_id: str, step: str | None, reason: str, actor: str | None, as_json: bool
) -> None:
    """Open a completed task again, at its workflow's first step (or --from STEP).

    \b
    Its branch stays; the next agent goes on from it. Only a person may do this.
      gitfactory task reopen 2tx9n --reason "the fix broke the export"
    """
    _restart(obj, task_id, step, reason, actor, as_json)


def _restart(
    obj: Context, task_id: str, step: str | None, reason: str, actor: str | None, as_json: bool
) -> None:
    from gitfactory.plan import steps

    factory, tid, who = task_view.target(obj, task_id, actor)
    st = steps.restart(factory, tid, who, step, reason)
    short = task_view.short(factory, tid)
    task_view.print_state(st, as_json, f"{short} is ready again at step {st.step}")


@task_group.command("ask")
@click.argument("task_id", metavar="ID")
@click.argument("question")
@click.option("--as", "actor", metavar="AGENT", help="The holder (default: you).")
@click.option("--json", "as_json", is_flag=True, help="Print the task as JSON.")
@click.pass_obj
def ask(obj: Context, task_id: str, question: str, actor: str | None, as_json: bool) -> None:
    """Put a task you hold on hold with a question (state input_required)."""
    factory, tid, agent = task_view.target(obj, task_id, actor)
    st = decisions.holder_move(factory, tid, agent, "task.asked", text=question)
    short = task_view.short(factory, tid)
    task_view.print_state(st, as_json, f"{short} waits for an answer: {question}")


@task_group.command("answer")
@click.argument("task_id", metavar="ID")
@click.argument("text")
@click.option("--as", "actor", metavar="ACTOR", help="Who answers (default: you).")
@task_view.LEASE_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print the task as JSON.")
@click.pass_obj
def answer(
    obj: Context, task_id: str, text: str, actor: str | None, lease: str, as_json: bool
) -> None:
    """Answer a task's question; it goes back to working for its assignee.

    For a proxy (a task asked of a peer factory, `task add --in`), the answer
    goes to the peer, whose task asked it (its question also reached the
    requester's inbox)."""
    factory, tid, who = task_view.target(obj, task_id, actor)
    if decisions.load(factory, tid).remote is not None:
        return task_peers.answer_proxy(obj, tid, text, who, as_json)
    st = decisions.answer(
        factory,
        tid,
        who,
        text,
        clock.parse_duration(lease, "--lease"),
    )
    short = task_view.short(factory, tid)
    task_view.print_state(st, as_json, f"answered {short}; {st.assignee} can go on")


for _command in (*task_edit.COMMANDS, *task_peers.COMMANDS):
    task_group.add_command(_command)
