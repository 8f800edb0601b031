"""One factory: a repository, its factory branch, and the derived index.

The entry point of the library. Opening is cheap: pygit2 and the index are loaded
only when first needed, so a query the index can answer never imports pygit2.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from gitfactory import git
from gitfactory.errors import FactoryError, NotInitializedError
from gitfactory.records import FACTORY_DIR

if TYPE_CHECKING:
    from gitfactory.config import FactoryConfig
    from gitfactory.index import Index
    from gitfactory.store import Change, Snapshot, Store

DEFAULT_BRANCH = "factory"


@dataclass(frozen=True)
class InitResult:
    created: bool
    name: str
    branch: str
    tip: str


class Factory:
    def __init__(self, paths: git.RepoPaths, branch: str = DEFAULT_BRANCH) -> None:
        self.paths = paths
        self.branch = branch
        self.refname = f"refs/heads/{branch}"
        self._config: tuple[bytes, FactoryConfig] | None = None

    @classmethod
    def discover(cls, start: Path | None = None, branch: str = DEFAULT_BRANCH) -> Factory:
        return cls(git.discover(start), branch)

    @cached_property
    def store(self) -> Store:
        from gitfactory.store import Store

        return Store(self.paths, self.branch)

    @cached_property
    def index(self) -> Index:
        from gitfactory.index import Index

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

    def config(self) -> FactoryConfig:
        """factory.yaml at the branch tip (parsed once per tip: YAML is slow to load)."""
        from gitfactory.config import CONFIG_PATH, parse

        tip = self.require_tip()
        data = self.store.snapshot(tip).read(CONFIG_PATH)
        if data is None:
            raise NotInitializedError(
                f"the '{self.branch}' branch has no {CONFIG_PATH}",
                hint="run `gitfactory init` to add it",
            )
        if self._config is None or self._config[0] != data:
            self._config = (data, parse(data, f"{self.branch}:{CONFIG_PATH}"))
        return self._config[1]

    def default_name(self) -> str:
        from gitfactory.actors import slug
        from gitfactory.worktrees import main_top

        top = main_top(self.paths)  # the repository's name, also from a linked worktree
        name = top.name[:-4] if top.name.endswith(".git") else top.name
        return slug(name)

    def init(self, name: str | None = None, actor: str | None = None) -> InitResult:
        """Create the factory branch with factory.yaml and the living documents
        (:mod:`gitfactory.documents`); a no-op if it is already there."""
        from gitfactory import actors
        from gitfactory.config import CONFIG_PATH

        wanted = name or self.default_name()
        who = actor or actors.default_actor(self)
        checked_out = self._checked_out()
        if checked_out is not None:
            raise FactoryError(
                f"the branch '{self.branch}' is checked out in {checked_out}: gitfactory writes "
                "that branch without a working tree, so the checkout would look changed",
                hint="switch that worktree to another branch (git switch -c main), "
                "then run init again",
            )
        commit = self.store.transact(lambda snap: self._init_change(snap, wanted, who))
        config = self.config()
        if name is not None and config.name != name:
            raise FactoryError(
                f"this factory is already initialised with the name {config.name!r}",
                hint=f"to rename it, edit name: in {CONFIG_PATH} on the {self.branch} branch",
            )
        return InitResult(commit is not None, config.name, self.branch, self.require_tip())

    def _checked_out(self) -> Path | None:
        """The worktree whose HEAD is the factory branch (even unborn), if any."""
        common = self.paths.common_dir
        wanted = f"ref: refs/heads/{self.branch}"
        for gitdir in [common, *sorted((common / "worktrees").glob("*"))]:
            try:
                head = (gitdir / "HEAD").read_text(encoding="utf-8").strip()
            except OSError:
                continue
            if head == wanted:
                if gitdir == common:
                    return self.paths.work_tree or common
                return Path((gitdir / "gitdir").read_text().strip()).parent
        return None

    def _init_change(self, snap: Snapshot, name: str, actor: str) -> Change | None:
        from gitfactory import documents, log, records
        from gitfactory.config import CONFIG_PATH, PROTOCOL_VERSION, render
        from gitfactory.store import Change

        if snap.read(CONFIG_PATH) is not None:
            return None
        if snap.tree is not None and any(entry.name != FACTORY_DIR for entry in snap.tree):
            raise FactoryError(
                f"a branch named '{self.branch}' exists and holds files outside {FACTORY_DIR}/;"
                " it is not a factory branch",
                hint=f"rename that branch (git branch -m {self.branch} OTHER) and run init again",
            )
        event = log.stamp(
            log.Draft(
                kind="factory.init",
                actor=actor,
                text=f"factory {name} initialised",
                data={"protocol": PROTOCOL_VERSION},
            )
        )
        return Change(
            files={
                CONFIG_PATH: render(name),
                event.path: records.encode(event.to_record()),
                **documents.initial_files(),
            },
            subject=f"init: factory {name}",
            trailers=[
                ("Factory-Protocol", PROTOCOL_VERSION),
                ("Factory-Record", f"event {event.id}"),
            ],
        )
