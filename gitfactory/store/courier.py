"""Moving parcels between repositories through refs (SPEC §20).

Per peer, three refs hold commits whose tree is a box of parcels
(``<id shards>/<id>.json``, exactly the subtree ``.factory/outbox/<peer>/``):

- ``refs/factory/outbox/<peer>``: what we send the peer, published here from our
  factory branch (for a peer that fetches it: ``deliver: pull``);
- ``refs/factory/inbox/<peer>``: what the peer pushed to us (its outbox for us);
- ``refs/factory/fetched/<peer>``: what we fetched from the peer's outbox for us.

The refs are transport only. Nothing in them counts until the receiver has checked
it and written it onto its own factory branch; a ref can be rewritten, replayed or
filled by anyone with write access, and none of that can do more than a delivery.
The git CLI does the transport (the user's credentials and ssh configuration), as for
clones of one factory (:mod:`gitfactory.store.remote`).
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

from gitfactory.errors import FactoryError
from gitfactory.store import contacts, remote
from gitfactory.store.git import main_top, run_git
from gitfactory.store.records import FACTORY_DIR, OUTBOX

if TYPE_CHECKING:
    from gitfactory.store.factory import Factory

OUTBOX_REFS = "refs/factory/outbox/"
INBOX_REFS = "refs/factory/inbox/"
FETCHED_REFS = "refs/factory/fetched/"


class SigningError(FactoryError):
    """A delivery that factory.yaml says to sign could not be signed."""


def endpoint(peer: str, url: str) -> remote.Remote:
    """The peer's repository, as the remote module speaks to it."""
    return remote.Remote(f"peer:{peer}", url, FETCHED_REFS + peer)


def outbox_tree(factory: Factory, peer: str) -> str | None:
    return factory.store.tree_at(f"refs/heads/{factory.branch}", f"{FACTORY_DIR}/{OUTBOX}/{peer}")


def publish(factory: Factory, peer: str, sign: bool = False) -> str | None:
    """Make ``refs/factory/outbox/<peer>`` hold what the factory branch has for
    ``peer`` (a new commit on it when that changed); its commit, or None if we never
    wrote anything for the peer."""
    import pygit2

    tree = outbox_tree(factory, peer)
    if tree is None:
        return None
    repo = factory.store.repo
    refname = OUTBOX_REFS + peer
    ref = repo.references.get(refname)
    old = ref.peel(pygit2.Commit) if ref is not None else None
    if old is not None and str(old.tree.id) == tree:
        return str(old.id)
    message = f"gitfactory: parcels for {peer}\n"
    parents = [str(old.id)] if old is not None else []
    commit = _signed_commit(factory, tree, parents, message) if sign else None
    if commit is None:
        name, email = factory.store.user_name, "gitfactory@localhost"
        who = pygit2.Signature(name, email)
        oid = repo.create_commit(None, who, who, message, pygit2.Oid(hex=tree),
                                 [pygit2.Oid(hex=p) for p in parents])  # fmt: skip
        commit = str(oid)
    # Only this clone writes its outbox refs, under the factory's write lock.
    repo.references.create(refname, pygit2.Oid(hex=commit), force=True)
    return commit


def _signed_commit(factory: Factory, tree: str, parents: list[str], message: str) -> str:
    args = ["commit-tree", "-S", tree, "-m", message.strip()]
    for parent in parents:
        args += ["-p", parent]
    proc = run_git(args, main_top(factory.paths), check=False)
    if proc.returncode != 0:
        said = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        raise SigningError(
            f"could not sign the parcels for a peer: {' '.join(said[-2:]) or 'git said nothing'}",
            hint="set a signing key (`git config gpg.format ssh` and `git config "
            "user.signingkey ~/.ssh/id_ed25519.pub`), or set the peer's sign: false",
        )
    return proc.stdout.decode().strip()


def deliver(factory: Factory, peer: str, url: str, own_name: str, commit: str) -> bool:
    """Push ``commit`` (our outbox for ``peer``) to ``refs/factory/inbox/<own_name>``
    in the peer's repository; False if it already had it. Forced: the receiver takes
    in parcels by id, so an older or rewritten box there loses nothing."""
    where = endpoint(peer, url)
    proc = remote.git(factory, ["push", "--porcelain", "--no-verify", "--", url,
                                f"+{commit}:{INBOX_REFS}{own_name}"])  # fmt: skip
    out = proc.stdout.decode("utf-8", "replace")
    text = out + remote.stderr_of(proc)
    if proc.returncode == 0:
        contacts.note(factory, where, None)
        return "[up to date]" not in out
    if "[remote rejected]" in text or "hook declined" in text:
        contacts.note(factory, where, None)
        raise remote.RemoteRefusedError(
            f"factory {peer!r} ({url}) refused our parcels: {remote.remote_reason(text)}",
            hint="the peer's repository must let us write refs/factory/inbox/"
            f"{own_name}; or ask its owners to fetch from us (deliver: pull)",
        )
    error = remote.unreachable(where, "deliver to", text.strip())
    contacts.note(factory, where, error)
    raise error


def collect(factory: Factory, peer: str, url: str, own_name: str) -> str | None:
    """Fetch the peer's outbox for us; the commit its own repository serves, or None
    if it has none (it pushes to us, or wrote us nothing yet).

    The commit is what this fetch brought, not what a ref says afterwards: anyone who
    may push to this repository can write any ref, ``refs/factory/fetched/<peer>``
    included. So the fetch goes to a ref of a name nobody can guess, is read there
    and the ref removed; ``refs/factory/fetched/<peer>`` is then set for people to
    look at, and the caller keeps the commit (:mod:`gitfactory.peers.exchange`)."""
    import secrets

    where = endpoint(peer, url)
    landing = f"refs/factory/fetching/{peer}/{secrets.token_hex(16)}"
    try:
        if not remote.fetch_ref(factory, where, OUTBOX_REFS + own_name, landing):
            with contextlib.suppress(KeyError, ValueError):
                factory.store.repo.references.delete(where.tracking)
            return None
        fetched = tip(factory, landing)
    finally:
        with contextlib.suppress(KeyError, ValueError):
            factory.store.repo.references.delete(landing)
    if fetched is not None:
        import pygit2

        factory.store.repo.references.create(where.tracking, pygit2.Oid(hex=fetched), force=True)
    return fetched


def arrived(factory: Factory, peer: str, fetched: str | None = None) -> list[tuple[str, str]]:
    """(ref, commit) of every box that brought parcels from ``peer``: what was pushed
    to our inbox ref for it, and ``fetched``, the commit our last fetch from the
    peer's own repository brought (never what ``refs/factory/fetched/<peer>`` says)."""
    found = []
    pushed = tip(factory, INBOX_REFS + peer)
    if pushed is not None:
        found.append((INBOX_REFS + peer, pushed))
    if fetched is not None:
        found.append((FETCHED_REFS + peer, fetched))
    return found


def senders(factory: Factory) -> list[str]:
    """The names under refs/factory/inbox/: every factory that pushed to us, listed
    as a peer or not."""
    names = []
    for refname in factory.store.repo.references:
        if refname.startswith(INBOX_REFS):
            names.append(refname[len(INBOX_REFS) :])
    return sorted(names)


def tip(factory: Factory, refname: str) -> str | None:
    ref = factory.store.repo.references.get(refname)
    return str(ref.target) if ref is not None else None
