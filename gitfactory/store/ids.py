"""Record ids: 26 characters, lowercase Crockford base32, sortable by creation time.

The first 10 characters are the writer's clock in milliseconds since the Unix epoch,
the last 16 are random (80 bits), as in ULID, but lowercase so that ids are valid
names everywhere (DESIGN §4). Within one process ids are strictly increasing even
when the clock stands still or steps back: the random part is incremented instead.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable, Iterable, Sequence

from gitfactory.errors import FactoryError
from gitfactory.store import clock

ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"
ID_PATTERN = "^[0-7][0-9a-hjkmnp-tv-z]{25}$"
_ID_RE = re.compile(ID_PATTERN)
_DECODE = {c: i for i, c in enumerate(ALPHABET)}
_RANDOM_BITS = 80

_lock = threading.Lock()
_last_ms = -1
_last_rand = 0


def _encode(value: int, length: int) -> str:
    chars = []
    for _ in range(length):
        chars.append(ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def next_ms(now_ms: int | None = None) -> int:
    """The time the next id will carry: the clock, or the last id's time if the clock
    is behind it. A writer that decides on a time (a lease, say) reads it here, so
    that the events it stamps carry the time the decision was made at."""
    ms = clock.now_ms() if now_ms is None else now_ms
    with _lock:
        return max(ms, _last_ms)


def new_id(now_ms: int | None = None) -> str:
    """Return a fresh id; ``now_ms`` overrides the clock (tests, imports)."""
    global _last_ms, _last_rand
    ms = clock.now_ms() if now_ms is None else now_ms
    with _lock:
        if ms <= _last_ms:
            # Same or earlier millisecond: stay monotonic by bumping the random part.
            ms = _last_ms
            rand = _last_rand + 1
            if rand >> _RANDOM_BITS:
                ms, rand = ms + 1, int.from_bytes(os.urandom(10), "big")
        else:
            rand = int.from_bytes(os.urandom(10), "big")
        _last_ms, _last_rand = ms, rand
    return _encode(ms, 10) + _encode(rand, 16)


def random_id() -> str:
    """An id with no time part: 130 random bits, for records that people type (tasks).

    Random leading characters make short prefixes unique, like git's abbreviated
    hashes; the first character stays within 0-7 so every id has one pattern.
    """
    value = int.from_bytes(os.urandom(17), "big") >> 6  # 130 bits
    return _encode(value % (8 << 125), 26)


def is_id(text: str) -> bool:
    return bool(_ID_RE.match(text))


def id_ms(record_id: str) -> int:
    """Milliseconds since the epoch encoded in an id."""
    value = 0
    for ch in record_id[:10]:
        value = (value << 5) | _DECODE[ch]
    return value


# -- short forms: what listings show and what commands accept --------------------------

SHOWN = 5  # the fewest characters a listing shows of an id
CANDIDATES = 5  # how many matches an "ambiguous" error names


def shortest_unique_prefixes(record_ids: Iterable[str], minimum: int = SHOWN) -> dict[str, str]:
    """Each id's shortest prefix that no other of ``record_ids`` starts with (at least
    ``minimum`` characters): what a listing shows, and what can be typed back.

    Sorted, an id shares its longest common prefix with a neighbour, so one sort and
    one pass over neighbours do it (100,000 ids in well under a second).
    """
    ordered = sorted(set(record_ids))
    # lengths[i]: how much of ordered[i-1] and ordered[i] tells them apart (at least minimum)
    lengths = [minimum] * (len(ordered) + 1)
    for i in range(1, len(ordered)):
        lengths[i] = _apart(ordered[i - 1], ordered[i], minimum)
    return {rid: rid[: max(lengths[i], lengths[i + 1])] for i, rid in enumerate(ordered)}


def unique_prefix(
    record_id: str, before: str | None, after: str | None, minimum: int = SHOWN
) -> str:
    """``record_id``'s shortest unique prefix, given its neighbours in sorted order."""
    length = max([minimum, *(_apart(record_id, n, minimum) for n in (before, after) if n)])
    return record_id[:length]


def _apart(a: str, b: str, minimum: int) -> int:
    """The length of the shortest prefix on which ``a`` and ``b`` differ, or ``minimum``
    if that is longer."""
    if a[:minimum] != b[:minimum]:
        return minimum  # most neighbours: no character-by-character loop
    n = minimum
    while n < len(a) and n < len(b) and a[n] == b[n]:
        n += 1
    return n + 1


def typed(text: str, noun: str, error: type[FactoryError]) -> str:
    """What the user typed for an id, as ids are spelled (lowercase, no blanks)."""
    wanted = text.strip().lower()
    if not wanted:
        raise error(f"an empty {noun} id", hint=f"give the {noun}'s id or a unique prefix of it")
    return wanted


def pick(
    noun: str,
    text: str,
    found: Sequence[str],
    error: type[FactoryError],
    *,
    listing: str,
    describe: Callable[[Sequence[str]], list[str]],
    tails: bool = False,
) -> str:
    """The one id ``found`` for what the user typed; else an error that says so: no
    match (and where the ids are listed), or every candidate, as ``describe`` names
    them (their short forms, with a title), so that the user can type one back."""
    if len(found) == 1:
        return found[0]
    how = "starts or ends" if tails else "starts"
    if not found:
        raise error(f"no {noun} id {how} with {text!r}", hint=f"{listing} shows them")
    shown = describe(found[:CANDIDATES])
    more = ", and more" if len(found) > CANDIDATES else ""
    raise error(
        f"{noun} id {text!r} is ambiguous; it could be {'; '.join(shown)}{more}",
        hint="type more characters of the id",
    )
