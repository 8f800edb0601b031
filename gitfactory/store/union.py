"""Merging another clone's factory branch into ours, without a working tree (SPEC §19).

Records are immutable and uniquely named, so their part of the merge is a union:
every record either side holds is kept, byte for byte; a record the other side
deleted or changed is kept as it was first written (and counted, so the caller can
say the remote lost it). Human-edited files (factory.yaml, documents, scenarios)
merge three-way; a real conflict in one of them is refused with both texts unless
the caller says how to resolve that path. What comes in is checked before anything
is built: only protocol files, records within their limits and valid, regular
files only. One bad path refuses the whole merge: nothing is half-applied.

Only what changed on the other side since the two histories met is read (a diff
that descends only into subtrees whose oids differ), so merging one new record into
a branch of 100,000 costs a handful of tree reads.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pygit2

from gitfactory.errors import InvalidRecordError, UsageError
from gitfactory.store import ids, records
from gitfactory.store.refusals import Conflict as Conflict
from gitfactory.store.refusals import IncomingRefusedError as IncomingRefusedError
from gitfactory.store.refusals import MergeConflictError as MergeConflictError
from gitfactory.store.refusals import Problem as Problem
from gitfactory.store.refusals import UnrelatedHistoryError as UnrelatedHistoryError
from gitfactory.store.refusals import conflicted, refused

if TYPE_CHECKING:
    from gitfactory.store.branch import Store

CONFIG = f"{records.FACTORY_DIR}/factory.yaml"
IN_PLACE_DIRS = ("docs", "scenarios")
# In-place files made from the records (knowledge.documents.HISTORY_PATH): changed on
# both sides, this side's is kept and the caller makes it again from the merged records.
GENERATED = frozenset({f"{records.FACTORY_DIR}/docs/history.md"})
MAX_IN_PLACE_BYTES = 1024 * 1024
_REGULAR = (pygit2.GIT_FILEMODE_BLOB, pygit2.GIT_FILEMODE_BLOB_EXECUTABLE)
_IN_PLACE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}\.md$")

# How a path changed on both sides is settled: "ours", "theirs", or the merged bytes.
Resolution = str | bytes
# A check of an in-place file's merged bytes (factory.yaml must still parse): the
# reason it cannot be used, or None.
InPlaceCheck = Callable[[str, bytes], "str | None"]


@dataclass
class Incoming:
    """What the other side adds to ours: files to write, in-place files to remove."""

    files: dict[str, bytes] = field(default_factory=dict)
    remove: set[str] = field(default_factory=set)
    in_place: set[str] = field(default_factory=set)  # paths of files that change in place
    records: int = 0  # new records (and artifact contents) that come in
    kept: list[str] = field(default_factory=list)  # records the other side lost; ours kept
    merged: list[str] = field(default_factory=list)  # in-place files merged three-way
    regenerate: list[str] = field(default_factory=list)  # generated files to make again
    resolved: set[str] = field(default_factory=set)  # in-place files the caller's text settled
    restored: set[str] = field(default_factory=set)  # records ours had changed: first bytes back
    changed_there: list[str] = field(default_factory=list)  # records the other side changed


def incoming(
    store: Store,
    ours: str | None,
    theirs: str,
    resolutions: dict[str, Resolution] | None = None,
    check: InPlaceCheck | None = None,
    deep: bool = True,
) -> Incoming:
    """What merging commit ``theirs`` into commit ``ours`` brings in.

    Raises :class:`UnrelatedHistoryError` when the two share no history,
    :class:`IncomingRefusedError` when ``theirs`` holds anything the protocol does
    not allow (every problem is listed), and :class:`MergeConflictError` for
    in-place files that do not merge and that ``resolutions`` does not settle.
    ``ours`` None: all of ``theirs`` comes in (a clone joining); ``deep`` False
    checks records' places, modes and sizes but does not parse them (the index
    reports an invalid one as it reads it).
    """
    repo = store.repo
    base = _base(store, ours, theirs)
    problems = _outside(repo, theirs)
    out = Incoming()
    conflicts: list[Conflict] = []
    ours_tree = store.factory_tree(ours)
    for path, old, new, mode in store.diff_trees(
        store.factory_tree(base), store.factory_tree(theirs)
    ):
        mine = _blob(store, ours_tree, path)
        if new is not None and mode not in _REGULAR:
            problems.append(Problem(path, _mode_reason(mode)))
            continue
        if records.kind_of(path) is not None or _is_blob_path(path):
            _record(store, path, (old, new, mine), (ours, theirs), out, problems, deep)
        elif is_in_place(path):
            found = _in_place(store, path, old, new, mine, (resolutions or {}).get(path), out)
            if isinstance(found, Conflict):
                conflicts.append(found)
            elif found is not None:
                problems.append(found)
        else:
            problems.append(Problem(path, _not_protocol(path)))
    if problems:
        raise refused(problems)
    if conflicts:
        raise conflicted(conflicts)
    if check is not None:
        for path in sorted(out.in_place & out.files.keys()):
            reason = check(path, out.files[path])
            if reason is not None and path in out.resolved:
                raise UsageError(f"--resolve {path}=FILE: that text cannot be used: {reason}")
            if reason is not None:
                problems.append(Problem(path, f"merged, it cannot be used: {reason}"))
        if problems:
            raise refused(problems)
    return out


def _base(store: Store, ours: str | None, theirs: str) -> str | None:
    if ours is None:
        return None
    base = store.repo.merge_base(ours, theirs)
    if base is None:
        raise UnrelatedHistoryError(
            f"the other factory branch ({theirs[:10]}) shares no history with this one "
            f"({ours[:10]}): it is another factory",
            hint="if this clone's factory was created by mistake, keep it aside and join "
            "the other: `git branch -m factory factory-mine && gitfactory sync`",
        )
    return str(base)


def _outside(repo: pygit2.Repository, commit: str) -> list[Problem]:
    """Entries of the branch's tree other than the ``.factory`` folder."""
    tree = repo[commit].peel(pygit2.Tree)
    return [
        Problem(
            str(e.name), f"the factory branch holds only {records.FACTORY_DIR}/; this is outside it"
        )
        for e in tree
        if not (e.name == records.FACTORY_DIR and e.filemode == pygit2.GIT_FILEMODE_TREE)
    ]


def _blob(store: Store, tree: str | None, path: str) -> str | None:
    if tree is None:
        return None
    try:
        entry = store.repo[tree].peel(pygit2.Tree)[path.split("/", 1)[1]]
    except KeyError:
        return None
    return str(entry.id) if entry.filemode in _REGULAR else None


def _record(
    store: Store,
    path: str,
    blobs: tuple[str | None, str | None, str | None],
    tips: tuple[str | None, str],
    out: Incoming,
    problems: list[Problem],
    deep: bool,
) -> None:
    old, new, mine = blobs
    if mine == new:
        return
    if old is not None and new is None:
        if mine is not None:
            out.kept.append(path)  # deleted over there: the union keeps it
        return
    if old is not None and mine is not None:
        # Changed on one side: records are immutable, so the bytes it was first written
        # with win, on every clone alike (each keeping its own would never converge).
        first = _first_written(store, path, tips)
        if first == mine or first not in (mine, new):
            out.kept.append(path)
            out.changed_there.append(path)
            return
        assert new is not None
        reason = _check_record(store, path, new, deep)
        if reason is not None:
            problems.append(Problem(path, reason))
            return
        out.files[path] = store.repo.odb.read(new)[1]
        out.restored.add(path)
        return
    assert new is not None
    if mine is not None:
        problems.append(
            Problem(path, "this record exists here with other bytes; records are immutable")
        )
        return
    reason = _check_record(store, path, new, deep)
    if reason is not None:
        problems.append(Problem(path, reason))
        return
    out.files[path] = store.repo.odb.read(new)[1]
    out.records += 1


def _first_written(store: Store, path: str, tips: tuple[str | None, str]) -> str | None:
    """The blob ``path`` had in the first commit of either history that added it."""
    from gitfactory.errors import GitCommandError
    from gitfactory.store.git import run_git

    cwd = store.paths.git_dir
    # Topological: an ancestor before its descendants whatever the dates say (a commit
    # date is whatever its author typed, so a re-adding commit can claim to be older).
    args = ["log", "--diff-filter=A", "--topo-order", "--reverse", "--format=%H",
            *[t for t in tips if t], "--", path]  # fmt: skip
    try:
        commits = run_git(args, cwd).stdout.decode().split()
        if not commits:
            return None
        found = run_git(["rev-parse", "--verify", "-q", f"{commits[0]}:{path}"], cwd)
    except GitCommandError:
        return None
    return found.stdout.decode().strip() or None


def _check_record(store: Store, path: str, blob: str, deep: bool = True) -> str | None:
    """Why the file at ``path`` is not a valid record (None: it is), read within limits."""
    _, size = store.repo.odb.read_header(blob)
    kind = records.kind_of(path)
    if kind is None:  # an artifact's content: any bytes, at its place, within the limit
        if size > records.MAX_BLOB_BYTES:
            return f"{size:,} bytes, over the limit of {records.MAX_BLOB_BYTES:,}"
        return None
    if size > kind.max_bytes:
        return f"record is {size:,} bytes, over the limit of {kind.max_bytes:,}"
    if not deep:
        try:
            records.id_from_path(kind, path)
        except InvalidRecordError as exc:
            return exc.reason
        return None
    try:
        records.decode(kind, path, store.repo.odb.read(blob)[1])
    except InvalidRecordError as exc:
        return f"{exc.field}: {exc.reason}" if exc.field else exc.reason
    return None


def _in_place(
    store: Store,
    path: str,
    old: str | None,
    new: str | None,
    mine: str | None,
    resolution: Resolution | None,
    out: Incoming,
) -> Problem | Conflict | None:
    """Merge one in-place file three-way into ``out``: a problem with what came in,
    a conflict, or None."""
    out.in_place.add(path)
    if path == CONFIG and new is None:
        return Problem(path, "deleted: a factory cannot run without its factory.yaml")
    if new is not None:
        _, size = store.repo.odb.read_header(new)
        if size > MAX_IN_PLACE_BYTES:
            return Problem(
                path,
                f"{size:,} bytes, over the limit of {MAX_IN_PLACE_BYTES:,} for a human-edited file",
            )
    if mine == new:
        return None
    if mine == old or resolution == "theirs":
        _take(store, path, new, out)
        return None
    if resolution == "ours":
        return None
    if path in GENERATED and mine is not None and new is not None:
        out.regenerate.append(path)
        return None
    if isinstance(resolution, bytes):
        out.files[path] = resolution
        out.merged.append(path)
        out.resolved.add(path)
        return None
    conflict = Conflict(path, _read(store, old), _read(store, mine), _read(store, new))
    if mine is None or new is None:  # changed on one side, deleted on the other
        return conflict
    merged = _merge_text(store, path, old, mine, new)
    if merged is None:
        return conflict
    out.files[path] = merged
    out.merged.append(path)
    return None


def _read(store: Store, oid: str | None) -> bytes | None:
    return store.repo.odb.read(oid)[1] if oid else None


def _merge_text(store: Store, path: str, base: str | None, ours: str, theirs: str) -> bytes | None:
    """The three-way merge of a text file (libgit2's, as `git merge-file`), or None
    when the two sides' changes overlap."""

    def entry(oid: str) -> pygit2.IndexEntry:
        mode = pygit2.enums.FileMode.BLOB
        return pygit2.IndexEntry(path, pygit2.Oid(hex=oid), mode)

    result = store.repo.merge_file_from_index(entry(base) if base else None, entry(ours),
                                              entry(theirs))  # fmt: skip
    if isinstance(result, str) or not result.automergeable:
        return None
    return str(result.contents).encode("utf-8")


def _take(store: Store, path: str, new: str | None, out: Incoming) -> None:
    if new is None:
        out.remove.add(path)
    else:
        out.files[path] = store.repo.odb.read(new)[1]


def _is_blob_path(path: str) -> bool:
    prefix = f"{records.FACTORY_DIR}/{records.BLOBS_DIR}/"
    if not path.startswith(prefix):
        return False
    name = path.rsplit("/", 1)[-1]
    return ids.is_id(name) and path == prefix + records.shard_path(name) + name


def is_in_place(path: str) -> bool:
    """Whether ``path`` is a human-edited file of the factory branch (merged three-way)."""
    if path == CONFIG:
        return True
    parts = path.split("/")
    return (
        len(parts) == 3
        and parts[0] == records.FACTORY_DIR
        and parts[1] in IN_PLACE_DIRS
        and bool(_IN_PLACE_NAME.match(parts[2]))
    )


def _not_protocol(path: str) -> str:
    if path.startswith(f"{records.FACTORY_DIR}/{records.BLOBS_DIR}/"):
        return "not at an artifact content's place (blobs/<shards>/<id>)"
    top = path.split("/")[1] if path.count("/") >= 1 else path
    if top in ("peers", "quarantine"):
        return f"{top}/ is reserved for a later protocol version than this gitfactory speaks"
    if top in IN_PLACE_DIRS:
        return f"{top}/ holds only <name>.md files"
    return "not a file of the factory protocol (SPEC §2)"


def _mode_reason(mode: int) -> str:
    what = {pygit2.GIT_FILEMODE_LINK: "a symlink", pygit2.GIT_FILEMODE_COMMIT: "a submodule"}
    return f"{what.get(mode, f'mode {mode:o}')}; the factory branch holds regular files only"
