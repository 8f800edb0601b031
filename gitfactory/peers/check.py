"""`gitfactory peers check`: can each peer be reached, and will our parcels get there?

Asks each peer's repository, without changing anything: what it holds of ours and for
us (`git ls-remote` of the box refs), whether it would take a push (`git push
--dry-run`, for ``deliver: push``), and whether we can sign where factory.yaml says
we sign. Each problem comes with what to do.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from gitfactory.config.peers import PUSH
from gitfactory.store import contacts, courier, remote

if TYPE_CHECKING:
    from gitfactory.config.peers import Peer
    from gitfactory.store.factory import Factory


@dataclass
class Checked:
    name: str
    url: str
    reachable: bool = False
    ms: int | None = None  # how long the peer took to list its refs
    theirs: bool = False  # it left a box for us that we have not fetched yet
    ours_there: bool | None = None  # its inbox ref for us holds our latest box
    problems: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


def check(factory: Factory, only: str | None = None) -> list[Checked]:
    from gitfactory.config import factory_yaml
    from gitfactory.peers.exchange import select

    factory.require_tip()
    config = factory_yaml.load(factory)
    return [_one(factory, config.name, peer) for peer in select(config, only)]


def _one(factory: Factory, own: str, peer: Peer) -> Checked:
    out = Checked(peer.name, peer.url)
    where = courier.endpoint(peer.name, peer.url)
    started = time.monotonic()
    proc = remote.git(factory, ["ls-remote", "--", peer.url, courier.OUTBOX_REFS + own,
                                courier.INBOX_REFS + own])  # fmt: skip
    if proc.returncode != 0:
        error = remote.unreachable(where, "reach", remote.stderr_of(proc))
        contacts.note(factory, where, error)
        out.problems.append(f"{error.message} (check the url, and that git can reach it: "
                            f"`git ls-remote {peer.url}`)")  # fmt: skip
        return out
    contacts.note(factory, where, None)
    out.reachable, out.ms = True, round((time.monotonic() - started) * 1000)
    refs: dict[str, str] = {}
    for line in proc.stdout.decode().splitlines():
        oid, _, name = line.partition("\t")
        refs[name] = oid
    box = refs.get(courier.OUTBOX_REFS + own)
    have = {courier.tip(factory, ref + peer.name) for ref in (courier.INBOX_REFS,
                                                            courier.FETCHED_REFS)}  # fmt: skip
    out.theirs = box is not None and box not in have
    if peer.deliver == PUSH:
        out.ours_there = _delivered(factory, peer.name, refs.get(courier.INBOX_REFS + own))
        _can_push(factory, own, peer, out)
    if peer.sign and not _signing_key(factory):
        out.problems.append("sign: true, but git has no signing key here: set one (`git "
                            "config gpg.format ssh` and `git config user.signingkey "
                            "~/.ssh/id_ed25519.pub`), or set sign: false")  # fmt: skip
    return out


def _delivered(factory: Factory, peer: str, at_peer: str | None) -> bool:
    """Whether the peer's inbox ref for us holds every parcel we wrote it."""
    import pygit2

    waiting = courier.outbox_tree(factory, peer)
    if waiting is None:
        return True  # we never wrote it anything
    published = courier.tip(factory, courier.OUTBOX_REFS + peer)
    if published is None or at_peer != published:
        return False
    return str(factory.store.repo[published].peel(pygit2.Commit).tree.id) == waiting


def _can_push(factory: Factory, own: str, peer: Peer, out: Checked) -> None:
    """Whether the peer's repository takes pushes from us (nothing is sent)."""
    head = factory.tip()
    if head is None:
        return
    proc = remote.git(factory, ["push", "--dry-run", "--porcelain", "--no-verify", "--",
                                peer.url, f"{head}:refs/factory/check/{own}"])  # fmt: skip
    if proc.returncode != 0:
        said = remote.stderr_of(proc).strip().splitlines()
        out.problems.append(
            f"it does not take pushes from here ({said[-1] if said else 'no reason given'}): "
            "ask its owners for write access to refs/factory/inbox/"
            + own
            + ", or set deliver: pull and ask them to fetch from us"
        )


def _signing_key(factory: Factory) -> bool:
    from gitfactory.store.git import main_top, run_git

    proc = run_git(["config", "user.signingkey"], main_top(factory.paths), check=False)
    return proc.returncode == 0 and bool(proc.stdout.strip())
