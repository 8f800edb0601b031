"""Taking in what other factories sent (SPEC §20): check, decide, record, answer.

Every file that a peer's box ref holds and our factory branch has not seen is read
under limits before anything is built from it, then judged: its place, mode, size and
schema (else *quarantined*); that it says it is from the peer whose box brought it and
to us; that a signer the peer's entry lists signed the commit (else *rejected*); and
what the accept policy lets this peer do (else *rejected*). A parcel that passes is
kept byte for byte under ``.factory/inbox/<peer>/`` and becomes what it asks for (a
message, a task request, news of a task we asked for). Every outcome is a
``peer.received`` event, and, for anything but a receipt, a receipt parcel back.

Content from another factory is data: nothing in it is ever run, and nothing in it
can reach outside ``.factory/inbox/<peer>/`` and the records it becomes. The whole
pass is one compare-and-swap commit decided at the tip it lands on, so a parcel is
taken in once however often it is delivered, and by one of two racing passes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from gitfactory.errors import InvalidRecordError
from gitfactory.peers import handlers
from gitfactory.peers.work import Arrival, Outcome, Work
from gitfactory.store import courier, parcels, records
from gitfactory.store.records import INBOX

if TYPE_CHECKING:
    from gitfactory.config.factory_yaml import FactoryConfig
    from gitfactory.config.peers import Peer
    from gitfactory.store.branch import Change, Snapshot
    from gitfactory.store.factory import Factory

BATCH = 400  # files judged per commit
_SEEN_KEY = "parcels-seen:"  # index meta: the last box commit taken in, by ref
_FETCHED_KEY = "parcels-fetched:"  # index meta: the commit the last fetch from a peer brought
_REGULAR = (0o100644, 0o100755)
_HANDLERS: dict[str, Callable[[Work, Arrival, parcels.Parcel], Outcome]] = {
    parcels.MAIL: handlers.mail,
    parcels.RECEIPT: handlers.receipt,
    parcels.REQUEST: handlers.request,
    parcels.UPDATE: handlers.update,
    parcels.ANSWER: handlers.answer,
    parcels.WITHDRAW: handlers.withdraw,
}


@dataclass
class Intake:
    """What one pass took in."""

    taken: list[dict[str, Any]] = field(default_factory=list)  # one per parcel judged
    strangers: list[str] = field(default_factory=list)  # senders that are not peers


def receive(factory: Factory, config: FactoryConfig) -> Intake:
    """Take in every box ref that moved since the last pass."""
    found: list[Arrival] = []
    moved: dict[str, str] = {}
    strangers: list[tuple[str, str, str]] = []
    for name in sorted(set(config.peers) | set(courier.senders(factory))):
        peer = config.peers.get(name)
        for refname, oid in courier.arrived(factory, name, noted(factory, _FETCHED_KEY + name)):
            last = noted(factory, _SEEN_KEY + refname)
            if last == oid or (peer is not None and not trusted(peer, refname)):
                continue
            moved[refname] = oid
            if peer is None:
                strangers.append((name, refname, oid))
            else:
                found += _arrivals(factory, peer, refname, oid, last)
    if not moved:
        return Intake()
    intake = Intake(strangers=sorted({s[0] for s in strangers}))
    # One commit per batch: a peer that sends thousands of files holds the factory's
    # write lock for one batch at a time, and other writers go in between.
    for first in range(0, max(len(found), 1), BATCH):
        intake.taken += _take(factory, config, found[first : first + BATCH],
                              strangers if first == 0 else [])  # fmt: skip
    for refname, oid in moved.items():
        note(factory, _SEEN_KEY + refname, oid)
    return intake


def _take(
    factory: Factory, config: FactoryConfig, batch: list[Arrival],
    strangers: list[tuple[str, str, str]],
) -> list[dict[str, Any]]:  # fmt: skip
    """Judge ``batch`` in one commit decided at its tip; what was judged."""
    result: list[Work] = []

    def build(snap: Snapshot) -> Change | None:
        factory.index.refresh(str(snap.tip) if snap.tip else None)
        work = Work(factory, config, snap)
        for arrival in batch:
            _judge(work, arrival)
        for name, refname, oid in strangers:
            handlers.stranger(work, name, refname, oid)
        result[:] = [work]
        return work.change()

    factory.store.transact(build)
    return result[0].taken if result else []


def trusted(peer: Peer, refname: str) -> bool:
    """Whether a box ref may bring ``peer``'s parcels. What we fetched from the peer's
    own URL may; what was pushed to our inbox ref for it only if the peer signs (we
    check each box's signature): anyone who may push to this repository can fill any
    inbox ref, so for a peer that does not sign the push only rings the bell, and the
    round fetches the peer's box from its URL (:mod:`gitfactory.peers.exchange`)."""
    return refname.startswith(courier.FETCHED_REFS) or bool(peer.signers)


def noted(factory: Factory, key: str) -> str | None:
    """What this clone noted under ``key`` in the index (derived, like all of it: a
    rebuilt index reads every box again, and takes in nothing twice)."""
    row = factory.index.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    return str(row[0]) if row else None


def note(factory: Factory, key: str, value: str | None) -> None:
    """Note ``value`` under ``key`` in the index (None: forget it)."""
    db = factory.index.db
    if value is None:
        db.execute("DELETE FROM meta WHERE key = ?", (key,))
    else:
        db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))
    db.commit()


def keep_fetched(factory: Factory, peer: str, commit: str | None) -> None:
    """Remember the box commit a fetch from ``peer``'s own repository brought: the
    only fetched box the next pass reads (a ref here could have been pushed to)."""
    note(factory, _FETCHED_KEY + peer, commit)


def _arrivals(
    factory: Factory, peer: Peer, refname: str, oid: str, last: str | None
) -> list[Arrival]:
    """The files of the box at ``oid`` that were not in the box last taken in."""
    import pygit2

    from gitfactory.store import signing

    repo = factory.store.repo
    try:
        commit = repo[oid].peel(pygit2.Commit)
    except (KeyError, ValueError, pygit2.InvalidSpecError):
        return [Arrival(peer, refname, oid, "", None, 0, None, "the ref is not a commit")]
    old_tree = None
    if last is not None and last in repo:
        try:
            old_tree = str(repo[last].peel(pygit2.Commit).tree.id)
        except (ValueError, pygit2.InvalidSpecError):
            old_tree = None
    signer = None
    if peer.signers:
        keys = {f"peer:{peer.name}": peer.signers}
        signer = signing.signer(factory, str(commit.id), keys)
        if signer is not None and last is not None and signing.signer(factory, last, keys) is None:
            old_tree = None  # signed now, not before: what was refused unsigned is judged again
    out = []
    for path, _, blob, mode in factory.store.diff_trees(old_tree, str(commit.tree.id), ""):
        if blob is not None:
            out.append(Arrival(peer, refname, str(commit.id), path, blob, mode, signer))
    return out


def _judge(work: Work, arrival: Arrival) -> None:
    """Decide one file of a box, and record what was decided."""
    if arrival.problem is not None:
        work.quarantine(arrival, None, InvalidRecordError(arrival.refname, None, arrival.problem))
        return
    place = parcels.box_prefix(INBOX, arrival.peer.name) + arrival.path
    if arrival.blob is None or work.kept(place) or work.refused_before(arrival):
        return  # taken in already: a second delivery changes nothing
    try:
        parcel = _read(work, arrival, place)
    except InvalidRecordError as problem:
        work.quarantine(arrival, _id_of(arrival.path), problem)
        return
    if arrival.peer.signers and arrival.signer is None:
        work.refuse(arrival, parcel, "the delivery is not signed by a key that peers."
                    f"{arrival.peer.name}.signers lists")  # fmt: skip
        return
    outcome = _HANDLERS[parcel.type](work, arrival, parcel)
    work.settle(arrival, place, parcel, outcome)


def _read(work: Work, arrival: Arrival, place: str) -> parcels.Parcel:
    """The parcel in the file, under every limit before anything is built from it."""
    assert arrival.blob is not None
    if arrival.mode not in _REGULAR:
        raise InvalidRecordError(
            place, None, "not a regular file (symlinks and submodules are refused)"
        )
    if records.kind_of(place) is None:
        raise InvalidRecordError(place, None, "not a parcel's place (<id shards>/<id>.json)")
    size = work.factory.store.repo.odb.read_header(arrival.blob)[1]
    if size > records.MAX_RECORD_BYTES:
        raise InvalidRecordError(place, None, f"{size:,} bytes, over the limit of 1 MiB")
    data = work.factory.store.blob(arrival.blob)
    parcel = parcels.decode(INBOX, arrival.peer.name, place, data)
    if parcel.sender != arrival.peer.name:
        raise InvalidRecordError(place, "from", f"says it is from {parcel.sender!r}, but "
                                 f"came in {arrival.peer.name!r}'s box")  # fmt: skip
    if parcel.to != work.config.name:
        raise InvalidRecordError(place, "to", f"is for {parcel.to!r}, not for this "
                                 f"factory ({work.config.name!r})")  # fmt: skip
    return parcel


def _id_of(path: str) -> str | None:
    from gitfactory.store import ids

    name = path.rsplit("/", 1)[-1].removesuffix(".json")
    return name if ids.is_id(name) else None
