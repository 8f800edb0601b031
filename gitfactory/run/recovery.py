"""After a restart: adopt the runs whose processes outlived the last daemon, end
the others, give back claims whose run never started, and tidy the worktrees of
tasks that ended while no daemon watched.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gitfactory.plan import decisions, states
from gitfactory.run import runs, worktrees
from gitfactory.run.runs import GATE_AGENT, MERGE_AGENT, Ended
from gitfactory.store import clock
from gitfactory.store.log import EventQuery

if TYPE_CHECKING:
    from gitfactory.run.dispatch import Dispatcher


def recover(d: Dispatcher) -> list[Ended]:
    """Adopt the runs whose processes outlived the last daemon; end the others; give
    back tasks our agents hold with no run at all (claimed, then the daemon died)."""
    ended = []
    for run in d.book.active():
        pid = run.pid if run.pid is not None and runs.carries(run.pid, run.id) else None
        pid = pid or runs.find(run.id)
        if pid is not None:
            run.pid = pid
            d.book.save(run)
            d.active[run.id] = run
            d.note(d._event(
                "dispatch.adopted", run.task, f"{run.agent} on {run.step}: still running",
                {"run": run.id, "agent": run.agent, "step": run.step, "pid": pid,
                 "attempt": run.attempt, "worktree": run.worktree},
            ))  # fmt: skip
        else:
            if run.pid is not None and runs.group_carries(run.pid, run.id):
                # It ended while no daemon watched, but what it started (a server, a
                # `sleep &`) still runs in its worktree: that ends with the run.
                runs.kill_group(run.pid, d._config().dispatch.kill_grace_ms / 1000)
            lost = not d.book.exit_file(run.id).exists()  # no exit code was kept
            ended.append(d._end(run, None, lost=lost))
    held = {r.task for r in d.active.values()}
    now = clock.now_ms()
    d.factory.index.refresh()
    ours = [GATE_AGENT, MERGE_AGENT, *(a.address for a in d._config().agents.values())]
    for agent in ours:
        for task_id in states.held_by(d.factory, agent, now):
            # Another clone's daemon runs the same agents: what it holds is not ours.
            if task_id not in held and decisions.claimed_on(d.factory, task_id) in (d.clone, None):
                d._holder_move(
                    task_id, agent, "task.released", "claimed, but its run never started"
                )
    sweep(d, held)
    return ended


def sweep(d: Dispatcher, held: set[str]) -> None:
    """Tidy the worktrees of finished tasks that a crash left behind (the daemon
    died after the task ended, before its worktree was removed)."""
    root = worktrees.root(d.factory.paths, d._config().dispatch)
    if not root.is_dir():
        return
    for path in sorted(root.iterdir()):
        if path.name.startswith(".") or not (path / ".git").exists():
            continue  # the pool, the trash, or not a worktree
        found = d.factory.index.ids_starting("tasks", path.name[:8])
        if len(found) != 1 or found[0] in held:
            continue
        kept = d.factory.index.events(EventQuery(kind="worktree.kept", task=found[0]))
        if not any(e.data.get("worktree") == str(path) for _, e in kept):  # said already
            d._tidy(found[0], path)
