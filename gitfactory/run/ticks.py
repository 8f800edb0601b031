"""What one tick of the daemon saw and did: the report its console and `--json-log`
print (:mod:`gitfactory.run.daemon`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gitfactory.run.blockers import Blocker
from gitfactory.run.runs import Ended


@dataclass
class TickReport:
    """What one tick saw and did (printed by `gitfactory daemon`)."""

    n: int
    moved: list[str] = field(default_factory=list)
    delivered: int = 0
    quarantined: int = 0
    escalated: int = 0
    expired: list[str] = field(default_factory=list)
    started: list[dict[str, Any]] = field(default_factory=list)  # runs: task, agent, step
    finished: list[dict[str, Any]] = field(default_factory=list)  # runs: ..., outcome, how
    summarized: list[str] = field(default_factory=list)  # tasks given a session summary
    merged: list[dict[str, Any]] = field(default_factory=list)  # merge steps done: task, result
    failed: list[dict[str, Any]] = field(default_factory=list)  # worktrees not made ready
    running: int = 0
    violations: int = 0  # records deleted or changed on the factory branch (verify)
    violations_changed: bool = False  # ... a different number than at the last tick
    blockers: list[Blocker] = field(default_factory=list)  # what holds work back now
    new_blockers: list[Blocker] = field(default_factory=list)  # ... new or changed this tick
    cleared: list[Blocker] = field(default_factory=list)  # blockers of the last tick now gone
    synced: list[str] = field(default_factory=list)  # what the sync thread did meanwhile

    @property
    def busy(self) -> bool:
        """Whether work is going on (a burst run stops after a tick where none was)."""
        return bool(
            self.delivered or self.quarantined or self.escalated or self.expired
            or self.started or self.finished or self.summarized or self.running or self.merged
            or self.failed  # the step failed before it started: its retry may be ready
        )  # fmt: skip

    def to_json(self) -> dict[str, Any]:
        return {
            "tick": self.n, "moved": self.moved, "delivered": self.delivered,
            "quarantined": self.quarantined, "escalated": self.escalated,
            "expired": self.expired, "started": self.started, "finished": self.finished,
            "summarized": self.summarized, "merged": self.merged, "failed": self.failed,
            "running": self.running, "violations": self.violations,
            "blockers": [b.to_json() for b in self.blockers], "synced": self.synced,
        }  # fmt: skip


def ended_json(e: Ended) -> dict[str, Any]:
    return {"run": e.run.id, "task": e.run.task, "agent": e.run.agent, "step": e.run.step,
            "outcome": e.outcome or None, "how": e.how, "exit_code": e.exit_code,
            "why": e.why, "tail": list(e.tail), "then": e.then or None}  # fmt: skip
