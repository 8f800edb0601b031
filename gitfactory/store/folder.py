"""Markdown files in one folder of the factory branch, changed in place.

Living documents (``.factory/docs``) and scenarios (``.factory/scenarios``) are both
such a folder: each ``<name>.md`` is written by people and agents, and, like
factory.yaml, changes in place instead of being a new record (DESIGN I2), so git
versions it like code. A :class:`Folder` says where one lives, what a name is and how
large a file may be; reading and writing are the same for all of them. Entries that
are not regular files or whose names do not match (symlinks, subfolders, notes) are
not part of the folder: every reader skips them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from gitfactory.errors import UsageError
from gitfactory.store import actors

if TYPE_CHECKING:
    from gitfactory.store.branch import Change, Commit, Snapshot
    from gitfactory.store.factory import Factory


@dataclass(frozen=True)
class Folder:
    """One folder of in-place ``<name>.md`` files on the factory branch."""

    path: str  # e.g. ".factory/docs"
    noun: str  # what messages call one file: "document"
    command: str  # the CLI group that edits them, for hints: "gitfactory docs"
    subject: str  # commit subjects start with it: "docs"
    name: re.Pattern[str]  # a name, without ".md"
    name_hint: str
    max_bytes: int
    size_hint: str
    missing: type[UsageError] = UsageError  # raised for a name that is not there

    def check_name(self, name: str) -> str:
        """The name in ``name`` (a trailing ``.md`` is dropped), or a usage error."""
        wanted = name.removesuffix(".md")
        if not self.name.match(wanted):
            raise UsageError(f"{name!r} is not a {self.noun} name", hint=self.name_hint)
        return wanted

    def path_of(self, name: str) -> str:
        return f"{self.path}/{self.check_name(name)}.md"

    def files(self, snap: Snapshot) -> dict[str, bytes]:
        """name -> bytes of every file of the folder in ``snap``, by name."""
        import pygit2

        tree = snap.entry(self.path)
        if tree is None or tree.type != pygit2.GIT_OBJECT_TREE:
            return {}
        found = []
        for entry in tree.peel(pygit2.Tree):
            name = str(entry.name)
            regular = entry.filemode in (
                pygit2.GIT_FILEMODE_BLOB,
                pygit2.GIT_FILEMODE_BLOB_EXECUTABLE,
            )
            if regular and name.endswith(".md") and self.name.match(name[:-3]):
                found.append((name[:-3], entry.peel(pygit2.Blob).data))
        return dict(sorted(found))

    def at_tip(self, factory: Factory) -> dict[str, bytes]:
        """:meth:`files` at the branch tip."""
        return self.files(factory.store.snapshot(factory.require_tip()))

    def read(self, factory: Factory, name: str) -> bytes:
        """The bytes of ``name`` as committed."""
        wanted = self.check_name(name)
        found = self.at_tip(factory)
        if wanted not in found:
            raise self._missing(factory, wanted, found)
        return found[wanted]

    def check_text(self, name: str, data: bytes) -> None:
        """A usage error unless ``data`` is UTF-8 text within the size limit."""
        if len(data) > self.max_bytes:
            raise UsageError(
                f"{name}: {len(data):,} bytes is over the {self.noun} limit of {self.max_bytes:,}",
                hint=self.size_hint,
            )
        try:
            data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise UsageError(f"{name}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
        nul = data.find(b"\0")
        if nul >= 0:
            raise UsageError(f"{name}: holds a NUL byte (at byte {nul}); it must be text")

    def write(self, factory: Factory, name: str, data: bytes, actor: str) -> Commit | None:
        """Commit ``data`` as ``name`` (created if new) under the CAS; None if unchanged."""
        from gitfactory.store.branch import Change

        wanted = self.check_name(name)
        actors.check(actor, "actor")
        self.check_text(wanted, data)
        path = self.path_of(wanted)
        factory.require_tip()

        def build(snap: Snapshot) -> Change | None:
            current = self.files(snap).get(wanted)  # a symlink there is not the file
            if current == data:
                return None
            verb = "add" if current is None else "edit"
            subject = f"{self.subject}: {verb} {wanted} by {actor}"
            return Change({path: data}, subject, replace=frozenset({path}))

        return factory.store.transact(build)

    def remove(self, factory: Factory, name: str, actor: str) -> Commit:
        """Delete ``name`` in one commit; an error if it is not there. Git keeps its
        history (``git log -p factory -- PATH``)."""
        from gitfactory.store.branch import Change

        wanted = self.check_name(name)
        actors.check(actor, "actor")
        path = self.path_of(wanted)
        factory.require_tip()

        def build(snap: Snapshot) -> Change:
            found = self.files(snap)
            if wanted not in found:
                raise self._missing(factory, wanted, found, hint=f"`{self.command}` lists them")
            subject = f"{self.subject}: remove {wanted} by {actor}"
            return Change({}, subject, replace=frozenset({path}), remove=frozenset({path}))

        commit = factory.store.transact(build)
        assert commit is not None
        return commit

    def _missing(
        self, factory: Factory, name: str, found: dict[str, bytes], hint: str | None = None
    ) -> UsageError:
        names = ", ".join(found) or "none"
        return self.missing(
            f"no {self.noun} {name!r} in {self.path}/ on the {factory.branch} branch "
            f"({self.noun}s: {names})",
            hint=hint or f"`{self.command} edit {name}` creates it",
        )
