"""Creating a factory: the factory branch with factory.yaml, the living documents and
the ``factory.init`` event, in one commit (`gitfactory init`).

It sits on the top floor because a new factory is made of every layer's first
files: the config template (:mod:`gitfactory.config`) and the first documents
(:mod:`gitfactory.knowledge.documents`), written through the store.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from gitfactory.config.agents import preset
from gitfactory.config.factory_yaml import (
    CONFIG_PATH,
    PROTOCOL_VERSION,
    FactoryConfig,
    load,
    parse,
    render,
)
from gitfactory.errors import FactoryError
from gitfactory.knowledge import documents
from gitfactory.store import actors, log, records
from gitfactory.store.branch import Change, Snapshot
from gitfactory.store.factory import Factory
from gitfactory.store.git import main_top
from gitfactory.store.records import FACTORY_DIR


@dataclass(frozen=True)
class InitResult:
    created: bool
    name: str
    branch: str
    tip: str
    agents: tuple[str, ...] = ()  # the addresses of the agents factory.yaml has
    joined: str | None = None  # the remote whose existing factory this clone joined
    warning: str | None = None


def default_name(factory: Factory) -> str:
    """The repository's name as a factory name (also from a linked worktree)."""
    top = main_top(factory.paths)
    name = top.name[:-4] if top.name.endswith(".git") else top.name
    return actors.slug(name)


def init(
    factory: Factory,
    name: str | None = None,
    actor: str | None = None,
    agents: dict[str, dict[str, str]] | None = None,
) -> InitResult:
    """Create the factory branch with factory.yaml and the living documents; a no-op
    if it is already there (but a different ``name`` than the one it has is refused,
    and so are ``agents`` it does not have: they are added with `config edit`).

    ``agents`` go into the new factory.yaml's ``agents:`` section (name: entry, as
    :func:`gitfactory.config.agents.from_spec` makes them)."""
    wanted = name or default_name(factory)
    who = actor or actors.default_actor(factory)
    data = render(wanted, agents)
    parse(data, "the new factory.yaml")  # what init writes always loads
    checked_out = _checked_out(factory)
    if checked_out is not None:
        raise FactoryError(
            f"the branch '{factory.branch}' is checked out in {checked_out}: gitfactory writes "
            "that branch without a working tree, so the checkout would look changed",
            hint="switch that worktree to another branch (git switch -c main), then run init again",
        )
    warning = _look_for_remote(factory)
    commit = factory.store.transact(lambda snap: _init_change(factory, snap, wanted, who, data))
    config = load(factory)
    if name is not None and config.name != name:
        raise FactoryError(
            f"this factory is already initialised with the name {config.name!r}",
            hint=f"to rename it, edit name: in {CONFIG_PATH} on the {factory.branch} branch",
        )
    missing = _missing_agents(config, agents or {})
    if missing:
        raise FactoryError(
            f"this factory is already initialised, and its factory.yaml does not have "
            f"{', '.join(missing)}: init writes agents only into a new factory.yaml; "
            "nothing changed",
            hint="add them under agents: with `gitfactory config edit` "
            "(it checks the file and commits it with a config.changed event)",
        )
    addresses = tuple(a.address for a in config.agents.values())
    return InitResult(commit is not None, config.name, factory.branch, factory.require_tip(),
                      addresses, factory.joined, warning if commit else None)  # fmt: skip


def _look_for_remote(factory: Factory) -> str | None:
    """Join the factory the repository's remote already has rather than create an
    unrelated one: a clone that has not fetched it yet fetches it first. A warning
    if the remote could not be asked."""
    from gitfactory.store import remote

    if factory.tip() is not None:  # here already, or just joined from a fetched remote
        return None
    _refused_here(factory)
    names = remote.configured_remotes(factory)
    name = remote.DEFAULT_REMOTE if remote.DEFAULT_REMOTE in names else None
    if name is None and len(names) == 1:
        name = names[0]
    if name is None:
        return None
    try:
        remote.fetch(factory, remote.resolve(factory, name))
    except remote.RemoteUnreachableError as exc:
        return (f"could not ask {name} whether it has a factory already ({exc.message}); if it "
                f"has, `gitfactory sync` will refuse to merge this new one")  # fmt: skip
    factory.tip()  # joins what was fetched, if anything
    _refused_here(factory)
    return None


def _refused_here(factory: Factory) -> None:
    """A remote's factory that this clone would not join is no reason to make another:
    its next sync would be refused as an unrelated history."""
    from gitfactory.store import join

    found = join.adoptable(factory)
    if found and factory.tip() is None:
        name = found[0][0]
        raise FactoryError(
            f"{name}/{factory.branch} exists, but this clone did not join it: it holds "
            "files the protocol does not allow; nothing was created",
            hint=f"`gitfactory sync {name}` names them (and keeps that commit aside)",
        )


def _missing_agents(config: FactoryConfig, agents: dict[str, dict[str, str]]) -> list[str]:
    """The agents asked for that factory.yaml does not have as asked (role, command)."""
    missing = []
    for name, entry in agents.items():
        have = config.agents.get(name)
        command = entry.get("command") or preset(entry["preset"])["command"]
        if have is None or (have.role, have.command) != (entry["role"], command):
            missing.append(f"{entry['role']}/{name}")
    return missing


def _checked_out(factory: Factory) -> Path | None:
    """The worktree whose HEAD is the factory branch (even unborn), if any."""
    common = factory.paths.common_dir
    wanted = f"ref: refs/heads/{factory.branch}"
    for gitdir in [common, *sorted((common / "worktrees").glob("*"))]:
        try:
            head = (gitdir / "HEAD").read_text(encoding="utf-8").strip()
        except OSError:
            continue
        if head == wanted:
            if gitdir == common:
                return factory.paths.work_tree or common
            return Path((gitdir / "gitdir").read_text().strip()).parent
    return None


def _init_change(
    factory: Factory, snap: Snapshot, name: str, actor: str, config: bytes
) -> Change | None:
    if snap.read(CONFIG_PATH) is not None:
        return None
    if snap.tree is not None and any(entry.name != FACTORY_DIR for entry in snap.tree):
        raise FactoryError(
            f"a branch named '{factory.branch}' exists and holds files outside {FACTORY_DIR}/;"
            " it is not a factory branch",
            hint=f"rename that branch (git branch -m {factory.branch} OTHER) and run init again",
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
            CONFIG_PATH: config,
            event.path: records.encode(event.to_record()),
            **documents.initial_files(),
        },
        subject=f"init: factory {name}",
        trailers=[
            ("Factory-Protocol", PROTOCOL_VERSION),
            ("Factory-Record", f"event {event.id}"),
        ],
    )
