"""factory.yaml's ``peers:``: the other factories this one talks with (SPEC §20).

A peer is named by the name it gives itself (its own factory.yaml's ``name:``), so
the inbox ref it fills here, ``refs/factory/inbox/<name>``, and the ``from`` of what
it sends say the same thing. What a peer may send is its ``accept`` policy; the
default is nothing but receipts and news about what we sent it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gitfactory.errors import ConfigError

PUSH, PULL = "push", "pull"
NO, ASK, AUTO = "no", "ask", "auto"  # what becomes of a peer's task request
ANY_ROLE = "*"


@dataclass(frozen=True)
class Accept:
    mail: tuple[str, ...] = ()  # roles the peer may write to; "*" is any role
    tasks: str = NO
    labels: tuple[str, ...] | None = None  # None: any label
    per_day: int = 200  # messages and requests taken in any 24 hours

    def takes_mail_for(self, role: str) -> bool:
        return ANY_ROLE in self.mail or role in self.mail


@dataclass(frozen=True)
class Peer:
    name: str
    url: str
    deliver: str = PUSH
    sign: bool = False
    signers: tuple[str, ...] = ()
    accept: Accept = Accept()


def parse_peers(doc: Any, source: str, own_name: str) -> dict[str, Peer]:
    """The ``peers:`` section (already checked against the schema)."""
    import re

    from gitfactory.store import yaml

    out: dict[str, Peer] = {}
    for name, entry in (doc.get("peers") or {}).items():
        name = str(name)
        where = yaml.location(doc, ["peers", name], source)
        if not re.fullmatch(r"[a-z0-9][a-z0-9._-]{0,63}", name):
            raise ConfigError(
                f"{where}: {name!r} is not a factory name",
                hint="a peer is named by the name: in its own factory.yaml (lowercase "
                "letters, digits, '.', '_', '-')",
            )
        if name == own_name:
            raise ConfigError(
                f"{where}: {name!r} is this factory's own name",
                hint="list the other factories here, by the names they give themselves",
            )
        accept = entry.get("accept") or {}
        labels = accept.get("labels")
        out[name] = Peer(
            name=name,
            url=str(entry["url"]),
            deliver=str(entry.get("deliver", PUSH)),
            sign=bool(entry.get("sign", False)),
            signers=tuple(str(k) for k in entry.get("signers") or ()),
            accept=Accept(
                mail=tuple(str(r) for r in accept.get("mail") or ()),
                tasks=str(accept.get("tasks", NO)),
                labels=None if labels is None else tuple(str(label) for label in labels),
                per_day=int(accept.get("per_day", Accept.per_day)),
            ),
        )
    return out
