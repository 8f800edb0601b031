"""Joining the factory a remote already has: a fresh `git clone` has the remote's
factory branch as a remote-tracking ref and no local branch; the first command
creates the local branch there, tracking it, instead of a second, unrelated factory
(SPEC §19)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from gitfactory.store.git import RefUnreadable, read_ref_fast
from gitfactory.store.remote import DEFAULT_REMOTE, NAME

if TYPE_CHECKING:
    from gitfactory.store.factory import Factory


def adoptable(factory: Factory) -> list[tuple[str, str]]:
    """(remote, commit) for every configured remote whose tracking ref holds a factory
    branch, ``origin`` first: what a fresh clone can join."""
    found = []
    names = _remote_names_fast(factory)
    for name in sorted(names, key=lambda n: (n != DEFAULT_REMOTE, n)):
        try:
            tip = read_ref_fast(factory.paths, f"refs/remotes/{name}/{factory.branch}")
        except RefUnreadable:  # reftable or a symbolic ref: ask libgit2
            ref = factory.store.repo.references.get(f"refs/remotes/{name}/{factory.branch}")
            tip = str(ref.target) if ref is not None else None
        if tip:
            found.append((name, tip))
    return found


def _remote_names_fast(factory: Factory) -> list[str]:
    """Remote names from the remote-tracking refs on disk (no libgit2 needed)."""
    common = factory.paths.common_dir
    names: set[str] = set()
    base = common / "refs" / "remotes"
    if base.is_dir():
        names.update(p.name for p in base.iterdir() if p.is_dir())
    try:
        packed = (common / "packed-refs").read_text(encoding="utf-8")
    except FileNotFoundError:
        packed = ""
    for line in packed.splitlines():
        ref = line.split(" ", 1)[-1]
        if ref.startswith("refs/remotes/") and ref.endswith(f"/{factory.branch}"):
            names.add(ref[len("refs/remotes/") : -len(f"/{factory.branch}")])
    return [n for n in names if NAME.match(n)]


def remotes(factory: Factory) -> list[str]:
    """The remotes this clone has fetched from (their tracking refs' folders)."""
    return _remote_names_fast(factory)


def acceptable(factory: Factory, commit: str) -> bool:
    """Whether a remote's factory branch may be joined as it is: a commit whose tree
    holds only protocol files, records at their places within their limits."""
    import pygit2

    from gitfactory.store import union

    store = factory.store
    try:
        if store.repo[commit].type != pygit2.GIT_OBJECT_COMMIT:
            return False
        union.incoming(store, None, commit, deep=False)
    except (union.IncomingRefusedError, KeyError, ValueError):
        return False
    return True


def track(factory: Factory, remote: str, configured: bool) -> None:
    """Make the local factory branch track the remote's (as a joined clone's does), so
    `git log factory..origin/factory` and `git status` work the same on every clone."""
    config = factory.store.repo.config
    key = f"branch.{factory.branch}.remote"
    if configured and key not in config:
        config[key] = remote
        config[f"branch.{factory.branch}.merge"] = factory.refname


def adopt(factory: Factory, remote: str, commit: str) -> bool:
    """Create the local factory branch at ``commit`` (the remote's), tracking it.
    False if the branch appeared meanwhile (another process joined first)."""
    import pygit2

    repo = factory.store.repo
    try:
        repo.create_reference_direct(
            factory.refname,
            pygit2.Oid(hex=commit),
            False,
            message=f"gitfactory: join the factory of {remote}",
        )
    except (pygit2.AlreadyExistsError, ValueError):
        return False
    config = repo.config
    config[f"branch.{factory.branch}.remote"] = remote
    config[f"branch.{factory.branch}.merge"] = factory.refname
    return True
