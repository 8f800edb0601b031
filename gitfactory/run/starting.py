"""Starting a step: pick an idle agent of its role (or the gate agent), claim the
task for the step's whole timeout, make its worktree ready, render the prompt,
export the inbox, and spawn the command in its own process group.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gitfactory.config.gates import JUDGE, SCENARIO, Gate
from gitfactory.errors import FactoryError
from gitfactory.run import runs, worktrees
from gitfactory.run.runs import GATE_AGENT, Run
from gitfactory.store import clock, ids
from gitfactory.store.git import main_top

if TYPE_CHECKING:
    from gitfactory.config.agents import AgentSpec
    from gitfactory.config.factory_yaml import FactoryConfig
    from gitfactory.config.workflows import Step, Workflow
    from gitfactory.plan.tasks import Task, TaskState
    from gitfactory.run.dispatch import Dispatcher

LEASE_MARGIN_MS = 120_000  # the lease outlasts the step's timeout by this much


def doer(d: Dispatcher, step: Step) -> AgentSpec | str | None:
    """An idle agent that plays ``step``, GATE_AGENT for a gate, or None."""
    from gitfactory.config.workflows import plays

    config = d._config()
    role = None
    if step.gate:
        gate = config.gate(step)
        if gate.type != SCENARIO:
            return GATE_AGENT
        role = gate.role  # an agent of this role plays the scenarios
    busy = {r.agent for r in d.active.values()}
    for agent in config.agents.values():
        fits = agent.role == role if role else plays(agent.role, step)
        if agent.address in busy or not fits or not _runs_here(d, config, agent):
            continue
        limit = config.dispatch.max_per_role.get(agent.role)
        if (
            limit is not None
            and sum(1 for r in d.active.values() if r.agent.split("/")[0] == agent.role) >= limit
        ):
            continue
        return agent
    return None


def _runs_here(d: Dispatcher, config: FactoryConfig, agent: AgentSpec) -> bool:
    """Whether this clone can start ``agent``. With other clones (a sync remote), a
    step whose program is not on this machine is left to a clone that has it, instead
    of failing here; alone, it runs and fails with the shell's word for it."""
    from gitfactory.run import programs
    from gitfactory.store.git import main_top

    if not config.sync.remote:
        return True
    paths = d.factory.paths
    base = worktrees.base(paths, config.dispatch)  # where relative programs are looked up
    place = programs.Place(main_top(paths), paths.common_dir, base, config.dispatch.setup_copy)
    return programs.find(agent.command, place, agent.env).ok


def _take_branch(d: Dispatcher, task: Task) -> None:
    """With a sync remote, the task's work may have been done in another clone: take
    its branch from the remote first (:mod:`gitfactory.run.branches`)."""
    from gitfactory.plan import arbiter
    from gitfactory.run import branches

    try:
        where = arbiter.configured(d.factory)
    except FactoryError:
        return
    if where is None:
        return
    stem, branch = worktrees.names(d._config().dispatch, task)
    said = branches.take(
        d.factory, where, branch, worktrees.root(d.factory.paths, d._config().dispatch) / stem
    )
    if said is not None:
        d.note(d._event("dispatch.branch", task.id, said, {"branch": branch}))


def start(
    d: Dispatcher, task_id: str, wf: Workflow, step: Step, doer: AgentSpec | str
) -> Run | None:
    from gitfactory.plan import decisions, steps

    config = d._config()
    agent = doer if isinstance(doer, str) else doer.address
    gate = config.gate(step) if step.gate else None
    timeout_s = step.timeout_s or (gate.timeout_s if gate else None)
    timeout_ms = timeout_s * 1000 if timeout_s else config.dispatch.default_timeout_ms
    try:
        st = steps.claim(d.factory, task_id, agent, timeout_ms + LEASE_MARGIN_MS, clone=d.clone)
    except FactoryError:
        return None  # taken by someone else, or no longer ready
    after = [decisions.load(d.factory, dep).task for dep in st.task.depends_on]
    began = clock.now_ms()
    _take_branch(d, st.task)
    try:
        space = worktrees.ensure(d.factory.paths, config.dispatch, st.task, after)
    except FactoryError as exc:
        d._end_step(st, agent, "failure", f"workspace: {exc.message}")
        d.note(d._event("dispatch.failed", task_id, str(exc.message), {"agent": agent}))
        d.failed.append({"task": task_id, "agent": agent, "why": exc.message})
        d._tidy(task_id, worktrees.root(d.factory.paths, config.dispatch)
                   / worktrees.names(config.dispatch, st.task)[0])  # fmt: skip
        return None
    now = clock.now_ms()
    run = Run(
        id=ids.new_id(now), task=task_id, agent=agent, step=step.name,
        kind="gate" if gate else "agent",
        command=gate.command if gate and gate.command else
        doer.command if not isinstance(doer, str) else "",
        worktree=str(space.path), branch=space.branch, head=_tip(space.path),
        started_ms=now, deadline_ms=now + timeout_ms,
        attempt=st.attempts.get(step.name, 1),
        gate=dataclasses.asdict(gate) if gate else None,
    )  # fmt: skip
    d.book.save(run)  # before the process exists: a crash now is found at restart
    env = environment(d, run, st, wf, step, doer)
    command, stdin, stdout = (run.command, None, None)
    if gate is not None:
        command, stdin, stdout = gate_setup(d, run, st, gate)
    child = runs.spawn(
        command, space.path, env, d.book.transcript(run.id), d.book.exit_file(run.id),
        stdin=stdin, stdout=stdout,
    )  # fmt: skip
    run.pid = child.pid
    d.book.save(run)
    d.active[run.id] = run
    d.children[run.id] = child
    d.note(d._event(
        "dispatch.started", task_id, f"{agent} on {step.name} (attempt {run.attempt})",
        {"run": run.id, "agent": agent, "step": step.name, "attempt": run.attempt,
         "pid": child.pid, "worktree": run.worktree, "branch": run.branch,
         "kind": run.kind, "head": run.head, "created_worktree": space.created,
         "pooled_worktree": space.pooled, "workspace_ms": run.started_ms - began,
         "spawn_ms": clock.now_ms() - run.started_ms},
    ))  # fmt: skip
    return run


def gate_setup(
    d: Dispatcher, run: Run, st: TaskState, gate: Gate
) -> tuple[str, Path | None, Path | None]:
    """What a gate run starts: its command, and the files its input and output go
    through (a judge reads its input on stdin and prints its verdict; a scenario
    gate starts the scenario runner, which plays each scenario with the agent)."""
    import shlex
    import sys

    from gitfactory.qa import gates, playbook
    from gitfactory.run import prompt

    directory = d.book.directory(run.id)
    if gate.type == JUDGE:
        task = {"id": st.task.id, "title": st.task.title, "body": st.task.body}
        given = gates.judge_input(
            task=task, gate=gate, worktree=Path(run.worktree),
            base=worktrees.base(d.factory.paths, d._config().dispatch),
            branch=run.branch,
        )  # fmt: skip
        path = directory / "judge-input.json"
        path.write_text(json.dumps(given, indent=2) + "\n", encoding="utf-8")
        return run.command, path, directory / "verdict.out"
    if gate.type == SCENARIO:
        plays = []
        (directory / "scenarios").mkdir(exist_ok=True)
        for n, scenario in enumerate(gates.scenarios(d.factory.store.snapshot(), gate)):
            # Its own directory, numbered: no scenario's files can be another's.
            here = directory / "scenarios" / f"{n + 1:03d}"
            here.mkdir()
            (here / "scenario.md").write_text(scenario.text, encoding="utf-8")
            (here / "prompt.md").write_text(prompt.render({
                "task_id": st.task.id, "title": st.task.title, "agent": run.agent,
                "scenario": scenario.name, "scenario_text": scenario.text.strip(),
                "worktree": run.worktree, "branch": run.branch,
                "verdict_file": str(here / "verdict.json"),
            }, "scenario.md"), encoding="utf-8")  # fmt: skip
            files = {"file": "scenario.md", "prompt": "prompt.md", "verdict": "verdict.json",
                     "log": "output.log", "exit": "exit"}  # fmt: skip
            paths = {key: str(here / name) for key, name in files.items()}
            plays.append({"name": scenario.name, **paths})
        playbook.write(str(directory), run.command, plays)
        player = Path(playbook.__file__)
        runner = [sys.executable, "-I", "-S", str(player), str(directory)]
        return shlex.join(runner), None, None
    return run.command, None, None


def environment(
    d: Dispatcher, run: Run, st: TaskState, wf: Workflow, step: Step, doer: AgentSpec | str
) -> dict[str, str]:
    from gitfactory.store.git import git_env

    directory = d.book.directory(run.id)
    prompt = directory / "prompt.md"
    inbox = directory / "inbox"
    prompt.write_text(prompt_text(d, run, st, wf, step, inbox), encoding="utf-8")
    env = git_env()
    env.update({
        runs.MARKER: run.id, "GITFACTORY_TASK": run.task, "GITFACTORY_AGENT": run.agent,
        "GITFACTORY_STEP": run.step, "GITFACTORY_ATTEMPT": str(run.attempt),
        "GITFACTORY_REPO": str(main_top(d.factory.paths)),
        "GITFACTORY_WORKTREE": run.worktree, "GITFACTORY_BRANCH": run.branch,
        "GITFACTORY_PROMPT_FILE": str(prompt), "GITFACTORY_INBOX": str(inbox),
    })  # fmt: skip
    if run.gate is not None and run.gate["type"] == "judge":
        env["GITFACTORY_JUDGE_INPUT"] = str(directory / "judge-input.json")
    env["PATH"] = path_with_gitfactory(env.get("PATH", os.defpath))
    if not isinstance(doer, str):
        env.update(doer.env)
    return env


def path_with_gitfactory(path: str) -> str:
    """``path``, so that ``gitfactory`` is found on it: an agent ends its step with
    `gitfactory step done`, even when the daemon was started by its full path from a
    virtualenv that is not activated. Our folder goes last: the project's own
    `python` and tools keep the precedence they had."""
    import shutil

    from gitfactory.run.programs import own_entry_point

    ours = own_entry_point()
    if ours is None or shutil.which("gitfactory", path=path):
        return path
    return f"{path}{os.pathsep}{ours.parent}" if path else str(ours.parent)


def prompt_text(
    d: Dispatcher, run: Run, st: TaskState, wf: Workflow, step: Step, inbox: Any
) -> str:
    from gitfactory.knowledge import documents
    from gitfactory.mail import mailbox
    from gitfactory.run import prompt

    exported = mailbox.export(d.factory, run.agent, inbox)
    unread = [r for r in mailbox.inbox(d.factory, run.agent, unread=True, limit=20)]
    lines = [f"- {r.meta['created']} from {r.meta['from']}"
             f"{'' if r.verified else ' (UNVERIFIED: nothing vouches for this sender)'}: "
             f"{r.meta['subject']} ({inbox}/{r.meta['id']}.md)" for r in unread]  # fmt: skip
    return prompt.render({
        "task_id": st.task.id, "task_short": st.task.id[:8], "title": st.task.title,
        "agent": run.agent, "step": step.name, "attempt": str(run.attempt),
        "workflow": wf.name, "worktree": run.worktree, "branch": run.branch,
        "base": worktrees.base(d.factory.paths, d._config().dispatch),
        "body": st.task.body.strip() or "(no description)",
        "instructions": step.instructions or "(none)", "done_when": step.done_when or "-",
        "previous": prompt.previous(d.factory, st.task.id),
        "inbox": (f"{exported.total} message(s) in {inbox}; unread:\n" + "\n".join(lines))
        if lines else f"{exported.total} message(s) in {inbox}; none unread.",
        "documents": documents.for_prompt(d.factory),
    })  # fmt: skip


def _tip(worktree: Any) -> str | None:
    from gitfactory.store.git import run_git

    proc = run_git(["rev-parse", "--verify", "-q", "HEAD"], worktree, check=False)
    return proc.stdout.decode().strip() or None
