"""What the factory waits for: work that is ready or asked for, and what keeps it from
moving, each with the one thing that unblocks it.

The daemon prints a blocker when it appears or changes (and exits ``--burst`` with
:data:`EXIT_BLOCKED` when only blocked work is left); ``status`` lists them. Every
blocker is found from the state in git and the configuration, so any reader finds the
same ones; the daemon adds what only it saw (a merge that had to wait after its claim).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from gitfactory.config import factory_yaml
from gitfactory.config.workflows import ANY_ROLE, FACTORY_ROLE
from gitfactory.errors import FactoryError
from gitfactory.plan import states, tasks
from gitfactory.run import worktrees
from gitfactory.store import clock

if TYPE_CHECKING:
    from gitfactory.config.factory_yaml import FactoryConfig
    from gitfactory.config.workflows import Step
    from gitfactory.store.factory import Factory

EXIT_BLOCKED = 4  # `daemon --burst` stopped with work left that only a person can unblock
PERSON = "human"


@dataclass(frozen=True)
class Blocker:
    """One cause that holds work back, and how to remove it."""

    cause: str  # base, agent, person, merge, answer, dependency
    subject: str  # what it is about: a branch, a role, a task id
    what: str  # one line: what waits, and why
    fix: str  # the command (or the edit) that unblocks it
    tasks: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        return f"{self.cause}:{self.subject}"

    def to_json(self) -> dict[str, Any]:
        return {"cause": self.cause, "subject": self.subject, "what": self.what,
                "fix": self.fix, "tasks": list(self.tasks)}  # fmt: skip


def find(factory: Factory, waits: Mapping[str, str] | None = None) -> list[Blocker]:
    """Every blocker of the factory now. ``waits`` (task id → why) are the waits the
    daemon met on its own, for ready tasks nothing here explains."""
    config = factory_yaml.load(factory)
    factory.index.refresh()
    now = clock.now_ms()
    ready = [json.loads(text) for text, _, _ in states.summaries(factory, now, ready=True)]
    found: list[Blocker] = []
    base = _base(factory, config, ready)
    if base is not None:
        return [base]  # nothing starts without a base: the rest would only repeat it
    found += _unplayed(config, ready)
    explained = {t for b in found for t in b.tasks}
    for row in ready:
        step = config.workflow(row["workflow"]).step(row["step"])
        if step.action and row["id"] not in explained:
            blocker = _merge(factory, config, row, step)
            if blocker is not None:
                found.append(blocker)
                explained.add(row["id"])
    for task_id, why in sorted((waits or {}).items()):
        if task_id not in explained and any(r["id"] == task_id for r in ready):
            again = ("remove what it names; the daemon tries the merge again when the target "
                     "branch moves, or within a minute")  # fmt: skip
            found.append(Blocker("merge", task_id, f"task {_short(factory, task_id)} waits: "
                                 f"{why}", again, (task_id,)))  # fmt: skip
    found += _questions(factory, now)
    found += _dependencies(factory)
    found += _remote_away(factory, config, [r["id"] for r in ready if r["id"] not in explained])
    return found


def _remote_away(factory: Factory, config: FactoryConfig, ready: list[str]) -> list[Blocker]:
    """Ready steps wait for a sync remote that does not answer (a claim counts only once
    the remote has it, unless sync.offline_claims is local)."""
    from gitfactory.store import contacts, remote

    if not ready or not config.sync.remote or config.sync.offline_claims == "local":
        return []
    try:
        where = remote.resolve(factory, config.sync.remote)
    except FactoryError:
        return []
    last = contacts.contacts(factory).get(where.name) or {}
    if last.get("ok", True):
        return []
    return [Blocker("remote", where.name,
                    f"{_ready(ready)} for {where.name}, which does not answer: a claim "
                    "counts only once the remote has it", "bring the remote back (the daemon "
                    "retries on its own), or set sync.offline_claims: local to work offline",
                    tuple(ready))]  # fmt: skip


def _base(factory: Factory, config: FactoryConfig, ready: list[dict[str, Any]]) -> Blocker | None:
    """No branch to start task worktrees from, or one with no commit yet."""
    if not ready:
        return None
    ids = tuple(r["id"] for r in ready)
    try:
        branch = worktrees.base(factory.paths, config.dispatch)
    except FactoryError as exc:
        return Blocker("base", "HEAD", f"{_ready(ids)}: {exc.message}",
                       exc.hint or "set dispatch.base in factory.yaml", ids)  # fmt: skip
    if factory.store.branch_tip(branch) is not None:
        return None
    return Blocker(
        "base", branch,
        f"{_ready(ids)}: the base branch {branch!r} has no commit yet, so "
        "no task can get a worktree",
        f"make a first commit on {branch}: git commit --allow-empty -m 'first commit' "
        f"(or set dispatch.base in factory.yaml to a branch that has one)", ids,
    )  # fmt: skip


def _unplayed(config: FactoryConfig, ready: list[dict[str, Any]]) -> list[Blocker]:
    """Ready steps of a role that no configured agent plays (a person's steps: one
    blocker that says who may take them)."""
    roles = {a.role for a in config.agents.values()}
    waiting: dict[str, list[str]] = {}
    for row in ready:
        step = config.workflow(row["workflow"]).step(row["step"])
        role = _player(config, step)
        if role is None or role in roles or (role == ANY_ROLE and roles):
            continue
        waiting.setdefault(role, []).append(row["id"])
    out = []
    for role, ids in sorted(waiting.items()):
        n = _ready(ids)
        if role == PERSON:
            out.append(
                Blocker(
                    "person",
                    role,
                    f"{n} for a person ({PERSON} steps)",
                    f"take one: gitfactory next --as {PERSON}/NAME",
                    tuple(ids),
                )
            )
            continue  # fmt: skip
        name = "any role" if role == ANY_ROLE else f"role {role!r}"
        as_role = "coder" if role == ANY_ROLE else role
        out.append(Blocker(
            "agent", role, f"{n} for an agent of {name}, and factory.yaml configures none",
            f"add one: gitfactory config edit (agents: NAME: {{role: {as_role}, preset: "
            f"claude-code}}), or do the step yourself: gitfactory next --as {as_role}/NAME",
            tuple(ids),
        ))  # fmt: skip
    return out


def _player(config: FactoryConfig, step: Step) -> str | None:
    """The agent role a step needs (None: the factory does it alone)."""
    if step.gate:
        return config.gate(step).role or None  # a scenario gate's players; other gates: None
    return None if step.role == FACTORY_ROLE else step.role


def _merge(
    factory: Factory, config: FactoryConfig, row: dict[str, Any], step: Step
) -> Blocker | None:
    from gitfactory.qa import merge

    try:
        target = step.into or worktrees.base(factory.paths, config.dispatch)
    except FactoryError:
        return None  # said by _base
    task_id = row["id"]
    if factory.store.branch_tip(target) is None:
        why, fix = (f"there is no branch {target!r} to merge into",
                    f"create it (git branch {target}) or change the step's `into:`")  # fmt: skip
    else:
        said = merge.blocked(factory, target)
        if said is None:
            return None
        places = merge.checkouts(factory, target)
        where = f" in {places[0]}" if places else ""
        why, fix = said, f"commit or stash the changes{where} (git -C {places[0]} status)" if (
            places) else "finish what holds the branch, then the daemon merges"  # fmt: skip
    what = f"the merge of task {_short(factory, task_id)} ({row['title']}) into {target} waits"
    return Blocker("merge", task_id, f"{what}: {why}", fix, (task_id,))


def _questions(factory: Factory, now: int) -> list[Blocker]:
    from gitfactory.store.log import EventQuery

    out = []
    for text, _, _ in states.summaries(factory, now, state=tasks.INPUT_REQUIRED):
        row = json.loads(text)
        short = _short(factory, row["id"])
        asked = factory.index.events(EventQuery(kind="task.asked", task=row["id"], limit=1))
        question = asked[-1][1].text if asked else "(no question text)"
        out.append(Blocker(
            "answer", row["id"],
            f"task {short} ({row['title']}) waits for an answer: {question}",
            f"gitfactory task answer {short} 'YOUR ANSWER'", (row["id"],),
        ))  # fmt: skip
    return out


def _dependencies(factory: Factory) -> list[Blocker]:
    out = []
    for dep, state, title, waiting in states.stuck(factory):
        again = "reopen" if state == tasks.COMPLETED else "retry"
        short = _short(factory, dep)
        out.append(Blocker(
            "dependency", dep,
            f"{_tasks(waiting)} for task {short} ({title}), which {_WAS.get(state, state)}",
            f"gitfactory task {again} {short}", tuple(waiting),
        ))  # fmt: skip
    return out


def _short(factory: Factory, task_id: str) -> str:
    """How a blocker names a task: the short id listings show, which commands take."""
    return factory.index.short_id("tasks", task_id)


_WAS = {"canceled": "was canceled", "rejected": "was rejected"}  # "failed" reads as it is


def _ready(ids: Sequence[str]) -> str:
    return "1 ready task waits" if len(ids) == 1 else f"{len(ids)} ready tasks wait"


def _tasks(ids: Sequence[str]) -> str:
    return "1 task waits" if len(ids) == 1 else f"{len(ids)} tasks wait"
