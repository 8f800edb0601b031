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
        """The factory branch's commit, read without libgit2 when the ref files allow.

        A clone that has no factory branch but has fetched one from a remote (a fresh
        `git clone`) joins it: the local branch is created there, tracking it.
        """
        try:
            tip = git.read_ref_fast(self.paths, self.refname)
        except git.RefUnreadable:
            tip = self.store.tip()
        return tip if tip is not None else self._join()

    def _join(self) -> str | None:
        from gitfactory.store import join, remote

        found = join.adoptable(self)
        if not found or (found[0][0] != remote.DEFAULT_REMOTE and len(join.remotes(self)) > 1):
            return None  # only origin's, or the only remote's: others by `gitfactory sync NAME`
        name, commit = found[0]
        if not join.acceptable(self, commit):
            return None  # `gitfactory sync` says why (and quarantines it)
        if join.adopt(self, name, commit):
            self.joined = name
        return self.store.tip()

    joined: str | None = None  # the remote this clone joined the factory of, just now

    @cached_property
    def notices(self) -> list[str]:
        """Warnings for whoever runs the command (the CLI prints them on stderr)."""
        return []

    def require_tip(self) -> str:
        tip = self.tip()
        if tip is None:
            raise NotInitializedError(
                f"no factory here: this repository has no '{self.branch}' branch",
                hint=self._start_hint(),
            )
        return tip

    def _start_hint(self) -> str:
        from gitfactory.store import join

        found = [name for name, _ in join.adoptable(self)]
        if len(found) == 1:
            return (f"{found[0]}/{self.branch} has one that was not joined: "
                    f"`gitfactory sync {found[0]}` joins it or says why not")  # fmt: skip
        if found:
            return (f"remotes {', '.join(found)} each have one: join one with "
                    f"`gitfactory sync {found[0]}`")  # fmt: skip
        return (
            "run `gitfactory init` to create it (or `gitfactory sync REMOTE` to join the "
            "factory another clone pushed)"
        )
