"""`gitfactory doctor`: is this factory ready to run, and if not, what fixes it?

Each check says ``ok``, ``problem`` or ``note`` (worth knowing, nothing to fix), what
it found, and for a problem the one command that fixes it. The checks read only:
git and its version, the dispatch base, the factory branch and its factory.yaml,
the records' integrity, the hooks, the daemon, the programs agents and gates run,
the roles workflow steps need, the worktree root and the derived index (which,
like every query, it brings up to date).
"""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from gitfactory.config.agents import DispatchConfig
from gitfactory.config.workflows import ANY_ROLE
from gitfactory.errors import FactoryError, NotInitializedError
from gitfactory.run import programs
from gitfactory.run.programs import EDIT, Place
from gitfactory.store.git import main_top, run_git

if TYPE_CHECKING:
    from gitfactory.config.factory_yaml import FactoryConfig
    from gitfactory.store.factory import Factory

OK, PROBLEM, NOTE = "ok", "problem", "note"
# git --path-format=absolute (hooks) needs 2.31; the reference-transaction hook 2.28.
MIN_GIT = (2, 31)
HUMAN_ROLE = "human"  # steps of this role are taken by people, never started by the daemon
NO_GIT = "git is not on PATH"
FIRST_COMMIT = "git commit --allow-empty -m 'first commit'"


@dataclass(frozen=True)
class Check:
    name: str
    level: str  # OK, PROBLEM or NOTE
    detail: str
    fix: str | None = None  # for a problem: the one command that fixes it

    @property
    def ok(self) -> bool:
        return self.level != PROBLEM

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "ok": self.ok, "level": self.level,
                "detail": self.detail, "fix": self.fix}  # fmt: skip


def run(factory: Factory, *, quick: bool = False) -> list[Check]:
    """Every check, in the order a newcomer would fix them. ``quick`` (what `init`
    runs) leaves out what may take long: asking each agent's program for its version
    (a child process each), and the first walk of the whole history for `verify`."""
    checks = [_guarded("git", lambda: _git(factory))]
    if checks[0].detail == NO_GIT:
        return checks  # every other check asks git
    config, check = _factory(factory)
    dispatch = config.dispatch if config is not None else DispatchConfig()
    base, base_check = _base(factory, dispatch)
    checks += [base_check, check]
    if config is not None:
        checks.append(_guarded("verify", lambda: _verify(factory, quick)))
    checks += [_guarded("hooks", lambda: _hooks(factory)), _daemon(factory)]
    if config is not None and config.sync.remote:
        checks.append(_guarded("sync", lambda: sync_remote(factory)))
    if config is not None:
        place = _place(factory, base, dispatch)
        checks += list(commands(config, place, versions=not quick))
        checks += roles(config)
    checks.append(_guarded("worktrees", lambda: _worktrees(factory, dispatch)))
    if config is not None:
        checks.append(_index(factory))
    return checks


def _guarded(name: str, check: Callable[[], Check]) -> Check:
    try:
        return check()
    except FactoryError as exc:
        return Check(name, PROBLEM, exc.message, exc.hint)


def _git(factory: Factory) -> Check:
    try:
        out = run_git(["--version"], main_top(factory.paths)).stdout.decode().strip()
    except OSError:
        return Check("git", PROBLEM, NO_GIT, "install git (https://git-scm.com)")
    match = re.search(r"(\d+)\.(\d+)", out)
    have = (int(match.group(1)), int(match.group(2))) if match else (0, 0)
    if have < MIN_GIT:
        need = ".".join(map(str, MIN_GIT))
        return Check("git", PROBLEM, f"{out}: gitfactory needs git {need} or newer (worktrees, "
                     "the reference-transaction hook, rev-parse --path-format)",
                     f"install git {need} or newer (https://git-scm.com)")  # fmt: skip
    return Check("git", OK, out)


def _factory(factory: Factory) -> tuple[FactoryConfig | None, Check]:
    from gitfactory.config import factory_yaml

    tip = factory.tip()
    if tip is None:
        return None, Check("factory", PROBLEM, f"no '{factory.branch}' branch here: this "
                           "repository has no factory yet", "gitfactory init")  # fmt: skip
    try:
        config = factory_yaml.load(factory)  # what `config check` reads
    except NotInitializedError as exc:  # the branch holds no factory.yaml
        return None, Check("factory", PROBLEM, exc.message, "gitfactory init")
    except FactoryError as exc:
        return None, Check("factory", PROBLEM, exc.message, EDIT)
    n = len(config.agents), len(config.gates), len(config.workflows)
    said = f"{factory.branch} at {tip[:10]}: factory {config.name}, {n[0]} agent(s), "
    return config, Check("factory", OK, said + f"{n[1]} gate(s), {n[2]} workflow(s)")


def _base(factory: Factory, dispatch: DispatchConfig) -> tuple[str | None, Check]:
    """The branch task branches start from, and whether it has a commit."""
    from gitfactory.run.worktrees import base

    try:
        branch = base(factory.paths, dispatch)
    except FactoryError as exc:  # a detached HEAD: dispatch.base must name the branch
        said = f"{exc.message}; {exc.hint}" if exc.hint else exc.message
        return None, Check("base", PROBLEM, said, EDIT)
    if _tip_of(factory, branch) is not None:
        return branch, Check("base", OK, f"task branches start from {branch}")
    head = (factory.paths.common_dir / "HEAD").read_text(encoding="utf-8").strip()
    checked_out = head == f"ref: refs/heads/{branch}"
    if checked_out or not _head_born(factory):
        what = f"{branch} has no commit yet" if checked_out else f"{branch} does not exist"
        return None, Check("base", PROBLEM, f"{what}: task branches start from it, so the "
                           "daemon dispatches nothing; make a first commit",
                           FIRST_COMMIT)  # fmt: skip
    return None, Check("base", PROBLEM, f"dispatch.base names {branch}, which does not exist",
                       f"git branch {shlex.quote(branch)}")  # fmt: skip


def _tip_of(factory: Factory, branch: str) -> str | None:
    try:
        return factory.store.branch_tip(branch)
    except ValueError:  # not a valid branch name
        return None


def _head_born(factory: Factory) -> bool:
    proc = run_git(["rev-parse", "-q", "--verify", "HEAD^{commit}"], main_top(factory.paths),
                   check=False)  # fmt: skip
    return proc.returncode == 0


def _verify(factory: Factory, quick: bool) -> Check:
    from gitfactory.store import integrity

    if quick and integrity.cached(factory) is None:
        return Check("verify", NOTE, "not verified yet (`gitfactory verify` walks the history "
                     "once, then only what is new)", "gitfactory verify")  # fmt: skip
    report = integrity.check(factory)
    if report.ok:
        return Check("verify", OK, "every record intact")
    n = len(report.violations)
    return Check("verify", PROBLEM, f"{n} record{'s' * (n != 1)} deleted or changed after "
                 "being written (`gitfactory verify` names them)",
                 "gitfactory verify --repair")  # fmt: skip


def _hooks(factory: Factory) -> Check:
    from gitfactory.run import hooks

    state = hooks.state(factory.paths)
    if not state.installed:
        foreign = hooks.foreign(factory.paths)
        if foreign is not None:
            said = (f"core.hooksPath is {foreign}, outside this repository: gitfactory "
                    "installs no hook there (the daemon still sees commits); `gitfactory hooks "
                    "install` says the line to add to yours")  # fmt: skip
            return Check("hooks", NOTE, said)
        kept = "; the hook there now is kept and run first" if state.path.exists() else ""
        said = (f"no gitfactory hook in {state.path.parent}: nothing refuses a commit that "
                "deletes records from the factory branch, and the daemon learns of commits "
                f"later{kept}")  # fmt: skip
        return Check("hooks", PROBLEM, said, "gitfactory hooks install")
    if not hooks.current(factory.paths, factory.branch):
        return Check("hooks", PROBLEM, f"{state.path} is not executable, or was written for "
                     "another branch or place", "gitfactory hooks install")  # fmt: skip
    if state.chained is not None and not os.access(state.chained, os.X_OK):
        return Check("hooks", PROBLEM, f"your earlier hook {state.chained} is not executable, "
                     "so it is skipped", f"chmod +x {shlex.quote(str(state.chained))}")  # fmt: skip
    chained = f", running {state.chained.name} first" if state.chained else ""
    return Check("hooks", OK, f"installed in {state.path.parent}{chained}")


def sync_remote(factory: Factory) -> Check:
    """Whether ``sync.remote`` names a remote this clone has (every clone must)."""
    from gitfactory.plan import arbiter

    where = arbiter.configured(factory)  # raises, naming the fix, when it does not
    assert where is not None
    return Check("sync", OK, f"claims and records go through {where.name} ({where.url})")


def _daemon(factory: Factory) -> Check:
    from gitfactory.run import service

    pid = service.running(factory)
    if pid is not None:
        return Check("daemon", OK, f"running, pid {pid}")
    return Check("daemon", NOTE, "not running: tasks move only when agents ask for work "
                 "(`gitfactory next`)", "gitfactory daemon start")  # fmt: skip


def _place(factory: Factory, base: str | None, dispatch: DispatchConfig) -> Place:
    return Place(main_top(factory.paths), factory.paths.common_dir, base, dispatch.setup_copy)


def commands(config: FactoryConfig, place: Place | None, *, versions: bool) -> Iterator[Check]:
    """One check per agent and per gate that runs a command: is its program there?"""
    for spec in config.agents.values():
        found = programs.find(spec.command, place, spec.env)
        detail = found.detail
        if found.ok and versions and place is not None:
            said = programs.version(spec.preset, found, place.top, spec.env)
            detail += f"; {said}" if said else ""
        yield Check(f"agent {spec.address}", OK if found.ok else PROBLEM, detail, found.fix)
    for name, command in _gate_commands(config):
        found = programs.find(command, place)
        yield Check(name, OK if found.ok else PROBLEM, found.detail, found.fix)


def _gate_commands(config: FactoryConfig) -> list[tuple[str, str]]:
    out = [(f"gate {g.name}", g.command) for g in config.gates.values() if g.command]
    for workflow in config.workflows.values():
        for step in workflow.steps.values():
            if step.gate and step.gate not in config.gates:
                out.append((f"gate of {workflow.name}/{step.name}", step.gate))
    return out


def roles(config: FactoryConfig) -> list[Check]:
    """The roles workflow steps (and scenario gates) need that no agent plays."""
    needed: dict[str, list[str]] = {}
    for workflow in config.workflows.values():
        for step in workflow.steps.values():
            if step.kind == "agent" and step.role != ANY_ROLE:
                needed.setdefault(step.role, []).append(f"{workflow.name}/{step.name}")
    for gate in config.gates.values():
        if gate.type == "scenario":
            needed.setdefault(gate.role, []).append(f"gate {gate.name}")
    played = {a.role for a in config.agents.values()}
    out = []
    for role, steps in sorted(needed.items()):
        where = ", ".join(steps)
        if role == HUMAN_ROLE:
            said = f"{where}: taken by people (`gitfactory next --as human/NAME`), not agents"
            out.append(Check(f"role {role}", NOTE, said))
        elif role not in played:
            out.append(Check(f"role {role}", PROBLEM, f"no agent plays the role {role!r} that "
                             f"{where} needs, so tasks wait there; add one under agents: "
                             f"(role: {role}, and a preset: or command:)", EDIT))  # fmt: skip
    if not any(c.level == PROBLEM for c in out):
        roles = ", ".join(sorted(set(needed) - {HUMAN_ROLE})) or "none"
        out.insert(0, Check("roles", OK, f"an agent plays each role the steps need ({roles})"))
    return out


def _worktrees(factory: Factory, dispatch: DispatchConfig) -> Check:
    from gitfactory.run.worktrees import root

    where = root(factory.paths, dispatch)
    existing = next(p for p in (where, *where.parents) if p.exists())
    if not existing.is_dir():
        return Check("worktrees", PROBLEM, f"{existing} is not a directory, so task worktrees "
                     f"cannot go in {where}", EDIT)  # fmt: skip
    if not os.access(existing, os.W_OK | os.X_OK):
        return Check("worktrees", PROBLEM, f"{existing} is not writable, so task worktrees "
                     f"cannot go in {where}; set dispatch.worktrees", EDIT)  # fmt: skip
    made = "" if existing == where else " (made when the first task starts)"
    return Check("worktrees", OK, f"task worktrees go in {where}{made}")


def _index(factory: Factory) -> Check:
    import sqlite3

    try:
        index = factory.index
        behind = index.indexed_tip() != factory.tip()
        added = index.refresh().added if behind else 0
        invalid = len(index.invalid())
    except (sqlite3.Error, OSError) as exc:
        return Check("index", PROBLEM, f"the index in {factory.paths.factory_dir} cannot "
                     f"be read or updated: {exc}", "gitfactory index rebuild")  # fmt: skip
    said = f"caught up now (+{added} records)" if behind else "up to date"
    if invalid:
        return Check("index", NOTE, f"{said}; {invalid} invalid record(s), quarantined as data "
                     "(`gitfactory status` names each)")  # fmt: skip
    return Check("index", OK, said)


def place_of(factory: Factory, config: FactoryConfig) -> Place:
    """Where `config check` looks for agents' and gates' programs."""
    return _place(factory, _base(factory, config.dispatch)[0], config.dispatch)
