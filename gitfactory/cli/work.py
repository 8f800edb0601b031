"""gitfactory next, gitfactory step done, gitfactory workflow show."""

from __future__ import annotations

import dataclasses
from typing import Any

import click

from gitfactory.cli import Context, Group, output, task_view
from gitfactory.config import factory_yaml, workflows
from gitfactory.errors import NoWorkError, UsageError
from gitfactory.plan import steps
from gitfactory.run import prompt
from gitfactory.store import actors, clock


def _assignment_json(a: steps.Assignment, previous: str) -> dict[str, Any]:
    step = a.step
    return {
        "task": task_view.to_json(a.state, clock.now_ms()),
        "body": a.state.task.body,
        "workflow": a.workflow.name,
        "step": {
            "name": step.name, "kind": step.kind, "role": step.role, "gate": step.gate,
            "action": step.action, "instructions": step.instructions,
            "done_when": step.done_when, "timeout_s": step.timeout_s,
            "attempt": a.attempt, "max_attempts": step.max_attempts,
            **({"gate_spec": dataclasses.asdict(a.gate)} if a.gate else {}),
        },
        "lease_until": clock.format_time(a.state.lease_until) if a.state.lease_until else None,
        "claimed_now": a.claimed_now,
        "last_step": a.state.last_step,
        "previous": previous,
    }  # fmt: skip


@click.command("next")
@click.option("--as", "actor", metavar="AGENT", help="Who asks (default: $GITFACTORY_AGENT).")
@click.option(
    "--role", help="The role to find work for: the role part of --as (any other is refused)."
)
@click.option(
    "--lease",
    default="15m",
    show_default=True,
    metavar="DURATION",
    help="The lease of a step claimed now.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the assignment as JSON.")
@click.pass_obj
def next_cmd(obj: Context, actor: str | None, role: str | None, lease: str, as_json: bool) -> None:
    """The gateway an agent calls: what do I do now?

    If you hold a step, it is returned again. Otherwise the top ready task whose
    current workflow step is for your role is claimed for you, atomically (two
    agents never get the same step). Prints the task, the step, its instructions,
    how you know you are done, and when your lease runs out (renew it with
    `gitfactory task heartbeat`). Finish with `gitfactory step done`.

    Exit 0: here is your step. Exit 3: no work now (not an error; try later).
    Any other exit code is an error: never read it as "no work".
    """
    factory = obj.factory
    agent = actors.who(factory, actor)
    try:
        a = steps.next_for(factory, agent, role, clock.parse_duration(lease, "--lease"))
    except NoWorkError as exc:
        source = "--as" if actor else actors.default_source(factory)
        if source not in ("--as", f"${actors.ENV_AGENT}"):
            # A person who typed no --as: say whom they were taken for and how to choose
            # (an agent's environment names it, and it may not act as another).
            exc.message += (
                f": with no --as you are {agent} ({source}); choose who asks with "
                f"--as ROLE/NAME or ${actors.ENV_AGENT}=ROLE/NAME"
            )
        raise
    previous = prompt.previous(factory, a.state.task.id)
    if as_json:
        output.emit_json(_assignment_json(a, previous))
        return
    t, step = a.state.task, a.step
    short = task_view.short(factory, t.id)
    verb = "claimed for you" if a.claimed_now else "you hold it"
    output.echo(f"task     {short}  {t.title}  ({verb})")
    output.echo(
        f"step     {step.name} of workflow {a.workflow.name}, attempt {a.attempt} of "
        f"{step.max_attempts}"
    )
    if a.state.lease_until:
        output.echo(f"lease    until {clock.format_time(a.state.lease_until)}")
    if a.gate is not None:
        what = f"agents of role {a.gate.role} play the scenarios" if a.gate.role else a.gate.command
        output.echo(f"run      {a.gate.type} gate {a.gate.name}: {what}")
    elif step.action:
        output.echo(f"run      {step.action}")
    if step.instructions:
        output.echo(f"do       {step.instructions}")
    if step.done_when:
        output.echo(f"done     {step.done_when}")
    if t.body:
        output.echo("")
        output.echo(t.body.rstrip())
    if a.state.last_step:
        output.echo("")
        output.echo(previous.rstrip())
    output.echo("")
    output.echo(
        f"when finished: gitfactory step done {short} --as {a.state.assignee} "
        "--outcome success|failure [--note TEXT]"
    )


@click.group("step", cls=Group)
def step_group() -> None:
    """Finish the workflow step you hold."""


@step_group.command("done")
@click.argument("task_id", metavar="ID")
@click.option("--as", "actor", metavar="AGENT", help="The holder (default: $GITFACTORY_AGENT).")
@click.option(
    "--outcome",
    type=click.Choice(workflows.OUTCOMES),
    default="success",
    show_default=True,
    help="How the step ended; decides the next step.",
)
@click.option("--note", default="", help="What you did, or why it failed.")
@click.option(
    "--override",
    is_flag=True,
    help="As a person (human/NAME): end the step the task is at, whoever holds it, "
    "even a gate or the merge. Needs --reason; the history records it.",
)
@click.option("--reason", default="", metavar="TEXT", help="Why you override (with --override).")
@click.option("--json", "as_json", is_flag=True, help="Print the task as JSON.")
@click.pass_obj
def step_done(
    obj: Context,
    task_id: str,
    actor: str | None,
    outcome: str,
    note: str,
    override: bool,
    reason: str,
    as_json: bool,
) -> None:
    """End your step and move the task along its workflow; prints where it went.

    The workflow in factory.yaml decides the next step from the outcome: the task
    goes back to the queue for the next step's role, or is completed, or failed
    (a failure edge, or a step out of attempts).

    Only the holder ends a step, and only if the workflow gives the step to its
    role: gates and the merge are the factory's own, and end with success only
    when their run passed. Exit 1 when refused (the attempt is logged).

    \b
    A person may override that, for any step of a task that is not finished:
      gitfactory step done ID --override --reason "flaky runner, passed locally"
    """
    from gitfactory.plan import decisions, tasks

    factory = obj.factory
    agent = actors.who(factory, actor)
    if reason and not override:
        raise UsageError("--reason goes with --override", hint="to say what you did: --note TEXT")
    factory.index.refresh()
    tid = decisions.resolve(factory, task_id)
    if override:
        if note:
            raise UsageError("--override takes --reason, not --note")
        st = steps.override(factory, tid, agent, outcome, reason)
    else:
        st = steps.step_done(factory, tid, agent, outcome, note)
    last = st.last_step or {}
    if as_json:
        out = task_view.to_json(st, clock.now_ms())
        out["step"] = last
        output.emit_json(out)
        return
    nxt = last.get("next")
    short = task_view.short(factory, tid)
    if override:
        held = f" (held by {last['holder']})" if last.get("holder") else ""
        output.echo(f"step {last.get('step')} of {short}{held} overridden by {agent}")
    if st.state in (tasks.COMPLETED, tasks.FAILED):
        output.echo(f"task {short} {st.state} ({last.get('why')})")
    else:
        step = factory_yaml.load(factory).workflow(st.task.workflow).step(str(nxt))
        who = "the factory" if step.role == workflows.FACTORY_ROLE else f"role {step.role}"
        output.echo(
            f"task {short}: {last.get('why')}; next step {nxt} ({step.kind}, done by {who})"
        )


@click.group("workflow", cls=Group)
def workflow_group() -> None:
    """The workflows of factory.yaml."""


@workflow_group.command("show")
@click.argument("name", required=False)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "mermaid", "json"]),
    default="text",
    show_default=True,
    help="text for people, mermaid for a diagram, json for scripts.",
)
@click.option("--json", "as_json", is_flag=True, help="The same as --format json.")
@click.pass_obj
def show(obj: Context, name: str | None, fmt: str, as_json: bool) -> None:
    """Show a workflow's steps and transitions (default: the default workflow)."""
    fmt = "json" if as_json else fmt
    config = factory_yaml.load(obj.factory)
    if name is not None and name not in config.workflows:
        raise UsageError(
            f"no workflow {name!r}", hint=f"defined: {', '.join(config.workflows) or 'none'}"
        )
    wf = config.workflow(name)
    if fmt == "mermaid":
        output.echo(wf.mermaid())
        return
    if fmt == "json":
        output.emit_json({"name": wf.name, "start": wf.start, "steps": [
            {"name": s.name, "kind": s.kind, "role": s.role, "gate": s.gate, "action": s.action,
             "max_attempts": s.max_attempts, "timeout_s": s.timeout_s,
             "on_success": s.on_success, "on_failure": s.on_failure, "on_timeout": s.on_timeout,
             **({"gate_spec": dataclasses.asdict(config.gate(s))} if s.gate else {}),
             **({"strategy": s.strategy, "into": s.into} if s.action == "merge" else {})}
            for s in wf.steps.values()]})  # fmt: skip
        return
    output.echo(f"workflow {wf.name} (starts at {wf.start})")
    for s in wf.steps.values():
        doer = f"role {s.role}"
        if s.gate:
            gate = config.gate(s)
            what = f"role {gate.role} plays the scenarios" if gate.role else gate.command
            doer = f"gate {s.gate} ({gate.type}: {what})" if s.gate != gate.command else (
                f"gate (command: {gate.command})")  # fmt: skip
        elif s.action:
            doer = f"action {s.action} ({s.strategy} into {s.into or 'the base branch'})"
        output.echo(f"  {s.name:<12} {doer}")
        output.echo(
            f"  {'':<12} success -> {s.on_success}, failure -> {s.on_failure}, "
            f"timeout -> {s.on_timeout}; at most {s.max_attempts} attempts"
        )
