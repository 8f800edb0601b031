"""factory.yaml's ``notify:``: which events reach a person, and how.

Each rule names the events it is about (``on:``) and one channel: ``mail`` (an
address, or ``requester``: the task's requester), ``desktop`` (``notify-send``),
``command`` (run with the event as JSON on stdin) or ``webhook`` (a JSON POST,
retried, with a timeout; ``format`` shapes it for Slack, Discord or ntfy). Without
a ``notify:`` section every question goes to its task's requester by mail.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from gitfactory.errors import ConfigError

QUESTION = "question"  # an agent asked (task ask): the task waits for an answer
FAILED = "failed"  # a task ended failed
GATE_FAILED_TWICE = "gate_failed_twice"  # one gate failed twice in a row on a task
MERGE_CONFLICT = "merge_conflict"  # the merge step met a conflict
HUMAN_STEP = "human_step"  # a task waits at a step that a person does
PEER_REQUEST = "peer_request"  # a peer factory's task request waits for acceptance
INTEGRITY = "integrity"  # records were deleted or changed on the factory branch
EVENTS = (QUESTION, FAILED, GATE_FAILED_TWICE, MERGE_CONFLICT, HUMAN_STEP, PEER_REQUEST,
          INTEGRITY)  # fmt: skip
CHANNELS = ("mail", "desktop", "command", "webhook")
FORMATS = ("json", "slack", "discord", "ntfy")
REQUESTER = "requester"
MIN_TIMEOUT_MS, MAX_TIMEOUT_MS = 1_000, 600_000


@dataclass(frozen=True)
class Rule:
    on: tuple[str, ...]
    channel: str  # one of CHANNELS
    target: str  # the address, the command, the URL ("" for desktop)
    format: str = "json"
    timeout_ms: int = 10_000
    retries: int = 3  # attempts after the first one (webhook, command)

    @property
    def id(self) -> str:
        """Names the rule in the records of what it sent, whatever its place in the list."""
        said = json.dumps([self.channel, self.target, self.format], separators=(",", ":"))
        return hashlib.sha1(said.encode()).hexdigest()[:12]

    def covers(self, event: str) -> bool:
        return event in self.on


DEFAULT = (Rule(on=(QUESTION,), channel="mail", target=REQUESTER),)


def parse_notify(doc: Any, source: str) -> tuple[Rule, ...]:
    """The ``notify:`` section (already checked against the schema), or the default."""
    from gitfactory.store import clock, yaml

    if doc.get("notify") is None:
        return DEFAULT
    rules = []
    for k, entry in enumerate(doc["notify"]):
        where = yaml.location(doc, ["notify", k], source)
        chosen = [c for c in CHANNELS if c in entry]
        if len(chosen) != 1:
            raise ConfigError(
                f"{where}: notify rule {k + 1} has {', '.join(chosen) or 'no channel'}; "
                "a rule has exactly one channel",
                hint=f"write one of {', '.join(CHANNELS)} (one rule per channel)",
            )
        channel = chosen[0]
        on = [str(e) for e in entry["on"]]
        events = EVENTS if "*" in on else tuple(dict.fromkeys(on))
        target = "" if channel == "desktop" else str(entry[channel]).strip()
        if channel == "desktop" and entry["desktop"] is not True:
            continue  # desktop: false, a rule switched off
        timeout = clock.parse_duration(str(entry.get("timeout", "10s")), f"{where}: timeout")
        if not MIN_TIMEOUT_MS <= timeout <= MAX_TIMEOUT_MS:
            raise ConfigError(f"{where}: notify rule {k + 1}'s timeout must be from 1s to 10m",
                              hint="timeout: 10s is the default")  # fmt: skip
        rules.append(Rule(
            on=events, channel=channel, target=target, format=str(entry.get("format", "json")),
            timeout_ms=timeout,
            retries=int(entry.get("retries", 3)),
        ))  # fmt: skip
    return tuple(rules)
