"""Append-only, verified: every record the factory branch ever held is still there,
byte for byte (SPEC §7, "Integrity").

Records are immutable and never deleted; only the human-edited files (factory.yaml,
documents, scenarios) change in place. A plain-git commit can still break that (a
commit from a stale worktree of the branch deletes everything written since), and
so can moving the branch back. :func:`check` walks the commits the branch gained
since it last looked, diffs each against its parents (only the subtrees that
differ), and keeps what it found in ``.git/gitfactory/verify.json``: derived,
disposable, rebuilt by a full walk when missing. :func:`repair` restores every
record found missing or changed from history, in one commit with a
``factory.repaired`` event.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from gitfactory.store import records
from gitfactory.store.git import replace_file
from gitfactory.store.log import Draft, stamp

if TYPE_CHECKING:
    import pygit2

    from gitfactory.store.branch import Commit
    from gitfactory.store.factory import Factory

STATE_FILE = "verify.json"
_VERSION = 1
MAX_LISTED = 500  # records named in one factory.repaired event (the count is exact)
_HEX = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")


@dataclass(frozen=True)
class Violation:
    """A record that is not at the tip as it was written."""

    path: str
    blob: str  # the record as it was written
    how: str  # "deleted" or "changed"
    commit: str | None  # the commit that did it; None: the branch was moved past it
    subject: str = ""  # that commit's subject, or how the branch moved


@dataclass
class Report:
    tip: str | None
    violations: list[Violation] = field(default_factory=list)
    commits: int = 0  # commits examined by this check
    full: bool = False  # the whole history was walked

    @property
    def ok(self) -> bool:
        return not self.violations


def protected(path: str) -> bool:
    """Whether ``path`` is immutable once written: a record, or an artifact's content."""
    return records.kind_of(path) is not None or path.startswith(
        f"{records.FACTORY_DIR}/{records.BLOBS_DIR}/"
    )


def check(
    factory: Factory,
    full: bool = False,
    tip: str | None = None,
    progress: Callable[[int], None] | None = None,
) -> Report:
    """The records deleted or changed on the branch, as of ``tip`` (default: its tip).

    Incremental: only commits the last check did not see are read, unless ``full``
    (or the state is missing or unreadable). ``progress`` is told the number of
    commits read so far, every 1,000.
    """
    tip = tip if tip is not None else factory.tip()
    state = None if full else _load(factory)
    if tip is None:
        return Report(None, full=True)
    known = {v.path: v for v in state["open"]} if state else {}
    since = state["tip"] if state else None
    if since == tip:  # nothing new: what was open is open (no git read at all)
        return Report(tip, sorted(known.values(), key=lambda v: v.path))
    repo = factory.store.repo
    count = 0
    for count, found in enumerate(_walk(factory, repo, since, tip), start=1):
        for violation in found:
            known.setdefault(violation.path, violation)
        if progress is not None and count % 1000 == 0:
            progress(count)
    head = repo[tip].peel(_tree_type())
    still = [v for v in known.values() if _blob_at(head, v.path) != v.blob]
    still.sort(key=lambda v: v.path)
    _save(factory, tip, still)
    return Report(tip, still, count, full=state is None)


def _walk(
    factory: Factory, repo: pygit2.Repository, since: str | None, tip: str
) -> Iterator[list[Violation]]:
    """For each commit new since ``since`` (parents first), what it deleted or changed."""
    import pygit2

    store = factory.store
    if since is None:
        yield from _reflog(factory, repo)
    walker = repo.walk(tip, pygit2.enums.SortMode.TOPOLOGICAL | pygit2.enums.SortMode.REVERSE)
    if since is not None and since in repo:
        walker.hide(since)
        if not repo.descendant_of(tip, since) and since != tip:
            # Moved back or rewritten: what the old tip held and the new one lacks.
            moved = f"the branch moved from {since[:10]} to {tip[:10]}, back or aside"
            yield list(lost(store, store.factory_tree(since), store.factory_tree(tip),
                             None, moved))  # fmt: skip
    for commit in walker:
        subject = commit.message.split("\n", 1)[0][:200]
        new = store.factory_tree(str(commit.id))
        found: list[Violation] = []
        for parent in commit.parents:
            old = store.factory_tree(str(parent.id))
            found.extend(lost(store, old, new, str(commit.id), subject))
        yield found


def _reflog(factory: Factory, repo: pygit2.Repository) -> Iterator[list[Violation]]:
    """For a walk from scratch: the moves of the branch its reflog remembers that went
    back or aside (a walk of the history alone cannot see what a move dropped)."""
    try:
        entries = list(repo.references[factory.refname].log())
    except (KeyError, ValueError):
        return
    store = factory.store
    for entry in entries:
        old, new = str(entry.oid_old), str(entry.oid_new)
        if set(old) == {"0"} or set(new) == {"0"} or old not in repo or new not in repo:
            continue
        if old != new and not repo.descendant_of(new, old):
            moved = f"the branch moved from {old[:10]} to {new[:10]}, back or aside (reflog)"
            yield list(lost(store, store.factory_tree(old), store.factory_tree(new), None, moved))


def lost(
    store: Any, old: str | None, new: str | None, commit: str | None = None, subject: str = ""
) -> Iterator[Violation]:
    """The records of ``.factory`` tree ``old`` that tree ``new`` deletes or changes."""
    for path, before, after, _ in store.diff_trees(old, new):
        if before is not None and after != before and protected(path):
            how = "deleted" if after is None else "changed"
            yield Violation(path, before, how, commit, subject)


def _blob_at(tree: pygit2.Tree, path: str) -> str | None:
    try:
        return str(tree[path].id)
    except KeyError:
        return None


def _tree_type() -> type[pygit2.Tree]:
    import pygit2

    return pygit2.Tree


def repair(factory: Factory, actor: str) -> tuple[Report, Commit | None]:
    """Restore every record found deleted or changed, byte for byte, in one commit
    with a ``factory.repaired`` event (decided at the commit it is written on)."""
    from gitfactory.store.branch import Change, Snapshot

    done: list[Report] = []

    def build(snap: Snapshot) -> Change | None:
        report = check(factory, tip=str(snap.tip) if snap.tip else None)
        done[:] = [report]
        if report.ok:
            return None
        repo = factory.store.repo
        files = {v.path: bytes(repo[v.blob].read_raw()) for v in report.violations}
        listed = [asdict(v) for v in report.violations[:MAX_LISTED]]
        n = len(report.violations)
        event = stamp(Draft(
            kind="factory.repaired", actor=actor,
            text=f"restored {n} record{'s' * (n != 1)} deleted or changed after being written",
            data={"count": n, "records": listed, "tip": report.tip},
        ))  # fmt: skip
        files[event.path] = records.encode(event.to_record())
        return Change(
            files=files,
            subject=f"factory: restore {n} record{'s' * (n != 1)} from history",
            trailers=[("Factory-Record", f"event {event.id}")],
            replace=frozenset(v.path for v in report.violations if v.how == "changed"),
        )

    commit = factory.store.transact(build)
    if commit is not None:
        return check(factory), commit
    return done[0] if done else check(factory), None


# -- the state file -------------------------------------------------------------------


def _state_path(factory: Factory) -> Any:
    return factory.paths.factory_dir / STATE_FILE


def _load(factory: Factory) -> dict[str, Any] | None:
    try:
        data: dict[str, Any] = json.loads(_state_path(factory).read_text(encoding="utf-8"))
        if data.get("version") != _VERSION or data.get("ref") != factory.refname:
            return None
        data["open"] = [Violation(**v) for v in data["open"]]
        if not isinstance(data["tip"], str) or not _HEX.fullmatch(data["tip"]):
            return None
        fields = ((v.path, v.blob, v.how, v.subject) for v in data["open"])
        if not all(isinstance(x, str) for group in fields for x in group):
            return None
        return data
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return None  # missing or unreadable: the next check walks everything


def _save(factory: Factory, tip: str, still: list[Violation]) -> None:
    path = _state_path(factory)
    data = {"version": _VERSION, "ref": factory.refname, "tip": tip,
            "open": [asdict(v) for v in still]}  # fmt: skip
    with contextlib.suppress(OSError):  # derived: the next check walks again
        path.parent.mkdir(exist_ok=True)
        replace_file(path, json.dumps(data))


def cached(factory: Factory) -> dict[str, Any] | None:
    """What the last check found (``tip``, ``open``), without reading git: for `status`."""
    return _load(factory)
