"""The one clock: real time, or the time in $GITFACTORY_NOW (tests, replays).

Leases and ids read the time here, so a test can move the whole factory through
time (a lease expiring, say) without sleeping. GITFACTORY_NOW takes an RFC 3339 time
(2026-11-22T10:00:00Z) or milliseconds since the epoch.
"""

from __future__ import annotations

import os
import re
import time
from datetime import UTC, datetime

from gitfactory.errors import UsageError

_DURATION = re.compile(r"^(\d+)\s*(ms|s|m|h|d|w)$")
_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}

ENV_NOW = "GITFACTORY_NOW"
_TIME_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z$")


def now_ms() -> int:
    fixed = os.environ.get(ENV_NOW)
    if not fixed:
        return time.time_ns() // 1_000_000
    if fixed.isdigit():
        return int(fixed)
    return parse_time(fixed)


def parse_duration(text: str, option: str = "duration") -> int:
    """Milliseconds in '90s', '15m', '2h', '3d', '1w' (or '500ms')."""
    match = _DURATION.match(text.strip())
    if not match:
        raise UsageError(
            f"{option}: cannot read {text!r} as a duration",
            hint="use a number and a unit: 90s, 15m, 2h, 3d, 1w",
        )
    return int(match.group(1)) * _UNIT_MS[match.group(2)]


def parse_time(value: str) -> int:
    """Milliseconds since the epoch of an RFC 3339 UTC time as records carry it."""
    if not _TIME_RE.match(value):
        raise ValueError("must be an RFC 3339 UTC time like 2026-11-22T10:30:00.000Z")
    head, _, frac = value[:-1].partition(".")
    dt = datetime.fromisoformat(head + "+00:00")
    return int(dt.timestamp()) * 1000 + int((frac + "000")[:3])


def format_time(ms: int) -> str:
    """RFC 3339 UTC with milliseconds, the only form gitfactory writes."""
    dt = datetime.fromtimestamp(ms / 1000, tz=UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"
