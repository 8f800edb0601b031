"""Dispatch: start agents and gates on ready workflow steps, watch them, end their steps.

For each ready step the dispatcher claims the task for an idle agent of the step's
role (or, for a gate, for ``factory/gate``), makes the task's worktree ready,
renders the prompt, exports the agent's inbox, and starts the configured command in
its own process group. While it runs, nothing else may take the task (the lease is
the step's whole timeout). The step ends, in this order of precedence:

1. the agent ran ``gitfactory step done`` (the task moved on: nothing to add);
2. a commit on its branch since the run started carries ``Factory-Step: done`` or
   ``Factory-Step: failed`` (the latest one counts);
3. its exit code: 0 is success, anything else failure;

and a run that outlives its step's timeout has its whole process group killed and
ends with the outcome ``timeout``. Each start and end is a log record
(``dispatch.started``, ``dispatch.finished``) that points at the run's transcript.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gitfactory import clock, ids, runs, worktrees
from gitfactory.errors import FactoryError
from gitfactory.log import Draft, Event, EventQuery, stamp
from gitfactory.runs import Run, RunBook

if TYPE_CHECKING:
    from gitfactory.agents import AgentSpec
    from gitfactory.artifacts import Artifact
    from gitfactory.config import FactoryConfig
    from gitfactory.factory import Factory
    from gitfactory.gates import Gate, Result
    from gitfactory.tasks import TaskState
    from gitfactory.workflow import Step, Workflow

ACTOR = "factory/daemon"  # who writes the daemon's records
GATE_AGENT = "factory/gate"
MERGE_AGENT = "factory/merge"
MERGE_LEASE_MS = 600_000
MERGE_RETRY_S = 60  # a merge that waited after its claim is tried again this soon at most
TRAILER = "Factory-Step"
LEASE_MARGIN_MS = 120_000  # the lease outlasts the step's timeout by this much


@dataclass(frozen=True)
class Ended:
    run: Run
    outcome: str  # success, failure, timeout, or "" when the agent ended the step itself
    how: str  # step_done, trailer, exit_code, timeout, lost, canceled
    exit_code: int | None


class Dispatcher:
    def __init__(self, factory: Factory, note: Callable[[Any], None]) -> None:
        self.factory = factory
        self.note = note  # writes an event, or a list of events in one commit, to the log
        self.book = RunBook(factory.paths.factory_dir)
        self.active: dict[str, Run] = {}
        self.children: dict[str, subprocess.Popen[bytes]] = {}
        self.said_waiting: set[tuple[str, str, str]] = set()
        # A merge that had to wait after its claim: the tips it saw and when. It is
        # not tried again (a claim and a release each time) until one of them moved
        # or MERGE_RETRY_S passed (what blocked it may be gone without a commit).
        self.merge_waits: dict[str, tuple[tuple[str | None, str | None], float]] = {}
        self.merged: list[dict[str, Any]] = []  # merge steps done since the daemon last looked
        self.failed: list[dict[str, Any]] = []  # worktrees that could not be made ready

    # -- after a restart ---------------------------------------------------------------

    def recover(self) -> list[Ended]:
        """Adopt the runs whose processes outlived the last daemon; end the others; give
        back tasks our agents hold with no run at all (claimed, then the daemon died)."""
        ended = []
        for run in self.book.active():
            pid = run.pid if run.pid is not None and runs.carries(run.pid, run.id) else None
            pid = pid or runs.find(run.id)
            if pid is not None:
                run.pid = pid
                self.book.save(run)
                self.active[run.id] = run
                self.note(self._event(
                    "dispatch.adopted", run.task, f"{run.agent} on {run.step}: still running",
                    {"run": run.id, "agent": run.agent, "step": run.step, "pid": pid,
                     "attempt": run.attempt, "worktree": run.worktree},
                ))  # fmt: skip
            elif self.book.exit_file(run.id).exists():  # it ended while no daemon watched
                ended.append(self._end(run, None))
            else:
                ended.append(self._end(run, None, lost=True))
        held = {r.task for r in self.active.values()}
        now = clock.now_ms()
        self.factory.index.refresh()
        ours = [GATE_AGENT, MERGE_AGENT, *(a.address for a in self._config().agents.values())]
        for agent in ours:
            for task_id in self.factory.index.held_by(agent, now):
                if task_id not in held:
                    self._holder_move(
                        task_id, agent, "task.released", "claimed, but its run never started"
                    )
        self._sweep(held)
        return ended

    def _sweep(self, held: set[str]) -> None:
        """Tidy the worktrees of finished tasks that a crash left behind (the daemon
        died after the task ended, before its worktree was removed)."""
        root = worktrees.root(self.factory.paths, self._config().dispatch)
        if not root.is_dir():
            return
        for path in sorted(root.iterdir()):
            if path.name.startswith(".") or not (path / ".git").exists():
                continue  # the pool, the trash, or not a worktree
            found = self.factory.index.task_ids(path.name[:8])
            if len(found) != 1 or found[0] in held:
                continue
            kept = self.factory.index.events(EventQuery(kind="worktree.kept", task=found[0]))
            if not any(e.data.get("worktree") == str(path) for _, e in kept):  # said already
                self._tidy(found[0], path)

    # -- every tick --------------------------------------------------------------------

    def reap(self) -> list[Ended]:
        """End the runs whose process exited, ran out of time, or whose task was canceled."""
        ended = []
        now = clock.now_ms()
        for run in list(self.active.values()):
            child = self.children.get(run.id)
            code = child.poll() if child is not None else None
            running = code is None and run.pid is not None and (
                child is not None or (runs.alive(run.pid) and runs.carries(run.pid, run.id))
            )  # fmt: skip
            if running and now >= run.deadline_ms:
                runs.kill_group(run.pid or 0, self._config().dispatch.kill_grace_ms / 1000)
                ended.append(self._end(run, None, timed_out=True))
            elif running and self._cancel_requested(run):
                runs.kill_group(run.pid or 0, self._config().dispatch.kill_grace_ms / 1000)
                ended.append(self._end(run, None, canceled=True))
            elif not running:
                if run.pid is not None and (
                    child is not None or runs.group_carries(run.pid, run.id)
                ):
                    # What the run started and left behind (a server, a `sleep &`) must
                    # not go on in the worktree: it ends with the run, as in systemd. (For
                    # a run this daemon adopted, only if its group is still the run's.)
                    runs.kill_group(run.pid, self._config().dispatch.kill_grace_ms / 1000)
                ended.append(self._end(run, code))
        return ended

    def start_ready(self) -> list[Run]:
        """Start agents and gates on ready steps, as far as the limits allow."""
        import json

        config = self._config()
        started: list[Run] = []
        if len(self.active) >= config.dispatch.max_concurrent:
            return started  # full: no need to read the queue
        try:  # no branch to start from (a rebase detached HEAD, say): wait, do not fail
            worktrees.base(self.factory.paths, config.dispatch)
        except FactoryError as exc:
            if ("", "", exc.message) not in self.said_waiting:
                self.said_waiting.add(("", "", exc.message))
                self.note(self._event("dispatch.waiting", None, exc.message, {"why": exc.message}))
            return started
        self.factory.index.refresh()
        now = clock.now_ms()
        for text, _, _ in self.factory.index.summaries(now, ready=True):
            if len(self.active) >= config.dispatch.max_concurrent:
                break
            row = json.loads(text)
            wf = config.workflow(row["workflow"])
            step = wf.step(row["step"])
            if step.action:
                self._merge(row["id"], wf, step)
                continue
            doer = self._doer(step)
            if doer is None:
                continue
            run = self._start(row["id"], wf, step, doer)
            if run is not None:
                started.append(run)
        return started

    def tidy(self, ended: list[Ended]) -> None:
        for end in ended:
            self._tidy(end.run.task, Path(end.run.worktree))

    def _tidy(self, task_id: str, path: Path) -> None:
        """Remove the worktree of a task that just finished, unless it holds uncommitted
        work (then say so: nothing a person or agent wrote is thrown away)."""
        from gitfactory import plan
        from gitfactory.tasks import TERMINAL

        if not path.exists() or plan.load(self.factory, task_id).state not in TERMINAL:
            return
        try:
            gone = worktrees.remove(
                self.factory.paths, path, True, self._config().dispatch.setup_copy
            )
        except FactoryError as exc:
            gone, why = False, exc.message
        else:
            why = "it holds uncommitted changes, or commits that no branch holds"
        kind, text = ("worktree.removed", str(path)) if gone else ("worktree.kept", why)
        self.note(self._event(kind, task_id, text, {"worktree": str(path)}))

    def fill_pool(self) -> int:
        config = self._config().dispatch
        try:
            return worktrees.fill_pool(self.factory.paths, config) if config.pool else 0
        except FactoryError:
            return 0  # no base branch now (see start_ready), or git refused: next time

    def _merge(self, task_id: str, wf: Workflow, step: Step) -> None:
        """The merge action, done here and now (it takes milliseconds): claim the task,
        integrate its branch, record the result, move the task along its workflow."""
        import pygit2

        from gitfactory import artifacts, merge, plan, workflow

        config = self._config()
        try:
            target = step.into or worktrees.base(self.factory.paths, config.dispatch)
        except FactoryError as exc:  # no base branch: nothing to merge into until one is set
            self._waiting(task_id, step, exc.message)
            return
        if not self.factory.store.repo.references.get(f"refs/heads/{target}"):
            self._waiting(task_id, step, f"there is no branch {target!r} to merge into")
            return
        why = merge.blocked(self.factory, target)
        if why is not None:  # checked before claiming: a claim counts as an attempt
            self._waiting(task_id, step, why)
            return
        task = plan.load(self.factory, task_id).task
        stem, branch = worktrees.names(config.dispatch, task)
        tips = (self._tip_of(target), self._tip_of(branch))
        seen = self.merge_waits.get(task_id)
        if seen is not None and seen[0] == tips and time.monotonic() - seen[1] < MERGE_RETRY_S:
            return  # it waits for the same reason as last time; said already
        try:
            st = plan.claim(self.factory, task_id, MERGE_AGENT, MERGE_LEASE_MS,
                            step_of=lambda s: wf.step(s.step).name)  # fmt: skip
        except FactoryError:
            return
        result = None
        for _ in range(3):  # the target moved meanwhile: merge again onto its new tip
            try:
                result = merge.integrate(self.factory, st.task, branch, target, step.strategy)
                break
            except merge.MergeWaits as exc:
                why = exc.message
            except (FactoryError, OSError, ValueError, RuntimeError, pygit2.GitError) as exc:
                why = f"the merge could not be done: {type(exc).__name__}: {exc}"
                break
        if result is None:  # nothing was changed: give the task back, say why, retry later
            self.merge_waits[task_id] = (tips, time.monotonic())
            self._holder_move(task_id, MERGE_AGENT, "task.released", why or "")
            self._waiting(task_id, step, why or "")
            return
        self.merge_waits.pop(task_id, None)
        report = None
        if result.report:
            report = artifacts.put(
                self.factory, task_id, result.report.encode(), producer=ACTOR, step=step.name,
                name=f"merge-report-{step.name}-{st.attempts.get(step.name, 1)}.md",
            ).id  # fmt: skip
        self.note(self._event("merge.result", task_id, result.why, {
            "step": step.name, "attempt": st.attempts.get(step.name, 1), "pass": result.passed,
            "status": result.status, "strategy": result.strategy, "done_as": result.done_as,
            "target": result.target, "branch": result.branch, "before": result.before,
            "commit": result.commit, "conflicts": result.conflicts, "report": report,
        }))  # fmt: skip
        self.merged.append({"task": task_id, "target": target, "status": result.status,
                            "commit": result.commit, "why": result.why})  # fmt: skip
        outcome = "success" if result.passed else "failure"
        try:
            workflow.step_done(self.factory, task_id, MERGE_AGENT, outcome, result.why)
        except FactoryError as exc:
            self.note(self._event("dispatch.stale", task_id, exc.message, {"agent": MERGE_AGENT}))
        if not any(r.task == task_id for r in self.active.values()):  # else: at its end
            self._tidy(task_id, worktrees.root(self.factory.paths, config.dispatch) / stem)

    def _tip_of(self, branch: str) -> str | None:
        ref = self.factory.store.repo.references.get(f"refs/heads/{branch}")
        return str(ref.target) if ref is not None else None

    def _waiting(self, task_id: str, step: Step, why: str) -> None:
        """Say once (per daemon and reason) why a task waits at a step."""
        if (task_id, step.name, why) in self.said_waiting:
            return
        self.said_waiting.add((task_id, step.name, why))
        text = f"{step.name}: {why}"
        self.note(self._event("dispatch.waiting", task_id, text, {"step": step.name, "why": why}))

    def stop_all(self, grace_s: float) -> None:
        for run in self.active.values():
            if run.pid is not None:
                runs.kill_group(run.pid, grace_s)

    # -- starting ------------------------------------------------------------------------

    def _doer(self, step: Step) -> AgentSpec | str | None:
        """An idle agent that plays ``step``, GATE_AGENT for a gate, or None."""
        from gitfactory.gates import SCENARIO
        from gitfactory.workflow import plays

        config = self._config()
        role = None
        if step.gate:
            gate = config.gate(step)
            if gate.type != SCENARIO:
                return GATE_AGENT
            role = gate.role  # an agent of this role plays the scenarios
        busy = {r.agent for r in self.active.values()}
        for agent in config.agents.values():
            fits = agent.role == role if role else plays(agent.role, step)
            if agent.address in busy or not fits:
                continue
            limit = config.dispatch.max_per_role.get(agent.role)
            if (
                limit is not None
                and sum(1 for r in self.active.values() if r.agent.split("/")[0] == agent.role)
                >= limit
            ):
                continue
            return agent
        return None

    def _start(self, task_id: str, wf: Workflow, step: Step, doer: AgentSpec | str) -> Run | None:
        from gitfactory import plan

        config = self._config()
        agent = doer if isinstance(doer, str) else doer.address
        gate = config.gate(step) if step.gate else None
        timeout_s = step.timeout_s or (gate.timeout_s if gate else None)
        timeout_ms = timeout_s * 1000 if timeout_s else config.dispatch.default_timeout_ms
        try:
            st = plan.claim(self.factory, task_id, agent, timeout_ms + LEASE_MARGIN_MS,
                            step_of=lambda s: wf.step(s.step).name)  # fmt: skip
        except FactoryError:
            return None  # taken by someone else, or no longer ready
        after = [plan.load(self.factory, d).task for d in st.task.depends_on]
        began = clock.now_ms()
        try:
            space = worktrees.ensure(self.factory.paths, config.dispatch, st.task, after)
        except FactoryError as exc:
            self._end_step(st, agent, "failure", f"workspace: {exc.message}")
            self.note(self._event("dispatch.failed", task_id, str(exc.message), {"agent": agent}))
            self.failed.append({"task": task_id, "agent": agent, "why": exc.message})
            self._tidy(task_id, worktrees.root(self.factory.paths, config.dispatch)
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
        self.book.save(run)  # before the process exists: a crash now is found at restart
        env = self._environment(run, st, wf, step, doer)
        command, stdin, stdout = (run.command, None, None)
        if gate is not None:
            command, stdin, stdout = self._gate_setup(run, st, gate)
        child = runs.spawn(
            command, space.path, env, self.book.transcript(run.id), self.book.exit_file(run.id),
            stdin=stdin, stdout=stdout,
        )  # fmt: skip
        run.pid = child.pid
        self.book.save(run)
        self.active[run.id] = run
        self.children[run.id] = child
        self.note(self._event(
            "dispatch.started", task_id, f"{agent} on {step.name} (attempt {run.attempt})",
            {"run": run.id, "agent": agent, "step": step.name, "attempt": run.attempt,
             "pid": child.pid, "worktree": run.worktree, "branch": run.branch,
             "kind": run.kind, "created_worktree": space.created,
             "pooled_worktree": space.pooled, "workspace_ms": run.started_ms - began,
             "spawn_ms": clock.now_ms() - run.started_ms},
        ))  # fmt: skip
        return run

    def _gate_setup(
        self, run: Run, st: TaskState, gate: Gate
    ) -> tuple[str, Path | None, Path | None]:
        """What a gate run starts: its command, and the files its input and output go
        through (a judge reads its input on stdin and prints its verdict; a scenario
        gate starts the scenario runner, which plays each scenario with the agent)."""
        import json
        import shlex
        import sys

        from gitfactory import gates, playbook, prompt

        directory = self.book.directory(run.id)
        if gate.type == gates.JUDGE:
            task = {"id": st.task.id, "title": st.task.title, "body": st.task.body}
            given = gates.judge_input(
                task=task, gate=gate, worktree=Path(run.worktree),
                base=worktrees.base(self.factory.paths, self._config().dispatch),
                branch=run.branch,
            )  # fmt: skip
            path = directory / "judge-input.json"
            path.write_text(json.dumps(given, indent=2) + "\n", encoding="utf-8")
            return run.command, path, directory / "verdict.out"
        if gate.type == gates.SCENARIO:
            plays = []
            (directory / "scenarios").mkdir(exist_ok=True)
            for n, scenario in enumerate(gates.scenarios(self.factory.store.snapshot(), gate)):
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

    def _environment(
        self, run: Run, st: TaskState, wf: Workflow, step: Step, doer: AgentSpec | str
    ) -> dict[str, str]:
        from gitfactory.git import git_env

        directory = self.book.directory(run.id)
        prompt = directory / "prompt.md"
        inbox = directory / "inbox"
        prompt.write_text(self._prompt(run, st, wf, step, inbox), encoding="utf-8")
        env = git_env()
        env.update({
            runs.MARKER: run.id, "GITFACTORY_TASK": run.task, "GITFACTORY_AGENT": run.agent,
            "GITFACTORY_STEP": run.step, "GITFACTORY_ATTEMPT": str(run.attempt),
            "GITFACTORY_REPO": str(worktrees.main_top(self.factory.paths)),
            "GITFACTORY_WORKTREE": run.worktree, "GITFACTORY_BRANCH": run.branch,
            "GITFACTORY_PROMPT_FILE": str(prompt), "GITFACTORY_INBOX": str(inbox),
        })  # fmt: skip
        if run.gate is not None and run.gate["type"] == "judge":
            env["GITFACTORY_JUDGE_INPUT"] = str(directory / "judge-input.json")
        if not isinstance(doer, str):
            env.update(doer.env)
        return env

    def _prompt(self, run: Run, st: TaskState, wf: Workflow, step: Step, inbox: Any) -> str:
        from gitfactory import documents, mail, prompt

        exported = mail.export(self.factory, run.agent, inbox)
        unread = [r for r in mail.inbox(self.factory, run.agent, unread=True, limit=20)]
        lines = [f"- {r.meta['created']} from {r.meta['from']}: {r.meta['subject']} "
                 f"({inbox}/{r.meta['id']}.md)" for r in unread]  # fmt: skip
        return prompt.render({
            "task_id": st.task.id, "task_short": st.task.id[:8], "title": st.task.title,
            "agent": run.agent, "step": step.name, "attempt": str(run.attempt),
            "workflow": wf.name, "worktree": run.worktree, "branch": run.branch,
            "base": worktrees.base(self.factory.paths, self._config().dispatch),
            "body": st.task.body.strip() or "(no description)",
            "instructions": step.instructions or "(none)", "done_when": step.done_when or "-",
            "previous": prompt.previous(self.factory, st.task.id),
            "inbox": (f"{exported.total} message(s) in {inbox}; unread:\n" + "\n".join(lines))
            if lines else f"{exported.total} message(s) in {inbox}; none unread.",
            "documents": documents.for_prompt(self.factory),
        })  # fmt: skip

    # -- ending ---------------------------------------------------------------------------

    def _end(
        self,
        run: Run,
        code: int | None,
        *,
        timed_out: bool = False,
        canceled: bool = False,
        lost: bool = False,
    ) -> Ended:
        from gitfactory import artifacts, plan

        if code is None:  # not our child (adopted), or gone while no daemon watched
            code = runs.exit_code(self.book.exit_file(run.id))
            lost = lost and code is None
        self.factory.index.refresh()
        st = plan.load(self.factory, run.task, history=True)
        still_ours = (
            st.state == "working" and st.assignee == run.agent and st.step == run.step
            and st.attempts.get(run.step) == run.attempt
        )  # fmt: skip
        if still_ours and lost and run.pid is None:
            # Written down, then the daemon died before the process started: nothing
            # ran, so the step is not failed; the task goes back to the queue.
            outcome, how = "", "never_started"
            why = "the daemon stopped before the agent started"
            self._holder_move(run.task, run.agent, "task.released", why)
        elif not still_ours:
            outcome, how = "", "step_done"
        elif canceled:
            outcome, how = "", "canceled"
            why = "canceled while running: the agent was stopped"
            self._holder_move(run.task, run.agent, "task.canceled", why)
        elif timed_out:
            outcome, how = "timeout", "timeout"
        elif (said := _trailer(run, self.factory.paths.common_dir)) is not None:
            outcome, how = said, "trailer"
        elif lost and code is None:
            outcome, how = "failure", "lost"
        else:
            outcome, how = ("success" if code == 0 else "failure"), "exit_code"
        transcript = self.book.transcript(run.id)
        output = self._transcript(run, transcript)  # stored below, with a gate's results
        kept = output[0] if output else None
        if still_ours and outcome:
            why = {"timeout": f"timed out after {(run.deadline_ms - run.started_ms) // 1000}s",
                   "lost": "the agent's process was gone when the daemon came back",
                   "trailer": f"{TRAILER} trailer on {run.branch}",
                   "exit_code": f"exit code {code}" if code is not None
                   else "it ended without an exit status (killed by a signal?)"}[how]  # fmt: skip
            if run.gate is not None:
                verdict = self._gate_result(run, code, transcript, output, timed_out=timed_out)
                output = None
                if not timed_out:
                    outcome, how = ("success" if verdict.passed else "failure"), "gate"
                    why = f"gate {run.gate['name']}: {verdict.summary}"
            self._end_step(st, run.agent, outcome, why)
        if output is not None:
            artifacts.store(self.factory, [output])
        size = transcript.stat().st_size if transcript.exists() else 0
        result = {"run": run.id, "agent": run.agent, "step": run.step, "outcome": outcome or None,
                  "how": how, "exit_code": code, "transcript": str(transcript), "bytes": size,
                  "artifact": kept.id if kept else None,
                  "duration_ms": clock.now_ms() - run.started_ms}  # fmt: skip
        said = f"{outcome} ({how})" if outcome else how.replace("_", " ")
        text = f"{run.agent} on {run.step}: {said}"
        # The record first, then the run book: a crash between the two ends the run
        # again at the next start, which finds the record and does not write it twice.
        if not self._recorded("dispatch.finished", run):
            self.note(self._event("dispatch.finished", run.task, text, result))
        self.book.finish(run, result)
        self.active.pop(run.id, None)
        self.children.pop(run.id, None)
        return Ended(run, outcome, how, code)

    def _recorded(self, kind: str, run: Run) -> Event | None:
        """The ``kind`` record of this run, if one was written (before a crash, say)."""
        self.factory.index.refresh()
        for _, event in self.factory.index.events(EventQuery(kind=kind, task=run.task)):
            if event.data.get("run") == run.id:
                return event
        return None

    def _gate_result(
        self,
        run: Run,
        code: int | None,
        transcript: Path,
        output: tuple[Artifact, bytes] | None,
        *,
        timed_out: bool,
    ) -> Result:
        """Judge a gate run and keep the evidence: its transcript, its report, each
        scenario's output and the files it keeps, as artifacts (one commit); then one
        ``gate.scenario`` record per scenario and the ``gate.result`` (one commit)."""

        from gitfactory import artifacts, gates, playbook

        assert run.gate is not None
        # Judged already, and the daemon died before the step ended: the same verdict,
        # not a second result and a second set of artifacts.
        done = self._recorded("gate.result", run)
        if done is not None:
            d = done.data
            return gates.Result(bool(d.get("pass")), str(d.get("summary", "")),
                                list(d.get("reasons") or []), d.get("score"))  # fmt: skip
        gate = gates.Gate(**{**run.gate, "scenarios": tuple(run.gate["scenarios"]),
                             "keep": tuple(run.gate["keep"])})  # fmt: skip
        directory = self.book.directory(run.id)
        plays: list[dict[str, str]] = []
        if gate.type == gates.SCENARIO and (directory / playbook.NAME).exists():
            plays = playbook.read(str(directory))["plays"]  # type: ignore[assignment]
        said, said_size = _tail(directory / "verdict.out", gates.MAX_VERDICT)
        if gate.type == gates.JUDGE:
            verdict = gates.judge_judge(gate, code, said)
        elif gate.type == gates.SCENARIO:
            verdict = gates.judge_scenarios(plays)
        else:
            verdict = gates.judge_command(code)
        if timed_out:
            why = f"timed out after {(run.deadline_ms - run.started_ms) // 1000}s"
            verdict.passed, verdict.summary = False, f"{why}; {verdict.summary}"
            verdict.reasons.insert(0, why)
        evidence = [output] if output else []
        kept = self._keep_files(run, gate, evidence)
        events = []
        for entry, scenario in zip(plays, verdict.scenarios, strict=True):
            log = Path(entry["log"])
            data = log.read_bytes() if log.exists() else b""
            played = artifacts.prepare(
                run.task, data, name=f"scenario-{entry['name'][:-3]}-{run.attempt}.log",
                producer=ACTOR, step=run.step,
            )  # fmt: skip
            evidence.append((played, data))
            mark = "passed" if scenario["pass"] else "failed"
            events.append(self._event(
                "gate.scenario", run.task, f"{gate.name}: scenario {entry['name']} {mark}",
                {**scenario, "gate": gate.name, "step": run.step, "attempt": run.attempt,
                 "run": run.id, "agent": run.agent, "transcript": played.id},
            ))  # fmt: skip
        if gate.type == gates.JUDGE and said.strip():
            # A judge's standard output is its verdict and the words around it: kept
            # whole as evidence, and its end is what the report shows.
            words = said.encode("utf-8", "replace")
            evidence.append((artifacts.prepare(
                run.task, words, name=f"judge-output-{run.step}-{run.attempt}.txt",
                producer=ACTOR, step=run.step,
            ), words))  # fmt: skip
            shown, size = said, said_size
        else:
            shown, size = _tail(transcript, 4 * gates.REPORT_TAIL)
        text = gates.report(gate, verdict, shown, kept, size).encode("utf-8", "replace")
        report = artifacts.prepare(run.task, text, name=f"report-{run.step}-{run.attempt}.md",
                                   producer=ACTOR, step=run.step)  # fmt: skip
        artifacts.store(self.factory, [*evidence, (report, text)])
        events.append(self._event(
            "gate.result", run.task,
            f"{gate.name}: {'passed' if verdict.passed else 'failed'}: {verdict.summary}",
            {"gate": gate.name, "type": gate.type, "step": run.step, "attempt": run.attempt,
             "run": run.id, "pass": verdict.passed, "summary": verdict.summary,
             "reasons": verdict.reasons, "score": verdict.score,
             "threshold": gate.threshold if gate.type == gates.JUDGE else None,
             "exit_code": code, "report": report.id,
             "transcript": output[0].id if output else None, "kept": kept},
        ))  # fmt: skip
        self.note(events)
        return verdict

    def _keep_files(
        self, run: Run, gate: Gate, evidence: list[tuple[Artifact, bytes]]
    ) -> dict[str, str]:
        """The files the gate says to keep (regular files inside the worktree), added
        to ``evidence``; their artifact ids by the name the gate gave."""
        import stat

        from gitfactory import artifacts

        kept = {}
        top = Path(run.worktree).resolve()
        for name in gate.keep:
            path = Path(run.worktree) / name
            try:
                if not path.parent.resolve().is_relative_to(top):
                    continue
                # No symlink followed, no FIFO waited on: what is checked is what is read.
                fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
                with os.fdopen(fd, "rb") as fh:
                    info = os.fstat(fh.fileno())
                    if not stat.S_ISREG(info.st_mode) or info.st_size > artifacts.MAX_BYTES:
                        continue
                    data = fh.read(artifacts.MAX_BYTES + 1)
            except OSError:
                continue
            if len(data) > artifacts.MAX_BYTES:
                continue
            artifact = artifacts.prepare(run.task, data, name=path.name, producer=ACTOR,
                                         step=run.step)  # fmt: skip
            evidence.append((artifact, data))
            kept[name] = artifact.id
        return kept

    def _transcript(self, run: Run, transcript: Path) -> tuple[Artifact, bytes] | None:
        """The run's output as an artifact of the task (its end, if it is huge)."""
        from gitfactory import artifacts

        try:
            data = transcript.read_bytes()
        except OSError:
            return None
        if len(data) > artifacts.MAX_BYTES:
            cut = len(data) - artifacts.MAX_BYTES + 200
            data = f"[first {cut:,} bytes left out]\n".encode() + data[cut:]
        artifact = artifacts.prepare(
            run.task, data, name=f"transcript-{run.step}-{run.attempt}.log", producer=ACTOR,
            step=run.step,
        )  # fmt: skip
        return artifact, data

    def _end_step(self, st: TaskState, agent: str, outcome: str, note: str) -> None:
        from gitfactory import workflow

        try:
            workflow.step_done(self.factory, st.task.id, agent, outcome, note)
        except FactoryError as exc:
            # The lease ran out while the daemon was away: the task is back in the queue.
            self.note(self._event("dispatch.stale", st.task.id, exc.message, {"agent": agent}))

    def _holder_move(self, task_id: str, agent: str, kind: str, text: str) -> None:
        """A move as the lease holder, unless the task moved on in the meantime."""
        from gitfactory import plan

        with contextlib.suppress(FactoryError):
            plan.holder_move(self.factory, task_id, agent, kind, text=text)

    def _cancel_requested(self, run: Run) -> bool:
        from gitfactory import plan

        self.factory.index.refresh()
        return plan.load(self.factory, run.task).cancel_requested is not None

    # -- helpers --------------------------------------------------------------------------

    def _config(self) -> FactoryConfig:
        return self.factory.config()

    def _event(self, kind: str, task: str | None, text: str, data: dict[str, Any]) -> Any:
        return stamp(Draft(kind=kind, actor=ACTOR, task=task, text=text, data=data))


def _tail(path: Path, limit: int) -> tuple[str, int]:
    """The last ``limit`` bytes of a file as text, and the file's size (0 if none)."""
    try:
        with path.open("rb") as fh:
            size = fh.seek(0, 2)
            fh.seek(max(0, size - limit))
            return fh.read().decode("utf-8", "replace"), size
    except OSError:
        return "", 0


def _tip(worktree: Any) -> str | None:
    from gitfactory.git import run_git

    proc = run_git(["rev-parse", "--verify", "-q", "HEAD"], worktree, check=False)
    return proc.stdout.decode().strip() or None


def _trailer(run: Run, repo_dir: Path) -> str | None:
    """The outcome a ``Factory-Step:`` trailer on the run's branch states, if any: the
    latest commit since the run started that carries one decides. (Read from the
    branch in the repository, not in the worktree: an agent may have deleted that.)"""
    from gitfactory.git import run_git

    tip = f"refs/heads/{run.branch}"
    span = f"{run.head}..{tip}" if run.head else tip
    proc = run_git(
        ["log", "--format=%(trailers:key=Factory-Step,valueonly,separator=%x2C)", span, "--"],
        repo_dir, check=False,
    )  # fmt: skip
    for line in proc.stdout.decode("utf-8", "replace").splitlines():
        value = line.strip().split(",")[-1].strip().lower()
        if value in ("done", "success", "passed"):
            return "success"
        if value in ("failed", "failure"):
            return "failure"
    return None
