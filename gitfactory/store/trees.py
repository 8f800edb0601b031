"""Building the factory branch's next tree from the last one and a change.

Only the subtrees on a changed path are rewritten (the layout is sharded, so a
commit's cost stays flat as history grows); records are immutable, so a change may
add a record or repeat it byte for byte, and replace only the human-edited files it
names.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pygit2

from gitfactory.errors import RecordConflictError

if TYPE_CHECKING:
    from pygit2 import Oid

    from gitfactory.store.branch import Change


def tree_with(
    repo: pygit2.Repository,
    branch: str,
    base: pygit2.Tree | None,
    change: Change,
    written: list[str],
) -> Oid:
    """``base`` plus the change's files, minus its removals; paths that changed are
    added to ``written``. A record that exists with other bytes, or a file where a
    folder must be (or the other way round), is refused: nothing is written."""
    nested: dict[str, Any] = {}
    removals: dict[str, bytes | None] = dict.fromkeys(change.remove)
    for path, data in {**change.files, **removals}.items():
        *dirs, name = path.split("/")
        node = nested
        for d in dirs:
            node = node.setdefault(d, {})
        node[name] = (path, data)
    return _build(repo, branch, base, nested, change.replace, written)


def _build(
    repo: pygit2.Repository,
    branch: str,
    base: pygit2.Tree | None,
    nested: dict[str, Any],
    replace: frozenset[str],
    written: list[str],
) -> Oid:
    builder = repo.TreeBuilder(base) if base is not None else repo.TreeBuilder()
    for name, value in nested.items():
        existing = base[name] if base is not None and name in base else None
        if isinstance(value, dict):
            if existing is not None and existing.type != pygit2.GIT_OBJECT_TREE:
                # Replacing it by a folder would delete whatever it holds.
                where = next(iter(_paths(value)), name)
                raise RecordConflictError(
                    f"a file on {branch} stands where the folder of {where} must be; "
                    "nothing was written"
                )
            sub = existing.peel(pygit2.Tree) if existing is not None else None
            tree = _build(repo, branch, sub, value, replace, written)
            if len(repo[tree].peel(pygit2.Tree)) == 0:  # its last file was removed
                if sub is not None:
                    builder.remove(name)
                continue
            builder.insert(name, tree, pygit2.GIT_FILEMODE_TREE)
            continue
        path, data = value
        if existing is not None and existing.type == pygit2.GIT_OBJECT_TREE and data is not None:
            raise RecordConflictError(
                f"{path} is a folder on {branch}, not a file; nothing was written"
            )
        if data is None:
            if existing is not None and existing.type == pygit2.GIT_OBJECT_TREE:
                raise RecordConflictError(
                    f"{path} is a folder on {branch}, not a file; it was not removed"
                )
            if existing is not None:
                builder.remove(name)
                written.append(path)
            continue
        blob = pygit2.hash(data)
        # The same record again is a no-op; an in-place file that is a symlink with
        # these bytes as its target becomes a regular file.
        regular = existing is not None and existing.filemode != pygit2.GIT_FILEMODE_LINK
        if existing is not None and existing.id == blob and (regular or path not in replace):
            continue
        if existing is not None and path not in replace:
            raise RecordConflictError(
                f"{path} already exists on {branch} with other content; records are immutable",
                hint="write a new record with a new id instead",
            )
        builder.insert(name, repo.create_blob(data), pygit2.GIT_FILEMODE_BLOB)
        written.append(path)
    return builder.write()


def _paths(nested: dict[str, Any]) -> Iterator[str]:
    for value in nested.values():
        if isinstance(value, dict):
            yield from _paths(value)
        else:
            yield value[0]


def changes_project(repo: pygit2.Repository, before: str | None, after: str | None) -> bool:
    """Whether commit ``after`` changes a file outside ``.factory/`` against ``before``
    (None: no commit; from nothing, any project file is a change)."""
    from gitfactory.store.records import FACTORY_DIR

    if after is None or before == after:
        return False
    new = repo[after].peel(pygit2.Tree)
    old = repo[before].peel(pygit2.Tree) if before is not None else None

    def entries(tree: pygit2.Tree | None) -> dict[str, tuple[str, int]]:
        if tree is None:
            return {}
        return {str(e.name): (str(e.id), e.filemode) for e in tree if e.name != FACTORY_DIR}

    return entries(old) != entries(new)


def advances(repo: pygit2.Repository, start: str | None, tip: str | None) -> bool:
    """Whether ``tip`` holds a change of its own since ``start``: it is not ``start``
    or one of its ancestors (a branch moved back), and it changes a file outside
    ``.factory/`` against where the two meet."""
    if tip is None or tip == start:
        return False
    if start is None:
        return changes_project(repo, None, tip)
    if repo.descendant_of(start, tip):
        return False
    base = repo.merge_base(start, tip)
    return changes_project(repo, str(base) if base is not None else None, tip)
