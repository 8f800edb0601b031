"""Claims on many clones: the shared remote decides who won (DESIGN I4, SPEC §19).

With ``sync.remote`` set, a claim is decided on the remote's factory branch as
fetched, committed on top of it, and pushed as a fast-forward. The push is the
remote's compare-and-swap: only one of the clones racing for a task gets its push
in; the others fetch, see the holder, and are told. A claim that lost is never
written anywhere, so nothing has to be undone. Only then is the claim merged into
the local branch, and the fold there must still give the task to the claimer.

When the remote cannot be reached, ``sync.offline_claims`` decides: ``wait`` (the
default) keeps the claim *tentative*, written nowhere but in this clone's private
list, and nothing starts on it until a sync confirms it; ``local`` writes it here at
once, and a claim another clone pushed meanwhile may still win when the two meet.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from gitfactory.config import factory_yaml
from gitfactory.errors import BusyError, ConfigError, FactoryError, UsageError
from gitfactory.plan import decisions
from gitfactory.plan.decisions import ClaimedError, Decision
from gitfactory.plan.tasks import WORKING, TaskState
from gitfactory.store import contacts, ids, remote
from gitfactory.store import sync as syncing
from gitfactory.store.git import replace_file

if TYPE_CHECKING:
    from pathlib import Path

    from gitfactory.store.factory import Factory

MAX_ROUNDS = 8
# A claim waits this long for another process of this clone to finish with the remote
# (a sync on a remote that hangs holds it for up to a minute): a daemon's tick must
# not stall behind it; the claim is then treated as made while the remote is away.
CLAIM_LOCK_WAIT = 20.0
FRESH_S = 1.0  # a fetch this recent (by the same process) is the remote's state
TENTATIVE_DIR = "tentative"


class TentativeClaimError(FactoryError):
    """The remote could not be reached: the claim waits for it, and nothing may start."""

    exit_code = remote.RemoteUnreachableError.exit_code


class ClaimLostError(ClaimedError):
    """The claim reached the remote, but another clone's move won the task there."""


def configured(factory: Factory) -> remote.Remote | None:
    """The remote that arbitrates claims (``sync.remote``), or None: claims are local."""
    name = factory_yaml.load(factory).sync.remote
    if not name:
        return None
    try:
        return remote.resolve(factory, name)
    except UsageError as exc:
        raise ConfigError(
            f"{factory_yaml.CONFIG_PATH}: sync.remote names {name!r}, but {exc.message}",
            hint=f"every clone needs that remote under that name: `git remote add {name} URL` "
            "(or `git remote rename`); or change sync.remote with `gitfactory config edit`",
        ) from None


def remote_for(factory: Factory, name: str | None = None) -> remote.Remote:
    """The remote called ``name``; by default ``sync.remote``, else ``origin``."""
    if name is None and factory.tip() is not None:
        name = factory_yaml.load(factory).sync.remote
    return remote.resolve(factory, name)


def check_in_place(path: str, data: bytes) -> str | None:
    """Why a merged human-edited file cannot be used (factory.yaml must parse)."""
    if path != factory_yaml.CONFIG_PATH:
        return None
    try:
        factory_yaml.parse(data, f"the merged {path}")
    except FactoryError as exc:
        return exc.message
    return None


def claim(
    factory: Factory,
    where: remote.Remote,
    task_id: str,
    agent: str,
    decide: Decision,
    lease_ms: int,
    keep_tentative: bool = False,
) -> TaskState:
    """Commit the claim ``decide`` makes through the remote: it counts once a
    fast-forward push of it succeeded and the merged fold gives the task to ``agent``.

    Raises :class:`TentativeClaimError` (or claims locally, per
    ``sync.offline_claims``) when the remote cannot be reached; with
    ``keep_tentative`` the claim is kept for the next sync to confirm.
    """
    for n in range(MAX_ROUNDS):
        # Just fetched (by `next`, say): decide on that; the push is the arbiter anyway,
        # and a lost race fetches again.
        fresh = n == 0 and remote.fetched_within(factory, where, FRESH_S)
        try:
            _unless_down(factory, where)
            with remote.exclusive(factory, where, wait=CLAIM_LOCK_WAIT):
                _unless_down(factory, where)  # maybe learnt while it waited
                commit, outcome = _push_claim(factory, where, task_id, decide, fresh)
        except remote.RemoteUnreachableError as exc:
            return _offline(factory, where, task_id, agent, decide, lease_ms, keep_tentative, exc)
        if commit == "":
            continue  # another clone pushed first: fetch, decide again
        if commit is not None:
            syncing.integrate(factory, where, commit, check=check_in_place)
        if outcome is not None:
            raise outcome
        factory.index.refresh()
        st = decisions.load(factory, task_id)
        if st.state != WORKING or st.assignee != agent:
            raise ClaimLostError(
                f"task {task_id[:8]}: the claim reached {where.name}, but another move won "
                f"it there: it is {st.state}" + (f", held by {st.assignee}" if st.assignee else ""),
                hint="pick another task (`gitfactory ready`)",
            )
        forget(factory, task_id)
        return st
    raise BusyError(
        f"task {task_id[:8]}: {where.label(factory.branch)} moved under every claim push "
        f"for {MAX_ROUNDS} rounds",
        hint="other clones are pushing without pause; try again",
    )


def _unless_down(factory: Factory, where: remote.Remote) -> None:
    down = contacts.known_down(factory, where)
    if down is not None:
        raise down


def _push_claim(
    factory: Factory, where: remote.Remote, task_id: str, decide: Decision, fresh: bool
) -> tuple[str | None, FactoryError | None]:
    """One round: fetch and merge the remote (unless ``fresh``), decide on the result,
    push the claim. The commit that the remote now holds (None: nothing to write; "":
    the push lost the race) and the error to raise."""
    if not fresh:
        fetched = remote.fetch(factory, where)
        syncing.commit_or_refuse(factory, where, fetched.tip)
        if fetched.tip is not None:
            syncing.integrate(factory, where, fetched.tip, check=check_in_place)
    snap = factory.store.snapshot()
    outcome: list[FactoryError | None] = [None]
    change = decisions.decided(factory, task_id, decide, snap, outcome)
    if change is None:
        return None, outcome[0]
    commit = factory.store.commit_on(snap, change)
    if remote.push(factory, where, commit.oid) != remote.Pushed.OK:
        return "", None
    return commit.oid, outcome[0]


def _offline(
    factory: Factory,
    where: remote.Remote,
    task_id: str,
    agent: str,
    decide: Decision,
    lease_ms: int,
    keep: bool,
    exc: remote.RemoteUnreachableError,
) -> TaskState:
    if factory_yaml.load(factory).sync.offline_claims == "local":
        st = decisions.act(factory, task_id, decide)
        factory.notices.append(
            f"task {task_id[:8]}: claimed here only, {where.name} could not be reached "
            "(sync.offline_claims: local): a claim another clone pushed meanwhile may win"
        )
        return st
    # What this clone already knows decides now: a task that is not claimable here
    # is refused, not kept waiting for the remote to say so.
    factory.index.refresh()
    drafts, error = decide(decisions.load(factory, task_id), ids.next_ms())
    if error is not None and not any(d.kind == "task.claimed" for d in drafts):
        raise error
    if not drafts:
        return decisions.load(factory, task_id)  # held already
    other = next((t for t in tentative(factory) if t.task == task_id and t.agent != agent), None)
    if other is not None:
        raise ClaimedError(
            f"task {task_id[:8]} has a tentative claim by {other.agent} on this clone, made "
            f"while {other.remote} was away",
            hint="pick another task; `gitfactory sync` confirms or drops that claim",
        )
    if keep:
        remember(factory, Tentative(task_id, agent, lease_ms, where.name, int(time.time() * 1000)))
    kept = ("kept as tentative: the next sync (yours or the daemon's) confirms it, "
            "`task release` withdraws it" if keep else "not made")  # fmt: skip
    raise TentativeClaimError(
        f"task {task_id[:8]}: the claim is {kept} once {where.name} is back; nothing was "
        f"written and nothing may start on it yet ({exc.message})",
        hint="the claim counts only once the remote has it (sync.offline_claims: wait); "
        "`gitfactory sync` tries again",
    )


# -- tentative claims: this clone's private list, until a sync confirms them ------------


@dataclass(frozen=True)
class Tentative:
    task: str
    agent: str
    lease_ms: int
    remote: str
    since_ms: int


def _dir(factory: Factory) -> Path:
    return factory.paths.factory_dir / TENTATIVE_DIR


def remember(factory: Factory, claim: Tentative) -> None:
    folder = _dir(factory)
    folder.mkdir(parents=True, exist_ok=True)
    replace_file(folder / f"{claim.task}.json", json.dumps(asdict(claim)))


def forget(factory: Factory, task_id: str) -> None:
    (_dir(factory) / f"{task_id}.json").unlink(missing_ok=True)


def withdraw(factory: Factory, task_id: str, agent: str) -> bool:
    """Drop ``agent``'s tentative claim of the task (it was never written anywhere);
    False if there is none."""
    if any(t.task == task_id and t.agent == agent for t in tentative(factory)):
        forget(factory, task_id)
        return True
    return False


def tentative(factory: Factory) -> list[Tentative]:
    """The claims this clone made while the remote was away, oldest first."""
    found = []
    folder = _dir(factory)
    if not folder.is_dir():
        return []
    for path in folder.glob("*.json"):
        try:
            data: Any = json.loads(path.read_text(encoding="utf-8"))
            found.append(Tentative(**data))
        except (OSError, ValueError, TypeError):
            path.unlink(missing_ok=True)  # private and derived: unreadable is gone
    return sorted(found, key=lambda t: t.since_ms)
