"""One factory on many clones: exchange the factory branch with a git remote (SPEC §19).

A sync fetches the remote's factory branch, merges it into the local one without a
working tree (:mod:`gitfactory.store.union`: records are a union, human-edited
files merge three-way), moves the local branch by compare-and-swap, and pushes the
result as a fast-forward. A push the remote rejects means another clone pushed
first: fetch, merge and push again, a bounded number of times. Nothing local is ever
dropped: the local branch only moves to commits that hold it, and what the remote
lost (a force-push back) is pushed to it again.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from gitfactory.errors import BusyError
from gitfactory.store import integrity, join, records, remote, union
from gitfactory.store.git import replace_file
from gitfactory.store.log import Draft, stamp

if TYPE_CHECKING:
    from gitfactory.store.factory import Factory

MAX_ROUNDS = 8
QUARANTINE_REFS = "refs/gitfactory/quarantine"
MAX_LISTED = 500  # records named in one sync.rewound event (the count is exact)
REWOUND = "sync.rewound"


@dataclass
class Report:
    """What one sync did. Counts are of records (and artifact contents)."""

    remote: str
    branch: str
    local_before: str | None = None
    local_after: str | None = None
    remote_before: str | None = None  # the remote's tip as first fetched
    remote_after: str | None = None  # the remote's tip once done
    received: dict[str, int] = field(default_factory=dict)  # by kind
    sent: dict[str, int] = field(default_factory=dict)  # by kind
    restored: int = 0  # records the remote had lost, pushed back to it
    merged: list[str] = field(default_factory=list)  # human-edited files merged three-way
    regenerate: list[str] = field(default_factory=list)  # generated files to make again
    changed_there: list[str] = field(default_factory=list)  # records the remote changed
    rewound: bool = False  # the remote's branch was moved back or aside since last seen
    joined: bool = False  # this clone had no factory branch: it now tracks the remote's
    pushed: bool = False
    rounds: int = 0
    lost: set[str] = field(default_factory=set)  # records the remote dropped

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        del out["lost"]
        return out


def sync(
    factory: Factory,
    where: remote.Remote,
    *,
    push: bool = True,
    resolutions: dict[str, union.Resolution] | None = None,
    check: union.InPlaceCheck | None = None,
    actor: str = "factory/sync",
) -> Report:
    """Fetch, merge, push until the remote and this clone hold the same records.

    Raises :class:`remote.RemoteUnreachableError` when the remote cannot be reached
    (nothing changed here), union's errors when what came in cannot be merged (the
    remote's commit is kept under ``refs/gitfactory/quarantine/``, nothing merged),
    and :class:`BusyError` when other clones kept winning the push for
    ``MAX_ROUNDS`` rounds.
    """
    with remote.exclusive(factory, where):
        return _sync(factory, where, push, resolutions, check, actor)


def _sync(
    factory: Factory,
    where: remote.Remote,
    push: bool,
    resolutions: dict[str, union.Resolution] | None,
    check: union.InPlaceCheck | None,
    actor: str,
) -> Report:
    report = Report(where.name, factory.branch, local_before=factory.store.tip())
    for report.rounds in range(1, MAX_ROUNDS + 1):
        fetched = remote.fetch(factory, where)
        commit_or_refuse(factory, where, fetched.tip)
        lost: list[str] = []
        if report.rounds == 1:
            report.remote_before = fetched.tip
            if fetched.rewound or (fetched.before and not fetched.tip):
                lost = _dropped(factory, fetched)
                report.rewound = bool(lost)
        if fetched.tip is not None:
            # A resolution settles the texts it was shown for: the first round's. A
            # later round (another clone pushed meanwhile) merges on top of it.
            settle = resolutions if report.rounds == 1 else None
            integrate(factory, where, fetched.tip, report, settle, check)
        if lost and factory.store.tip() is not None:  # once what came in is known to be ours
            _record_rewind(factory, where, fetched, lost, actor)
            report.lost.update(lost)
        local = factory.store.tip()
        if local is None or local == fetched.tip or not push:
            report.remote_after = fetched.tip
            break
        if remote.push(factory, where, local) == remote.Pushed.OK:
            _count(factory, fetched.tip, local, report.sent)
            report.pushed, report.remote_after = True, local
            join.track(factory, where.name, where.url == where.name)
            break
        time.sleep(min(0.05 * report.rounds, 0.5))  # another clone pushed first
    else:
        raise BusyError(
            f"{where.label(factory.branch)} moved under every push for {MAX_ROUNDS} rounds",
            hint="other clones are pushing without pause; run the sync again",
        )
    report.local_after = factory.store.tip()
    if report.pushed:
        report.restored = len(report.lost)
    return report


def integrate(
    factory: Factory,
    where: remote.Remote,
    theirs: str,
    report: Report | None = None,
    resolutions: dict[str, union.Resolution] | None = None,
    check: union.InPlaceCheck | None = None,
) -> str:
    """Merge commit ``theirs`` (the remote's factory branch) into the local branch;
    the local tip after it. A clone without a factory branch joins the remote's."""
    from gitfactory.store.branch import Change, Snapshot

    store = factory.store
    report = report if report is not None else Report(where.name, factory.branch)
    while True:
        ours = store.tip()
        if ours is None:
            try:  # all of it comes in: places, modes and sizes checked (the index parses)
                union.incoming(store, None, theirs, check=check, deep=False)
            except union.IncomingRefusedError:
                quarantine(factory, where, theirs)
                raise
            if join.adopt(factory, where.name, theirs):
                report.joined = True
                _count(factory, None, theirs, report.received)
                return theirs
            continue
        if ours == theirs or store.repo.descendant_of(ours, theirs):
            return ours
        try:
            found = union.incoming(store, ours, theirs, resolutions, check)
        except (union.IncomingRefusedError, union.UnrelatedHistoryError):
            quarantine(factory, where, theirs)
            raise
        if store.repo.descendant_of(theirs, ours) and not found.kept:
            if store.fast_forward(ours, theirs, f"sync: fast-forward to {where.name}"):
                _count(factory, ours, theirs, report.received)
                return theirs
            continue
        break

    def build(snap: Snapshot) -> Change:
        tip = str(snap.tip) if snap.tip else None
        found = union.incoming(store, tip, theirs, resolutions, check)
        merged[:] = found.merged
        kept[:] = found.kept
        changed[:] = found.changed_there
        regenerate[:] = found.regenerate
        n = found.records
        return Change(
            files=found.files,
            subject=f"sync: merge {where.label(factory.branch)} ({n} record{'s' * (n != 1)} in)",
            replace=frozenset(found.in_place | found.restored),
            remove=frozenset(found.remove),
            merge=(theirs,),
        )

    merged: list[str] = []
    kept: list[str] = []
    changed: list[str] = []
    regenerate: list[str] = []
    commit = store.transact(build)
    assert commit is not None
    _count(factory, commit.parent, theirs, report.received)
    report.merged += merged
    report.regenerate += [p for p in regenerate if p not in report.regenerate]
    report.lost.update(kept)
    report.changed_there += [p for p in changed if p not in report.changed_there]
    return commit.oid


def _count(factory: Factory, old: str | None, new: str | None, into: dict[str, int]) -> None:
    """Add the records ``new`` holds and ``old`` lacks to ``into``, by kind."""
    store = factory.store
    counts: Counter[str] = Counter()
    for path, before, after, _ in store.diff_trees(
        store.factory_tree(old), store.factory_tree(new)
    ):
        if not integrity.protected(path):
            counts["in_place"] += 1  # factory.yaml, a document, a scenario: changed
        elif before is None and after is not None:
            kind = records.kind_of(path)
            counts[kind.name if kind is not None else "content"] += 1
    for name, n in counts.items():
        into[name] = into.get(name, 0) + n


def _dropped(factory: Factory, fetched: remote.Fetched) -> list[str]:
    """The records the remote's branch held when last fetched, lacks now, and this
    clone holds as they were (what it last fetched may have been refused content)."""
    import pygit2

    store = factory.store
    assert fetched.before is not None
    tip = store.tip()
    if fetched.before not in store.repo or tip is None:
        return []
    local = store.repo[tip].peel(pygit2.Tree)
    out = []
    for gone in integrity.lost(store, store.factory_tree(fetched.before),
                               store.factory_tree(fetched.tip)):  # fmt: skip
        with contextlib.suppress(KeyError):
            if str(local[gone.path].id) == gone.blob:
                out.append(gone.path)
    return out


def commit_or_refuse(factory: Factory, where: remote.Remote, tip: str | None) -> None:
    """A remote branch that points at a tree or a tag is no factory history: refused
    (by a sync, and by a claim)."""
    import pygit2

    if tip is None:
        return
    obj = factory.store.repo[tip]
    if obj.type != pygit2.GIT_OBJECT_COMMIT:
        what = {pygit2.GIT_OBJECT_TREE: "a tree", pygit2.GIT_OBJECT_TAG: "a tag",
                pygit2.GIT_OBJECT_BLOB: "a file"}.get(obj.type, "an object")  # fmt: skip
        raise union.IncomingRefusedError(
            f"{where.label(factory.branch)} points at {what} ({tip[:10]}), not a commit; "
            "nothing was merged",
            [union.Problem(f"refs/heads/{factory.branch}", f"points at {what}")],
            hint="whoever set it puts the remote's factory branch back on a commit",
        )


def _record_rewind(
    factory: Factory, where: remote.Remote, fetched: remote.Fetched, lost: list[str], actor: str
) -> None:
    """An event of the local log saying what the remote dropped when it moved back or
    aside (it is pushed to the remote with the records themselves)."""
    from gitfactory.store.branch import Change

    assert fetched.before is not None
    n = len(lost)
    moved = f"to {fetched.tip[:10]}" if fetched.tip else "away (the branch was deleted)"
    event = stamp(Draft(
        kind=REWOUND, actor=actor,
        text=f"{where.label(factory.branch)} moved from {fetched.before[:10]} {moved}, "
             f"dropping {n} record{'s' * (n != 1)}; this clone still holds them",
        data={"remote": where.name, "from": fetched.before, "to": fetched.tip, "count": n,
              "records": lost[:MAX_LISTED]},
    ))  # fmt: skip
    factory.store.write(Change(
        files={event.path: records.encode(event.to_record())},
        subject=f"sync: {where.name} lost {n} record{'s' * (n != 1)}; pushing them back",
        trailers=[("Factory-Record", f"event {event.id}")],
    ))  # fmt: skip


def quarantine(factory: Factory, where: remote.Remote, commit: str) -> str:
    """Keep a refused commit of the remote where it can be inspected (and is never
    garbage-collected): ``refs/gitfactory/quarantine/<remote>/<commit>``, with a note
    in ``.git/gitfactory/quarantine.json``."""
    import pygit2

    slug = "".join(c if c.isalnum() or c in "._-" else "-" for c in where.name)[:60].strip("-.")
    refname = f"{QUARANTINE_REFS}/{slug or 'remote'}/{commit}"
    repo = factory.store.repo
    if repo.references.get(refname) is None:
        with contextlib.suppress(pygit2.AlreadyExistsError, pygit2.GitError):
            repo.create_reference_direct(refname, pygit2.Oid(hex=commit), False)
    _note(
        factory,
        {"remote": where.name, "commit": commit, "ref": refname, "time": int(time.time() * 1000)},
    )
    return refname


def _note(factory: Factory, entry: dict[str, Any]) -> None:
    path = factory.paths.factory_dir / "quarantine.json"
    try:
        notes = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(notes, list):
            notes = []
    except (OSError, ValueError):
        notes = []
    if any(isinstance(n, dict) and n.get("commit") == entry["commit"] for n in notes):
        return
    notes = [*notes, entry][-100:]
    with contextlib.suppress(OSError):  # a note only: the quarantine ref is what keeps it
        replace_file(path, json.dumps(notes, indent=1))
