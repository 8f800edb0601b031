"""One factory as storage: a repository, its factory branch, and the derived index.

The handle every layer above is given. Opening is cheap: pygit2 and the index are
loaded only when first needed, so a query the index can answer never imports pygit2.
What the branch *says* is read one floor up: factory.yaml by
:func:`gitfactory.config.factory_yaml.load`; creating a factory is
:mod:`gitfactory.create`.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from gitfactory.errors import NotInitializedError
from gitfactory.store import git

if TYPE_CHECKING:
    from gitfactory.store.branch import Store
    from gitfactory.store.index import Index

DEFAULT_BRANCH = "factory"


class Factory:
    def __init__(self, paths: git.RepoPaths, branch: str = DEFAULT_BRANCH) -> None:
        self.paths = paths
        self.branch = branch
        self.refname = f"refs/heads/{branch}"

    @classmethod
    def discover(cls, start: Path | None = None, branch: str = DEFAULT_BRANCH) -> Factory:
        return cls(git.discover(start), branch)

    @cached_property
    def store(self) -> Store:
        from gitfactory.store.branch import Store

        return Store(self.paths, self.branch)

    @cached_property
    def index(self) -> Index:
        from gitfactory.store.index import Index

        return Index(self)

    def tip(self) -> str | None:
        """The factory branch's commit, read without libgit2 when the ref files allow."""
        try:
            return git.read_ref_fast(self.paths, self.refname)
        except git.RefUnreadable:
            return self.store.tip()

    def require_tip(self) -> str:
        tip = self.tip()
        if tip is None:
            raise NotInitializedError(
                f"no factory here: this repository has no '{self.branch}' branch",
                hint="run `gitfactory init` to create it",
            )
        return tip
