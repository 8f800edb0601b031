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
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gitfactory.config import factory_yaml
from gitfactory.errors import FactoryError
from gitfactory.plan import states
from gitfactory.run import ending, merging, recovery, runs, starting, worktrees
from gitfactory.run.runs import ACTOR, Ended, Run, RunBook
from gitfactory.store import clock, remote
from gitfactory.store.log import Draft, Event, EventQuery, stamp

if TYPE_CHECKING:
    from gitfactory.config.factory_yaml import FactoryConfig
    from gitfactory.config.workflows import Step
    from gitfactory.plan.tasks import TaskState
    from gitfactory.store.factory import Factory


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
        self.waits: dict[str, str] = {}  # task id -> why it waits (said by _waiting)
        self.clone = remote.clone_id(factory)  # what this daemon's claims carry

    # -- after a restart ---------------------------------------------------------------

    def recover(self) -> list[Ended]:
        """Adopt the runs whose processes outlived the last daemon; end the others; give
        back tasks our agents hold with no run at all (claimed, then the daemon died)."""
        return recovery.recover(self)

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
            base = worktrees.base(self.factory.paths, config.dispatch)
            if self.factory.store.branch_tip(base) is None:  # a repository with no commit
                raise worktrees.WorkspaceError(f"the base branch {base!r} has no commit yet")
        except FactoryError as exc:
            if ("", "", exc.message) not in self.said_waiting:
                self.said_waiting.add(("", "", exc.message))
                self.note(self._event("dispatch.waiting", None, exc.message, {"why": exc.message}))
            return started
        self.factory.index.refresh()
        now = clock.now_ms()
        for text, _, _ in states.summaries(self.factory, now, ready=True):
            if len(self.active) >= config.dispatch.max_concurrent:
                break
            row = json.loads(text)
            if any(r.task == row["id"] for r in self.active.values()):
                continue  # its last run has not ended yet (it ended its step early)
            wf = config.workflow(row["workflow"])
            step = wf.step(row["step"])
            if step.action:
                merging.merge_step(self, row["id"], wf, step)
                continue
            doer = starting.doer(self, step)
            if doer is None:
                continue
            run = starting.start(self, row["id"], wf, step, doer)
            if run is not None:
                started.append(run)
        return started

    def tidy(self, ended: list[Ended]) -> None:
        for end in ended:
            self._tidy(end.run.task, Path(end.run.worktree))

    def _tidy(self, task_id: str, path: Path) -> None:
        """Remove the worktree of a task that just finished, unless it holds uncommitted
        work (then say so: nothing a person or agent wrote is thrown away)."""
        from gitfactory.plan import decisions
        from gitfactory.plan.tasks import TERMINAL

        if not path.exists() or decisions.load(self.factory, task_id).state not in TERMINAL:
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

    def _waiting(self, task_id: str, step: Step, why: str) -> None:
        """Say once (per daemon and reason) why a task waits at a step."""
        self.waits[task_id] = why
        if (task_id, step.name, why) in self.said_waiting:
            return
        self.said_waiting.add((task_id, step.name, why))
        text = f"{step.name}: {why}"
        self.note(self._event("dispatch.waiting", task_id, text, {"step": step.name, "why": why}))

    def stop_all(self, grace_s: float) -> None:
        for run in self.active.values():
            if run.pid is not None:
                runs.kill_group(run.pid, grace_s)

    # -- shared by the parts -------------------------------------------------------------

    def _end(
        self,
        run: Run,
        code: int | None,
        *,
        timed_out: bool = False,
        canceled: bool = False,
        lost: bool = False,
    ) -> Ended:
        """End ``run``: its step's outcome, its records, its transcript (see
        :func:`gitfactory.run.ending.end`)."""
        return ending.end(self, run, code, timed_out=timed_out, canceled=canceled, lost=lost)

    def _recorded(self, kind: str, run: Run) -> Event | None:
        """The ``kind`` record of this run, if one was written (before a crash, say)."""
        self.factory.index.refresh()
        for _, event in self.factory.index.events(EventQuery(kind=kind, task=run.task)):
            if event.data.get("run") == run.id:
                return event
        return None

    def _end_step(
        self, st: TaskState, agent: str, outcome: str, note: str, data: dict[str, Any] | None = None
    ) -> TaskState | None:
        """End the step ``agent`` holds; the task's state after (None: it was not ours)."""
        from gitfactory.plan import steps

        try:
            return steps.step_done(self.factory, st.task.id, agent, outcome, note, data)
        except FactoryError as exc:
            # The lease ran out while the daemon was away: the task is back in the queue.
            self.note(self._event("dispatch.stale", st.task.id, exc.message, {"agent": agent}))
            return None

    def _holder_move(self, task_id: str, agent: str, kind: str, text: str) -> None:
        """A move as the lease holder, unless the task moved on in the meantime."""
        from gitfactory.plan import decisions

        with contextlib.suppress(FactoryError):
            decisions.holder_move(self.factory, task_id, agent, kind, text=text)

    def _cancel_requested(self, run: Run) -> bool:
        from gitfactory.plan import decisions

        self.factory.index.refresh()
        return decisions.load(self.factory, run.task).cancel_requested is not None

    # -- helpers --------------------------------------------------------------------------

    def _config(self) -> FactoryConfig:
        return factory_yaml.load(self.factory)

    def _event(self, kind: str, task: str | None, text: str, data: dict[str, Any]) -> Any:
        return stamp(Draft(kind=kind, actor=ACTOR, task=task, text=text, data=data))
