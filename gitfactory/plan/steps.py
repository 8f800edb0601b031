"""What is next for an agent, and ending the step it holds: the pull side of the
workflows (`gitfactory next`, `gitfactory step done`).

The workflow graphs themselves are configuration (:mod:`gitfactory.config.workflows`);
here they meet the plan: the ready queue in the index, claims and holder moves
under the store's compare-and-swap (:mod:`gitfactory.plan.decisions`).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from gitfactory.config import factory_yaml
from gitfactory.config.gates import Gate
from gitfactory.config.workflows import (
    FACTORY_ROLE,
    OUTCOMES,
    Step,
    Workflow,
    plays,
    role_of,
)
from gitfactory.errors import ConfigError, FactoryError, NoWorkError, UsageError
from gitfactory.plan import arbiter, decisions, states, tasks
from gitfactory.plan.tasks import OVERRIDER_ROLE, TaskState
from gitfactory.store import actors, clock
from gitfactory.store.actors import ENV_AGENT
from gitfactory.store.log import Draft

if TYPE_CHECKING:
    from gitfactory.store.factory import Factory


@dataclass(frozen=True)
class Assignment:
    """What `gitfactory next` hands an agent: a task, the step it holds, the rules."""

    state: TaskState
    workflow: Workflow
    step: Step
    attempt: int
    claimed_now: bool
    gate: Gate | None = None  # the gate a gate step runs


def _assignment(factory: Factory, st: TaskState, claimed_now: bool) -> Assignment:
    wf = factory_yaml.load(factory).workflow(st.task.workflow)
    step = wf.step(st.step)
    gate = factory_yaml.load(factory).gate(step) if step.gate else None
    return Assignment(st, wf, step, held_attempt(st, wf, step), claimed_now, gate)


def held_attempt(st: TaskState, wf: Workflow, step: Step) -> int:
    """The attempt of ``step`` that the holder of ``st`` is on: the claims of it, with
    those that named no step while the task sat at the workflow's start. A held step
    is attempt 1 at least, however it was claimed."""
    claims = st.attempts.get(step.name, 0)
    if st.step is None and step.name == wf.start:
        claims += st.attempts.get(tasks.UNNAMED_START, 0)
    return max(claims, 1)


def _step_namer(wf: Workflow) -> Callable[[TaskState], str]:
    return lambda st: wf.step(st.step).name


def next_for(
    factory: Factory, agent: str, role: str | None = None, lease_ms: int | None = None
) -> Assignment:
    """The step ``agent`` holds, or the top ready step for its role, claimed atomically.

    Raises NoWorkError (exit 3) when nothing is ready; any failure to read the
    factory is an error of its own, never "no work".
    """
    if role is not None and role != role_of(agent):
        # An address says its role: a coder asking for a reviewer's step would review
        # its own work. The factory's steps are the daemon's.
        raise UsageError(
            f"--role {role}: {agent} plays the role {role_of(agent)!r}, not {role!r}",
            hint="the daemon takes the factory's steps (`gitfactory daemon`)"
            if role == FACTORY_ROLE
            else f"act as an agent of that role: --as {role}/NAME",
        )
    role = role or role_of(agent)
    config = factory_yaml.load(factory)
    _take_in(factory)
    factory.index.refresh()
    now = clock.now_ms()
    for task_id in states.held_by(factory, agent, now):
        return _assignment(factory, decisions.load(factory, task_id), claimed_now=False)
    others: dict[str, int] = {}  # ready steps of other agents' roles, to say who has work
    for text, _, _ in states.summaries(factory, now, ready=True):
        row = json.loads(text)
        wf = config.workflow(row["workflow"])
        step = wf.step(row["step"])
        if not plays(role, step):
            others[step.role] = others.get(step.role, 0) + 1
            continue
        try:
            claimed = claim(
                factory, row["id"], agent,
                lease_ms if lease_ms is not None else tasks.DEFAULT_LEASE_MS,
                keep_tentative=True,
            )  # fmt: skip
        except (arbiter.TentativeClaimError, UsageError):
            raise  # the remote is away, or the setup is wrong: not "someone was faster"
        except FactoryError:
            continue  # another agent was faster, or it stopped being ready: try the next
        return _assignment(factory, claimed, claimed_now=True)
    raise _no_work(agent, role, others)


def _take_in(factory: Factory) -> None:
    """With a sync remote, what the other clones pushed is work too: fetch and merge it
    first (nothing is pushed here; a claim pushes). A remote that is away leaves the
    local queue, whose claims are then tentative."""
    from gitfactory.store import contacts, remote
    from gitfactory.store import sync as syncing

    where = arbiter.configured(factory)
    if where is None or contacts.known_down(factory, where) is not None:
        return
    with contextlib.suppress(remote.RemoteUnreachableError):
        syncing.sync(factory, where, push=False, check=arbiter.check_in_place)


def _no_work(agent: str, role: str, others: dict[str, int]) -> NoWorkError:
    """No work for ``role``; if other agents' roles have ready steps, say which."""
    others.pop(FACTORY_ROLE, None)  # gates and merges: the daemon's, nobody asks for them
    hint = "exit code 3 means no work, not an error; try again later"
    if others:
        ready = ", ".join(f"{n} for role {r}" for r, n in sorted(others.items()))
        who = f"{next(iter(others))}/NAME" if len(others) == 1 else "ROLE/NAME"
        hint = (f"ready steps wait for other roles ({ready}): an agent of that role asks, "
                f"with --as {who} or ${ENV_AGENT}={who}; {hint}")  # fmt: skip
    return NoWorkError(f"no work for {agent} (role {role!r}) right now", hint=hint)


# Evidence a factory step needs before it may end with success: the record its run
# writes, for the same step and attempt, saying it passed.
EVIDENCE = {"gate": "gate.result", "action": "merge.result"}


def _doer(step: Step) -> str:
    return f"{step.kind} {step.gate or step.action}" if step.role == FACTORY_ROLE else step.role


def may_hold(
    config: factory_yaml.FactoryConfig, st: TaskState, actor: str, verb: str
) -> tuple[str, str] | None:
    """Why ``actor`` may not ``verb`` the step ``st`` is at, and what to do instead
    (None: it may). Agent steps belong to their role (the role part of the address);
    gates and actions to the factory itself."""
    step = config.workflow(st.task.workflow).step(st.step)
    role = role_of(actor)
    what = f"step {step.name!r} of task {st.task.id[:8]}"
    override = (f"a person may end it by hand: gitfactory step done {st.task.id[:8]} "
                "--override --reason TEXT")  # fmt: skip
    players = {FACTORY_ROLE}
    if step.gate and (gate := config.gate(step)).role:
        players.add(gate.role)  # a scenario gate: agents of its role play the scenarios
    if step.role == FACTORY_ROLE and role not in players:
        return (f"cannot {verb} {what}: it is the {_doer(step)}, which only the factory runs",
                f"the daemon runs it (`gitfactory daemon`); {override}")  # fmt: skip
    if step.role != FACTORY_ROLE and not plays(role, step):
        return (f"cannot {verb} {what}: it is for role {step.role!r}, not {role!r}",
                f"an agent of that role takes it (--as {step.role}/NAME); {override}")  # fmt: skip
    return None


def claim(
    factory: Factory,
    task_id: str,
    agent: str,
    lease_ms: int,
    keep_tentative: bool = False,
    clone: str | None = None,
) -> TaskState:
    """Claim the step the task is at, if the workflow lets ``agent`` hold it.

    With ``sync.remote`` set the remote decides (:mod:`gitfactory.plan.arbiter`);
    ``keep_tentative``: a claim the remote could not be asked about is kept for the
    next sync to confirm (it still raises TentativeClaimError). ``clone``: a daemon's
    claim (see :func:`gitfactory.plan.decisions.claiming`).
    """
    config = factory_yaml.load(factory)
    decide = decisions.claiming(
        factory, task_id, agent, lease_ms,
        step_of=lambda st: config.workflow(st.task.workflow).step(st.step).name,
        check=lambda st: may_hold(config, st, agent, "claim"), clone=clone,
    )  # fmt: skip
    where = arbiter.configured(factory)
    if where is None:
        return decisions.act(factory, task_id, decide)
    return arbiter.claim(factory, where, task_id, agent, decide, lease_ms, keep_tentative)


def _evidence(factory: Factory, st: TaskState, step: Step) -> tuple[str, str] | None:
    """Why a factory step may not end with success yet: no passing record of its run."""
    kind = EVIDENCE.get(step.kind)
    if kind is None:
        return None
    attempt = st.attempts.get(step.name, 0)
    for event in factory.index.task_events(st.task.id):
        data = event.data
        if (event.kind == kind and role_of(event.actor) == FACTORY_ROLE
                and data.get("step") == step.name and data.get("attempt") == attempt
                and data.get("pass") is True):  # fmt: skip
            return None
    return (f"cannot end step {step.name!r} of task {st.task.id[:8]} with success: "
            f"no passing {kind} for attempt {attempt}",
            f"the {_doer(step)} has to pass; a person may override: "
            f"gitfactory step done {st.task.id[:8]} --override --reason TEXT")  # fmt: skip


def _unchanged(factory: Factory, st: TaskState, step: Step) -> tuple[str, str] | None:
    """Why a step that must change the project may not end with success: the daemon
    started it on a branch that no commit since has changed (outside .factory/).
    A step no daemon started is not checked here: its work is wherever its agent is."""
    from gitfactory.store.trees import advances

    attempt = st.attempts.get(step.name, 0)
    started = [
        e.data for e in factory.index.task_events(st.task.id)
        if e.kind == "dispatch.started" and role_of(e.actor) == FACTORY_ROLE
        and e.data.get("step") == step.name and e.data.get("attempt") == attempt
    ]  # fmt: skip
    if not started or not isinstance(started[-1].get("branch"), str):
        return None
    branch, head = started[-1]["branch"], started[-1].get("head")
    repo = factory.store.repo
    tip = factory.store.branch_tip(branch)
    if advances(repo, head if isinstance(head, str) else None, tip):
        return None
    return (f"cannot end step {step.name!r} of task {st.task.id[:8]} with success: no change "
            f"was made (no commit on {branch} since the step started changes a file "
            "outside .factory/)",
            "commit your work (`git add FILES && git commit`) and try again, or end your run "
            "and the daemon commits what you leave in the worktree")  # fmt: skip


def step_done(
    factory: Factory,
    task_id: str,
    agent: str,
    outcome: str,
    note: str = "",
    data: dict[str, Any] | None = None,
) -> TaskState:
    """End the step ``agent`` holds with ``outcome`` and move the task along its workflow.

    Refused (and the attempt recorded) when the workflow gives the step to another
    role, or when a gate or action step would end with success without a passing
    result of its run.
    """
    _outcome(outcome)
    config = factory_yaml.load(factory)

    def check(st: TaskState) -> tuple[str, str] | None:
        # The holder's role was checked when it claimed (in the role it asked as);
        # what is checked again is that a factory step is ended by the factory.
        step = config.workflow(st.task.workflow).step(st.step)
        why = None
        if step.role == FACTORY_ROLE:
            why = may_hold(config, st, agent, "end")
        if why is None and outcome == "success":
            why = _evidence(factory, st, step)
        if why is None and outcome == "success" and step.requires_change:
            why = _unchanged(factory, st, step)
        return why

    try:
        return decisions.holder_move(
            factory, task_id, agent, "task.step_done", text=note,
            data_of=lambda st: {**(data or {}), **_ending(config, st, outcome)}, check=check,
        )  # fmt: skip
    except decisions.ClaimedError as exc:
        if exc.hint is None:  # not yours to end: say who may
            exc.hint = (
                "only the holder ends a step; a person may end the step the task is at: "
                f"gitfactory step done {task_id[:8]} --override --reason TEXT"
            )
        raise
    except decisions.IllegalMoveError as exc:
        if exc.hint is None:  # not now: the task is not working (asking, final, ...)
            exc.hint = (f"a step ends while its task is working; `gitfactory task show "
                        f"{task_id[:8]}` says where it is")  # fmt: skip
        raise


def override(factory: Factory, task_id: str, actor: str, outcome: str, reason: str) -> TaskState:
    """A person ends the step the task is at, whoever holds it: the workflow's edge
    for ``outcome`` is taken as if its doer had ended it, and the history says who
    overrode whom and why (``task.overridden``)."""
    _outcome(outcome)
    if role_of(actor) != OVERRIDER_ROLE:
        raise UsageError(
            f"only a person (human/NAME) may override a step, not {actor}",
            hint="agents end the steps they hold with `gitfactory step done` (no --override)",
        )
    actors.as_a_person(actor, "override a step")
    if not reason.strip():
        raise UsageError("--override needs --reason TEXT: the history says why")
    config = factory_yaml.load(factory)

    def decide(st: TaskState, now: int) -> tuple[list[Draft], FactoryError | None]:
        state = st.effective(now)
        if state not in tasks.MOVES["task.overridden"].sources:
            return [], decisions.illegal(st, "override a step of", now)
        data = {**_ending(config, st, outcome), "reason": reason.strip(),
                "holder": st.assignee if state != tasks.SUBMITTED else None}  # fmt: skip
        pre = [decisions.expiry_draft(st, actor)] if st.expired(now) else []
        return [*pre, Draft(kind="task.overridden", actor=actor, text=reason.strip(),
                                      data=data)], None  # fmt: skip

    return decisions.act(factory, task_id, decide)


def restart(
    factory: Factory, task_id: str, actor: str, step: str | None = None, reason: str = ""
) -> TaskState:
    """A person gives a finished task another go: a failed, canceled or rejected task
    is retried (``task.retried``), a completed one reopened (``task.reopened``). It is
    submitted again at ``step`` (default: the step it ended at, or the workflow's start
    for a completed task), with every step's attempts back at zero; its branch and
    what is committed there stay."""
    if role_of(actor) != OVERRIDER_ROLE:
        raise UsageError(
            f"only a person (human/NAME) may retry or reopen a task, not {actor}",
            hint="an agent asks a person instead: gitfactory mail send 'human/*' ...",
        )
    actors.as_a_person(actor, "retry or reopen a task")
    config = factory_yaml.load(factory)

    def decide(st: TaskState, now: int) -> tuple[list[Draft], FactoryError | None]:
        kind = "task.reopened" if st.state == tasks.COMPLETED else "task.retried"
        verb = tasks.MOVES[kind].verb
        if st.state not in tasks.MOVES[kind].sources:
            return [], decisions.illegal(st, verb, now)
        if st.superseded_by is not None:
            return [], decisions.IllegalMoveError(
                f"cannot {verb} task {st.task.id[:8]}: it was replaced by {st.superseded_by[:8]}",
                hint=f"retry the task that replaced it: gitfactory task retry "
                f"{st.superseded_by[:8]}",
            )
        wf = config.workflow(st.task.workflow)
        at = step or (wf.start if kind == "task.reopened" else wf.step(st.step).name)
        if at not in wf.steps:
            return [], UsageError(
                f"--from {at}: workflow {wf.name!r} has no step {at!r}",
                hint=f"its steps: {', '.join(wf.steps)}",
            )
        data = {"step": at, "from_state": st.state, "reason": reason.strip()}
        text = reason.strip() or f"{verb} at {at}"
        return [Draft(kind=kind, actor=actor, text=text, data=data)], None

    return decisions.act(factory, task_id, decide)


def _outcome(outcome: str) -> None:
    if outcome not in OUTCOMES:
        raise ConfigError(f"outcome must be one of {', '.join(OUTCOMES)}, not {outcome!r}")


def _ending(config: factory_yaml.FactoryConfig, st: TaskState, outcome: str) -> dict[str, Any]:
    wf = config.workflow(st.task.workflow)
    current = wf.step(st.step).name
    nxt, why = wf.next_step(current, outcome, st.attempts)
    return {"step": current, "outcome": outcome, "next": nxt, "why": why}
