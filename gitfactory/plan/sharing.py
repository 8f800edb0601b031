"""`gitfactory sync`: exchange the factory branch with a remote, then confirm the
claims this clone made while the remote was away (SPEC §19).

The exchange itself is :mod:`gitfactory.store.sync`; this adds what the plan and
the configuration know: factory.yaml must still parse after a merge, and each
tentative claim (:mod:`gitfactory.plan.arbiter`) is tried through the remote now:
confirmed, lost to another clone's claim, or still waiting.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from gitfactory.errors import FactoryError
from gitfactory.plan import arbiter, steps
from gitfactory.store import clock, contacts, remote, union
from gitfactory.store import sync as syncing

if TYPE_CHECKING:
    from gitfactory.store.factory import Factory


@dataclass
class Outcome:
    report: syncing.Report
    confirmed: list[dict[str, str]] = field(default_factory=list)  # task, agent
    lost: list[dict[str, str]] = field(default_factory=list)  # task, agent, why
    config_changed: bool = False  # factory.yaml came in changed: what runs here changed

    def to_json(self) -> dict[str, Any]:
        return {**self.report.to_json(), "claims_confirmed": self.confirmed,
                "claims_lost": self.lost, "config_changed": self.config_changed}  # fmt: skip


def sync(
    factory: Factory,
    name: str | None = None,
    *,
    push: bool = True,
    resolutions: dict[str, union.Resolution] | None = None,
    actor: str = "factory/sync",
) -> Outcome:
    """Sync with the remote ``name`` (default: ``sync.remote``, else ``origin``)."""
    where = arbiter.remote_for(factory, name)
    if factory.tip() is not None and _unset(factory):
        factory.notices.append(
            "factory.yaml sets no sync.remote, so each clone decides claims alone and two "
            "clones can both win one task; set `sync: remote: "
            f"{where.name}` (`gitfactory config edit`) to have the remote decide"
        )
    try:
        report = syncing.sync(
            factory, where, push=push, resolutions=resolutions, check=arbiter.check_in_place,
            actor=actor,
        )  # fmt: skip
    except (union.MergeConflictError, union.IncomingRefusedError,
            union.UnrelatedHistoryError) as exc:  # fmt: skip
        contacts.note_blocked(factory, where, exc.message.split("\n", 1)[0].rstrip(":"), exc.hint)
        raise
    contacts.note_blocked(factory, where, None)
    report.joined = report.joined or factory.joined == where.name
    outcome = Outcome(report)
    if report.local_before and report.local_after and not report.joined:
        outcome.config_changed = _config_came_in(factory, where, report, actor)
    if push and factory.tip() is not None:
        confirm(factory, where, outcome)
    return outcome


def _config_came_in(
    factory: Factory, where: remote.Remote, report: syncing.Report, actor: str
) -> bool:
    """Whether the sync changed factory.yaml here. It decides what runs, so it is said
    (a notice), and recorded (``config.changed`` by the sync, naming the remote)."""
    from gitfactory.config import factory_yaml
    from gitfactory.store import log
    from gitfactory.store.log import EventQuery

    path = factory_yaml.CONFIG_PATH
    before = factory.store.snapshot(report.local_before).read(path)
    after = factory.store.snapshot(report.local_after).read(path)
    if before == after or before is None or after is None:
        return False
    try:
        old, new = factory_yaml.parse(before, path), factory_yaml.parse(after, path)
    except FactoryError:
        return True  # the old one did not parse: nothing to compare it with
    factory.notices.append(
        f"factory.yaml came in changed from {where.name}: what this clone's daemon runs "
        "follows it (`git log -p factory -- .factory/factory.yaml` shows the change)"
    )
    if old.sync.remote != new.sync.remote:
        now = "is no longer set: claims are decided by each clone"
        if new.sync.remote:
            now = f"is now {new.sync.remote!r}: claims and records go there from now on"
        factory.notices.append(f"sync.remote {now} (was {old.sync.remote!r})")
    import pygit2

    blob = str(pygit2.hash(after))  # one record per text, not one per clone that took it in
    factory.index.refresh()
    seen = factory.index.events(EventQuery(kind=factory_yaml.CHANGED))
    if any(e.data.get("blob") == blob for _, e in seen):
        return True
    log.append(factory, [log.stamp(log.Draft(
        kind=factory_yaml.CHANGED, actor=actor,
        text=f"factory.yaml changed by a sync with {where.name}",
        data={"remote": where.name, "bytes": len(after), "blob": blob,
              "agents": sorted(new.agents), "gates": sorted(new.gates),
              "workflows": sorted(new.workflows), "sync_remote": new.sync.remote},
    ))])  # fmt: skip
    return True


def _unset(factory: Factory) -> bool:
    """Whether factory.yaml names no sync remote (one this clone lacks is said elsewhere)."""
    try:
        return arbiter.configured(factory) is None
    except FactoryError:
        return False


def confirm(factory: Factory, where: remote.Remote, outcome: Outcome) -> None:
    """Try each tentative claim made for ``where`` through it now."""
    for claim in arbiter.tentative(factory):
        if claim.remote != where.name:
            continue
        entry = {"task": claim.task, "agent": claim.agent}
        if clock.now_ms() - claim.since_ms > claim.lease_ms:
            arbiter.forget(factory, claim.task)
            outcome.lost.append({**entry, "why": "its lease would have run out meanwhile"})
            continue
        try:
            steps.claim(factory, claim.task, claim.agent, claim.lease_ms)
        except (arbiter.TentativeClaimError, remote.RemoteUnreachableError):
            return  # the remote went away again: they all wait for the next sync
        except FactoryError as exc:
            arbiter.forget(factory, claim.task)
            outcome.lost.append({**entry, "why": exc.message})
            continue
        outcome.confirmed.append(entry)


def state(factory: Factory) -> dict[str, Any] | None:
    """What `status` says of sync (None: no ``sync.remote``): how far this clone and
    the remote's branch as last fetched are apart, how the last contact went, and the
    claims waiting for the remote. Reads no network."""
    try:
        where = arbiter.configured(factory)
    except FactoryError as exc:
        return {"remote": None, "problem": exc.message, "hint": exc.hint}
    if where is None:
        return None
    local, theirs = factory.tip(), remote.tracking_tip(factory, where)
    ahead = behind = 0
    if theirs and factory.store.repo[theirs].type_str != "commit":
        return {"remote": where.name, "problem": f"{where.name}'s factory branch is not a "
                "commit", "hint": "`gitfactory sync` says what it is"}  # fmt: skip
    if local and theirs:
        ahead, behind = factory.store.repo.ahead_behind(local, theirs)
    elif local:
        ahead = -1  # the remote has no factory branch yet (as last fetched)
    waiting = [t for t in arbiter.tentative(factory) if t.remote == where.name]
    return {"remote": where.name, "tracking": theirs, "ahead": ahead, "behind": behind,
            "contact": contacts.contacts(factory).get(where.name),
            "tentative": [{"task": t.task, "agent": t.agent, "since_ms": t.since_ms}
                          for t in waiting]}  # fmt: skip
