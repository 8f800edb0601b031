"""The watcher daemon: react to commits in every worktree and move work along.

Shaped like rq's worker: :meth:`Daemon.run` loops over :meth:`Daemon.tick`, and
events only wake it up; every tick re-reads the state from git. A tick:

1. **detect**: list every ref and compare with the last tick (at start: with
   nothing, so whatever happened while the daemon was down is seen);
2. **ingest**: the postmaster takes in messages from the branches that moved;
3. **decide and act**: escalate overdue acknowledgements, end the runs whose agent
   exited or ran out of time, write the session summaries of finished tasks
   (:mod:`gitfactory.knowledge.documents`), expire leases that ran out, and start agents and
   gates on ready steps (:mod:`gitfactory.run.dispatch`);
4. **heartbeat**: write the status file ``.git/gitfactory/daemon.json``.

Everything it decides is written as records on the factory branch, by the same
compare-and-swap writes as any client, so killing it at any instant loses nothing.
One daemon runs per repository (a lock in ``.git/gitfactory/``). The first SIGTERM
(or Ctrl-C) starts nothing new and waits for the running steps to end; a second stops
at once, leaving running agents to be adopted by the next daemon.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gitfactory.errors import BusyError, FactoryError
from gitfactory.run.blockers import EXIT_BLOCKED, Blocker
from gitfactory.run.dispatch import Dispatcher
from gitfactory.run.envoy import Envoy
from gitfactory.run.notifier import Notifier
from gitfactory.run.runs import ACTOR, Ended
from gitfactory.run.syncer import Syncer
from gitfactory.run.ticks import TickReport, ended_json
from gitfactory.run.watch import Watcher, changed, snapshot
from gitfactory.store import clock, contacts
from gitfactory.store.courier import INBOX_REFS
from gitfactory.store.git import replace_file

if TYPE_CHECKING:
    from types import FrameType

    from gitfactory.store.factory import Factory

_logger = logging.getLogger(__name__)

SUMMARIES_PER_TICK = 20
FIRST_EXCHANGE_S = 120.0  # a burst waits at most this long for its first round with peers
IDLE_WAKE_S = 5.0  # the longest a daemon sleeps without a wake-up (leases, escalation)
RUN_POLL_S = 0.5  # while runs are active: how often to look at processes not our children
STATUS_FILE = "daemon.json"
PID_FILE = "daemon.pid"
LOCK_FILE = "daemon.lock"


class Daemon:
    def __init__(
        self,
        factory: Factory,
        *,
        burst: bool = False,
        max_ticks: int | None = None,
        report: Callable[[TickReport], None] | None = None,
        idle_wake_s: float = IDLE_WAKE_S,
    ) -> None:
        self.factory = factory
        self.idle_wake_s = idle_wake_s
        self.burst = burst
        self.max_ticks = max_ticks
        self.report = report or (lambda _r: None)
        self.refs: dict[str, str] = {}
        self.ticks = 0
        self.stopping = False
        self.started = time.time()
        self.watcher = Watcher(factory.paths)
        self.syncer = Syncer(factory)
        self.envoy = Envoy(factory)
        self.notifier = Notifier(factory)
        self.dispatcher = Dispatcher(factory, self._note)
        self.recovered: list[Ended] = []
        self.unsummarizable: set[str] = set()
        self.others: set[str] = set()  # finished tasks another clone's daemon summarizes
        self.violations = 0
        self.blocked: dict[str, Blocker] = {}  # the blockers of the last tick, by key

    # -- the loop -------------------------------------------------------------------

    def run(self) -> int:
        """Tick until stopped (or, in burst mode, until a tick finds nothing to do).

        Returns the exit code: 0, or :data:`EXIT_BLOCKED` when a burst ends with work
        left that blockers hold back (the last tick's report lists them)."""
        from gitfactory.store import log

        code = 0
        self.factory.require_tip()
        with self._single_instance(), self._signals():
            self.watcher.start()
            contacts.forget_down(self.factory)  # what an earlier run learnt may be old
            self.syncer.start()
            self.envoy.start()
            self.notifier.start()
            if self.burst:
                self.envoy.wait_first(FIRST_EXCHANGE_S)  # what peers sent is work too
            log.append(self.factory, [self._event("daemon.started", "watching for commits")])
            try:
                self.recovered = self.dispatcher.recover()
                while True:
                    result = self.tick()
                    self.report(result)
                    if self.max_ticks is not None and self.ticks >= self.max_ticks:
                        break
                    if (self.burst or self.stopping) and not result.busy:
                        if self.burst and not self.stopping and result.blockers:
                            code = EXIT_BLOCKED
                        break
                    # Runs end without any commit: poll them (a child's exit also wakes us).
                    self.watcher.wait(RUN_POLL_S if self.dispatcher.active else self.idle_wake_s)
            finally:
                self.watcher.stop()
                log.append(
                    self.factory, [self._event("daemon.stopped", f"after {self.ticks} ticks")]
                )
                self.envoy.stop()  # what waits for peers goes out (word of this run too)
                self.notifier.stop()  # what a person should hear of goes out
                self.syncer.stop()  # after the last record: it goes out too
                self._status(running=False)
        return code

    def tick(self) -> TickReport:
        """One pass: detect, ingest, decide, act, heartbeat."""
        from gitfactory.mail import postmaster
        from gitfactory.plan import decisions

        self.ticks += 1
        result = TickReport(self.ticks)
        now_refs = snapshot(self.factory.paths)
        moved = changed(self.refs, now_refs)
        self.refs = now_refs
        result.moved = sorted(moved)
        if any(r == self.factory.refname or r.startswith("refs/remotes/") for r in moved):
            self.syncer.poke()  # ours to push, or a fetch someone made to merge
        if any(r == self.factory.refname or r.startswith(INBOX_REFS) for r in moved):
            self.envoy.poke()  # a parcel to send, or one a peer pushed
        if self.factory.refname in moved:
            self.notifier.poke()  # news a person may want to hear of
        result.synced = self.syncer.drain() + self.envoy.drain() + self.notifier.drain()
        branches = [r[len("refs/heads/") :] for r in moved if r.startswith("refs/heads/")]
        mail = postmaster.ingest(self.factory, postmaster.watched(self.factory, branches))
        result.delivered, result.quarantined = len(mail.delivered), len(mail.quarantined)
        result.escalated = len(postmaster.escalate(self.factory).escalated)
        ended = [*self.recovered, *self.dispatcher.reap()]
        self.recovered = []
        result.finished = [ended_json(e) for e in ended]
        for e in ended:
            if e.run.branch:
                self.syncer.share(e.run.branch)  # the work goes where the factory goes
        self.dispatcher.tidy(ended)
        result.summarized = self._summarize()
        result.violations = self._verify()
        result.violations_changed = result.violations != self.violations
        self.violations = result.violations
        result.expired = decisions.expire_leases(self.factory, ACTOR)
        if not self.stopping:
            result.started = [
                {"run": r.id, "task": r.task, "agent": r.agent, "step": r.step}
                for r in self.dispatcher.start_ready()
            ]
            result.merged, self.dispatcher.merged = self.dispatcher.merged, []
            result.failed, self.dispatcher.failed = self.dispatcher.failed, []
            self._blockers(result)
        result.running = len(self.dispatcher.active)
        if not result.started:
            self.dispatcher.fill_pool()  # when nothing waits: creating worktrees is slow
        self._status(running=True)
        return result

    def _blockers(self, result: TickReport) -> None:
        """What holds work back now; which of it is new, changed or gone since the last
        tick (the console says each once, and again when it changes)."""
        from gitfactory.run import blockers

        try:
            found = blockers.find(self.factory, self.dispatcher.waits)
        except Exception:  # a bug: keep the traceback, keep the loop
            _logger.exception("finding what blocks the work failed")
            return
        now = {b.key: b for b in found}
        result.blockers = found
        result.new_blockers = [b for key, b in now.items() if self.blocked.get(key) != b]
        result.cleared = [b for key, b in self.blocked.items() if key not in now]
        self.blocked = now

    def _summarize(self) -> list[str]:
        """Write the session summaries of finished tasks (a few per tick, so a factory
        that had none yet catches up without stalling the loop).

        Summaries only inform later prompts: a task that cannot be summarized is
        recorded once (``docs.failed``) and left for the next daemon, never allowed to
        stop the loop that runs the agents.
        """
        from gitfactory.knowledge import documents

        done: list[str] = []
        running = {r.task for r in self.dispatcher.active.values()}
        for task_id in documents.pending(self.factory):
            if len(done) >= SUMMARIES_PER_TICK:
                break
            if task_id in self.unsummarizable or task_id in running or not self._ours(task_id):
                # An agent that finished the task with its own `step done` may still
                # run: its session ends with the run, whose transcript is kept then.
                continue
            try:
                if documents.summarize(self.factory, task_id) is not None:
                    done.append(task_id)
            except FactoryError as exc:
                self._unsummarizable(task_id, exc.message)
            except Exception as exc:  # a bug: keep the traceback, keep the loop
                _logger.exception("session summary of task %s failed", task_id)
                self._unsummarizable(task_id, f"{type(exc).__name__}: {exc}")
        return done

    def _ours(self, task_id: str) -> bool:
        """Whether this clone's daemon writes the task's summary: the one whose claim
        ended it (every clone's daemon sees the task finished; one summary is enough)."""
        from gitfactory.plan import decisions

        if task_id in self.others:
            return False
        if decisions.claimed_on(self.factory, task_id) in (self.dispatcher.clone, None):
            return True
        self.others.add(task_id)  # its summary comes from that clone
        return False

    def _verify(self) -> int:
        """The incremental integrity check; tell ``human/*`` once of each commit (or move
        of the branch) that lost records. Returns how many records are not intact."""
        from gitfactory.mail import mailbox
        from gitfactory.mail.messages import Message
        from gitfactory.store import clock, ids, integrity
        from gitfactory.store.index_mail import thread

        try:
            report = integrity.check(self.factory)
        except Exception:  # a bug: keep the traceback, keep the loop
            _logger.exception("integrity check failed")
            return 0
        by_cause: dict[str, list[integrity.Violation]] = {}
        for v in report.violations:  # one message per commit, or per move of the branch
            key = v.commit or "moved-" + hashlib.sha1(v.subject.encode()).hexdigest()
            by_cause.setdefault(f"integrity-{key[:12]}", []).append(v)
        for name, lost in by_cause.items():
            self.factory.index.refresh()
            if thread(self.factory.index.db, name):
                continue  # told already
            cause = (f"Commit {lost[0].commit[:10]} ({lost[0].subject})" if lost[0].commit
                     else lost[0].subject[0].upper() + lost[0].subject[1:])  # fmt: skip
            lines = "\n".join(f"- {v.how}: `{v.path}`" for v in lost[:50])
            more = f"\n- ... and {len(lost) - 50} more" if len(lost) > 50 else ""
            now = clock.now_ms()
            mailbox.send(self.factory, Message(
                id=ids.new_id(now), sender=ACTOR, to=("human/*",), thread=name,
                subject=f"{len(lost)} record(s) deleted or changed on the factory branch",
                created=clock.format_time(now), priority="high",
                body=(f"{cause}: {len(lost)} record(s) written earlier are now deleted or "
                      f"changed on the factory branch:\n\n"
                      f"{lines}{more}\n\nRecords are append-only. `gitfactory verify` lists "
                      "them; `gitfactory verify --repair` restores them from history.\n"),
            ))  # fmt: skip
            self._note(self._event("integrity.violated", f"{cause}: {len(lost)} record(s) "
                                   "deleted or changed; `gitfactory verify --repair`"))  # fmt: skip
        return len(report.violations)

    def _unsummarizable(self, task_id: str, why: str) -> None:
        self.unsummarizable.add(task_id)
        self._note(self._event("docs.failed", f"session summary failed: {why}", task=task_id))

    def stop(self) -> None:
        """Start no new runs; return once the running ones have ended."""
        self.stopping = True
        self.watcher.wake()

    def _relay_signals(self, fd: int) -> None:
        """Turn signals into wake-ups, in a thread: a signal handler must not take the
        locks that waking the loop takes (it may have interrupted their holder)."""
        with os.fdopen(fd, "rb", buffering=0) as pipe:
            while received := pipe.read(64):
                self._wake_for(received)

    def _wake_for(self, received: bytes) -> None:
        # Every git command the daemon runs ends with a SIGCHLD too: wake for an agent
        # only, or each tick's own git calls would wake the next one forever.
        if any(n != signal.SIGCHLD for n in received) or any(
            c.poll() is not None for c in list(self.dispatcher.children.values())
        ):
            self.watcher.wake()

    def _note(self, event: Any) -> None:
        from gitfactory.store import log

        log.append(self.factory, event if isinstance(event, list) else [event])

    # -- helpers ----------------------------------------------------------------------

    def _event(self, kind: str, text: str, task: str | None = None) -> Any:
        from gitfactory.store.log import Draft, stamp

        return stamp(Draft(kind=kind, actor=ACTOR, text=text, task=task,
                           data={"pid": os.getpid(), "host": socket.gethostname()}))  # fmt: skip

    @contextmanager
    def _single_instance(self) -> Iterator[None]:
        from filelock import FileLock, Timeout

        directory = self.factory.paths.factory_dir
        directory.mkdir(exist_ok=True)
        lock = FileLock(str(directory / LOCK_FILE), timeout=0)
        try:
            lock.acquire()
        except Timeout:
            raise BusyError(
                f"a gitfactory daemon already runs for this repository (pid {read_pid(directory)})",
                hint="`gitfactory daemon status` shows it; `gitfactory daemon stop` stops it",
            ) from None
        pid_file = directory / PID_FILE
        try:
            replace_file(pid_file, f"{os.getpid()}\n")
            yield
        finally:
            pid_file.unlink(missing_ok=True)
            lock.release()

    @contextmanager
    def _signals(self) -> Iterator[None]:
        """SIGTERM and SIGINT stop the daemon (the second at once); those and SIGCHLD
        wake it, through a pipe that Python's own handler writes the signal to."""

        def handle(signum: int, _frame: FrameType | None) -> None:
            if self.stopping:
                raise KeyboardInterrupt  # the second signal: stop now
            self.stopping = True  # only a flag here: the relay thread does the waking

        read_fd, write_fd = os.pipe()
        os.set_blocking(write_fd, False)
        previous = {s: signal.signal(s, handle) for s in (signal.SIGTERM, signal.SIGINT)}
        previous[signal.SIGCHLD] = signal.signal(signal.SIGCHLD, lambda *_: None)
        old_fd = signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
        threading.Thread(target=self._relay_signals, args=(read_fd,), daemon=True).start()
        try:
            yield
        finally:
            signal.set_wakeup_fd(old_fd)
            for s, h in previous.items():
                signal.signal(s, h)
            os.close(write_fd)

    def _status(self, running: bool) -> None:
        status = {
            "pid": os.getpid(), "running": running, "ticks": self.ticks,
            "started": clock.format_time(int(self.started * 1000)),
            "last_tick": clock.format_time(clock.now_ms()), "tip": self.factory.tip(),
            "sync": self.syncer.state.to_json(), "peers": self.envoy.state(),
        }  # fmt: skip
        replace_file(self.factory.paths.factory_dir / STATUS_FILE, json.dumps(status) + "\n")


def read_pid(directory: Path) -> int | None:
    try:
        return int((directory / PID_FILE).read_text().strip())
    except (OSError, ValueError):
        return None


def read_status(directory: Path) -> dict[str, Any] | None:
    try:
        status: dict[str, Any] = json.loads((directory / STATUS_FILE).read_text())
    except (OSError, ValueError):
        return None
    return status
