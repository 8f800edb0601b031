"""Who is acting: addresses like ``role/name``, and the default identity of a caller."""

from __future__ import annotations

import getpass
import os
import re
from typing import TYPE_CHECKING

from gitfactory.errors import UsageError

if TYPE_CHECKING:
    from gitfactory.store.factory import Factory

ADDRESS_RE = re.compile(r"^([a-z0-9][a-z0-9._-]*:)?[a-z0-9][a-z0-9._-]*/[a-z0-9][a-z0-9._-]*$")
# A recipient may also be every agent of a role: role/* (or factory:role/*).
RECIPIENT_RE = re.compile(
    r"^([a-z0-9][a-z0-9._-]*:)?[a-z0-9][a-z0-9._-]*/([a-z0-9][a-z0-9._-]*|\*)$"
)
_ADDRESS_HINT = "write role/name (e.g. coder/ada) or human/name"
_RECIPIENT_HINT = (
    "write role/name (coder/ada), role/* (every coder), human/name, or factory:role/name"
    " for another factory"
)
ENV_AGENT = "GITFACTORY_AGENT"
ENV_RUN = "GITFACTORY_RUN"  # set by the daemon on every agent and gate it starts
# The role of the factory's own actors (factory/daemon, factory/gate, factory/merge):
# they run gates and merges and vouch for their results, so nothing typed or set in
# an environment may act as one.
FACTORY_ROLE = "factory"


def slug(text: str) -> str:
    """A valid factory or actor name made from free text ("My Repo" -> "my-repo")."""
    cleaned = re.sub(r"[^a-z0-9._-]+", "-", text.lower()).strip("-._")
    return cleaned[:64] or "factory"


def check(address: str, source: str = "--as", *, recipient: bool = False) -> str:
    """``address`` if it is one (with ``recipient``, role/* is one too), else a usage
    error naming ``source``."""
    pattern = RECIPIENT_RE if recipient else ADDRESS_RE
    if len(address) > 200 or not pattern.match(address):
        raise UsageError(
            f"{source}: {address!r} is not an address",
            hint=(_RECIPIENT_HINT if recipient else _ADDRESS_HINT)
            + "; lowercase letters, digits, '.', '_' and '-'",
        )
    return address


def role(address: str) -> str:
    """The role of an address: ``coder`` for ``coder/ada`` and ``beta:coder/ada``."""
    return address.split(":")[-1].split("/")[0]


def acting(address: str, source: str = "--as") -> str:
    """``address`` checked as someone who acts through the CLI: never the factory."""
    check(address, source)
    if role(address) == FACTORY_ROLE:
        raise UsageError(
            f"{source}: {address!r} is the factory's own identity: only the daemon acts as it",
            hint="act as yourself (human/NAME) or as an agent (role/NAME); a person may end "
            "a gate or merge step by hand with `gitfactory step done ID --override --reason TEXT`",
        )
    return address


def default_actor(factory: Factory) -> str:
    """--as, else $GITFACTORY_AGENT, else human/<git user.name>, else human/<login>."""
    env = os.environ.get(ENV_AGENT)
    if env:
        return acting(env, f"${ENV_AGENT}")
    name = factory.store.user_name
    if name == "gitfactory":
        name = getpass.getuser()
    return f"human/{slug(name)}"


def default_source(factory: Factory) -> str:
    """Where :func:`default_actor` took the address from, said for a person."""
    if os.environ.get(ENV_AGENT):
        return f"${ENV_AGENT}"
    if factory.store.user_name == "gitfactory":
        return "your login name (git has no user.name)"
    return "your git user.name"


def who(factory: Factory, given: str | None) -> str:
    """The acting address: ``given`` (--as) checked, else :func:`default_actor`.

    A process whose environment names its agent (the daemon starts every agent so)
    acts as that agent only: an agent cannot claim to be a person, or another agent,
    by typing ``--as``.
    """
    if not given:
        return default_actor(factory)
    acting(given)
    agent = os.environ.get(ENV_AGENT)
    if agent and given != agent:
        raise UsageError(
            f"--as {given}: this process acts as {agent} (${ENV_AGENT}), and an agent "
            "acts only as itself",
            hint="drop --as; a person runs the command from their own shell",
        )
    return given


def run_around() -> str | None:
    """The run of the daemon's this process was started under, if any: its marker in
    our environment, or in an ancestor's (an agent can leave the marker out of what
    it starts, but not out of its own environment). Linux's /proc shows ancestors;
    elsewhere only our own environment is seen. A process that detaches itself from
    its agent (setsid and an exiting parent) is not found: agents that must not act
    as people need their own Unix user (README, "Running agents")."""
    if os.environ.get(ENV_RUN):
        return os.environ[ENV_RUN]
    wanted = f"{ENV_RUN}=".encode()
    pid = os.getppid()
    for _ in range(64):  # a bound on the walk up
        if pid <= 1:
            return None
        proc = f"/proc/{pid}"
        try:
            with open(f"{proc}/environ", "rb") as fh:
                found = [v for v in fh.read().split(b"\0") if v.startswith(wanted)]
            with open(f"{proc}/stat", "rb") as fh:
                parent = int(fh.read().rsplit(b")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            return None
        if found:
            return found[0][len(wanted) :].decode("utf-8", "replace")
        pid = parent
    return None


def as_a_person(actor: str, doing: str) -> None:
    """Refuse a person's action (``doing``) asked from inside an agent's run."""
    run = run_around() if actor.startswith("human/") else None
    if run:
        raise UsageError(
            f"only a person may {doing}, and this comes from inside run {run[:10]} of the "
            f"factory's agents (as {actor})",
            hint="an agent asks a person instead: gitfactory task ask ID, or "
            "gitfactory mail send 'human/*' ...",
        )
