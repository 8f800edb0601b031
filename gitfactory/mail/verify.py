"""Who vouches for a message's sender (SPEC §13, "Verified senders").

A message says who it is from; that alone proves nothing, since anyone who can
commit can write ``from: human/lead``. A delivered message is *verified* when one of
these vouches for its ``from``:

- it was written through gitfactory in a clone of this factory (`mail send`, `mail reply`, the
  MCP server, the factory's own notices): the local CLI path;
- it was committed on the task branch of a task its sender holds;
- the commit that added it is signed (git's ssh signing) by a key that
  factory.yaml's ``trust.signers`` lists for the sender or the sender's role.

Otherwise it is delivered marked unverified, or quarantined when ``mail.unverified``
says so. The verdict travels in the ``mail.delivered`` receipt: the message record
itself is the sender's and is never changed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from gitfactory.store import actors, clock

if TYPE_CHECKING:
    from gitfactory.config.factory_yaml import FactoryConfig
    from gitfactory.mail.messages import Message
    from gitfactory.store.factory import Factory


@dataclass(frozen=True)
class Vouch:
    verified: bool
    how: str  # what vouches for the sender, or why nothing does
    signer: str | None = None  # the trust.signers entry whose key signed it


LOCAL = Vouch(True, "written through gitfactory by its sender, in a clone of this factory")


def local(factory: Factory, given: str | None) -> Vouch:
    """The verdict on a message written through the CLI here by whoever runs it
    (``$GITFACTORY_AGENT``, else git's user), or, with ``--as`` naming someone else,
    by them in another's name: not vouched for."""
    if given is None:
        return LOCAL
    caller = actors.default_actor(factory)
    if given == caller:
        return LOCAL
    return Vouch(False, f"written through gitfactory in a clone of this factory by {caller}, "
                        f"as {given} (--as)")  # fmt: skip


def for_branch(
    factory: Factory, config: FactoryConfig, message: Message, branch: str, path: str, blob: str
) -> Vouch:
    """The verdict on a message found on a watched ``branch`` at ``path`` (``blob``)."""
    from gitfactory.plan import decisions, states

    sender = message.sender
    for task_id in states.held_by(factory, sender, clock.now_ms()):
        task = decisions.load(factory, task_id).task
        if config.dispatch.task_names(task.id, task.title)[1] == branch:
            return Vouch(True, f"committed on {branch}, the branch of task {task_id[:8]}, "
                               f"which {sender} holds")  # fmt: skip
    signed = _signed(factory, config, sender, branch, path, blob)
    if signed is not None:
        return signed
    return Vouch(False, f"committed on branch {branch} (not the branch of a task {sender} "
                        "holds), in a commit no key of trust.signers signed for it")  # fmt: skip


def for_factory_branch(
    factory: Factory, config: FactoryConfig, message: Message, blob: str
) -> Vouch:
    """The verdict on a message committed straight onto the factory branch."""
    signed = _signed(factory, config, message.sender, factory.branch, message.path, blob)
    if signed is not None:
        return signed
    return Vouch(False, "committed onto the factory branch with plain git, in a commit no "
                        f"key of trust.signers signed for {message.sender}")  # fmt: skip


def _signed(
    factory: Factory, config: FactoryConfig, sender: str, branch: str, path: str, blob: str
) -> Vouch | None:
    """Vouched for by a signature: the last commit on ``branch`` that wrote ``path``
    wrote exactly ``blob`` and is signed by a key trust.signers lists for ``sender``
    or its role. Git runs with every program it could be configured to run for this
    pinned (the repository's configuration is writable by agents)."""
    from gitfactory.store import signing
    from gitfactory.store.git import main_top, run_git

    entries = {who: keys for who, keys in config.signers.items()
               if who in (sender, actors.role(sender))}  # fmt: skip
    safe = signing.safe_options()
    if not entries or safe is None:
        return None
    top = main_top(factory.paths)
    found = run_git([*safe, "log", "-1", "--format=%H", f"refs/heads/{branch}", "--", path],
                    top, check=False)  # fmt: skip
    commit = found.stdout.decode().strip()
    if found.returncode != 0 or not commit:
        return None
    written = run_git(["rev-parse", "-q", "--verify", f"{commit}:{path}"], top, check=False)
    if written.stdout.decode().strip() != blob:
        return None  # changed since by a commit nobody signed
    who = signing.signer(factory, commit, entries)
    if who is None:
        return None
    return Vouch(True, f"in commit {commit[:10]}, signed by a key trust.signers lists for "
                       f"{who}", signer=who)  # fmt: skip
