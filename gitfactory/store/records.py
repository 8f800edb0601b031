"""Record kinds, where each record lives in the tree, and how it is read and checked.

A record is one immutable file under ``.factory/``. Its kind is decided by its
directory, its id by its file name, and its place by its id (see :meth:`RecordKind.path`):
the shard directories are prefixes of the time part of the id, so new records land in
the same few small trees and no tree object grows without bound.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from functools import cache
from typing import Any

from gitfactory.errors import InvalidRecordError
from gitfactory.store import clock, ids, schemas

FACTORY_DIR = ".factory"
MAX_RECORD_BYTES = 1024 * 1024
# A message body may be configured up to 16 MiB (mail.max_body); its front matter
# gets 64 KiB on top.
MAX_MESSAGE_BODY = 16 * 1024 * 1024
MAX_MESSAGE_BYTES = MAX_MESSAGE_BODY + 64 * 1024
# Shard levels: id[0:4] changes every ~12 days, then one character each: id[4] every
# ~9 hours, id[5] ~17 minutes, id[6] ~33 seconds, id[7] ~1 second. Every directory
# below the first holds at most 32 entries (rewriting a 1,024-entry tree costs ~14x a
# small one), and a leaf holds the records written within about one second.
TIME_SHARDS = ((0, 4), (4, 5), (5, 6), (6, 7), (7, 8))
# Task ids are random (see ids.random_id): two levels spread them evenly.
RANDOM_SHARDS = ((0, 1), (1, 2))


@dataclass(frozen=True)
class RecordKind:
    name: str
    directory: str
    suffix: str  # ".json": a JSON object; ".md": markdown with YAML front matter
    time_fields: tuple[str, ...] = ()
    shards: tuple[tuple[int, int], ...] = TIME_SHARDS
    max_bytes: int = MAX_RECORD_BYTES

    @property
    def prefix(self) -> str:
        return f"{FACTORY_DIR}/{self.directory}/"

    def path(self, record_id: str) -> str:
        return f"{self.prefix}{shard_path(record_id, self.shards)}{record_id}{self.suffix}"


def shard_path(record_id: str, shards: tuple[tuple[int, int], ...] = TIME_SHARDS) -> str:
    """The shard folders of an id, with a trailing slash: ``01m8/0/b/4/s/``."""
    return "".join(record_id[a:b] + "/" for a, b in shards)


EVENT = RecordKind("event", "log", ".json", time_fields=("time",))
TASK = RecordKind("task", "tasks", ".md", time_fields=("created",), shards=RANDOM_SHARDS)
MESSAGE = RecordKind(
    "message", "mail", ".md", time_fields=("created",), max_bytes=MAX_MESSAGE_BYTES
)
ARTIFACT = RecordKind("artifact", "artifacts", ".json", time_fields=("created",))
# An artifact's content lives beside the records, at the same shards under blobs/:
# a directory of plain files that readers of records skip (see SPEC §15).
BLOBS_DIR = "blobs"
MAX_BLOB_BYTES = 32 * 1024 * 1024  # of one artifact's content
KINDS: dict[str, RecordKind] = {k.name: k for k in (EVENT, TASK, MESSAGE, ARTIFACT)}
_BY_DIRECTORY = {k.directory: k for k in KINDS.values()}
# Parcels (SPEC §20) live one folder deeper, by peer: outbox/<peer>/ holds what this
# factory sends the peer, inbox/<peer>/ what it took in from the peer.
PARCEL = "parcel"
OUTBOX, INBOX = "outbox", "inbox"
PEER_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
# Every directory that holds immutable files (the hooks refuse changes under them).
RECORD_DIRS = (*(k.directory for k in KINDS.values()), BLOBS_DIR, OUTBOX, INBOX)


@cache
def parcel_kind(box: str, peer: str) -> RecordKind:
    """The kind of the parcels in ``box`` (outbox or inbox) for ``peer``."""
    return RecordKind(PARCEL, f"{box}/{peer}", ".json", time_fields=("created",))


def kind_of(path: str) -> RecordKind | None:
    """The record kind whose directory holds ``path``, or None for other files."""
    parts = path.split("/", 3)
    if len(parts) < 3 or parts[0] != FACTORY_DIR:
        return None
    if parts[1] in (OUTBOX, INBOX):
        if len(parts) < 4 or not PEER_NAME.match(parts[2]):
            return None
        return parcel_kind(parts[1], parts[2])
    return _BY_DIRECTORY.get(parts[1])


def id_from_path(kind: RecordKind, path: str) -> str:
    """The record id named by ``path``; raises if the file is not at its canonical place."""
    name = path.rsplit("/", 1)[-1]
    record_id = name[: -len(kind.suffix)] if name.endswith(kind.suffix) else ""
    if not ids.is_id(record_id):
        raise InvalidRecordError(
            path, None, f"file name must be <id>{kind.suffix} with a 26-character record id"
        )
    if kind.path(record_id) != path:
        raise InvalidRecordError(path, None, f"record is not at its place {kind.path(record_id)}")
    return record_id


def validate(kind: RecordKind, path: str, record: Any) -> None:
    """Check a decoded record against its schema and the rules schemas cannot say."""
    if not isinstance(record, dict):
        raise InvalidRecordError(path, None, f"a {kind.name} record must be a JSON object")
    violation = schemas.check(kind.name, record)
    if violation is not None:
        raise InvalidRecordError(path, violation.field, violation.reason)
    for field in kind.time_fields:
        try:
            clock.parse_time(record[field])
        except ValueError as exc:
            raise InvalidRecordError(path, field, f"{exc} (got {record[field]!r})") from None
    expected = id_from_path(kind, path)
    if record["id"] != expected:
        raise InvalidRecordError(path, "id", f"must equal the file name's id {expected}")
    found = _nul(record)
    if found is not None:
        # JSON can carry a NUL, but git commit messages, C strings and terminals
        # cannot; and a lone surrogate ("\ud800") is no Unicode text at all: either
        # would break every tool that shows or stores the record.
        where, char = found
        what = "a NUL character" if char == "\x00" else "a lone surrogate (not Unicode text)"
        raise InvalidRecordError(path, where or None, f"contains {what}")


_NOT_TEXT = re.compile("[\x00\ud800-\udfff]")


def _nul(value: Any, field: str = "") -> tuple[str, str] | None:
    """The field path of the first string (or key) holding a NUL or a lone surrogate,
    and that character."""
    if isinstance(value, str):
        bad = _NOT_TEXT.search(value)
        return (field, bad.group()) if bad else None
    items = (
        value.items()
        if isinstance(value, dict)
        else enumerate(value)
        if isinstance(value, list)
        else ()
    )
    for key, item in items:
        name = f"{field}.{key}" if field else str(key)
        if isinstance(key, str) and (bad := _NOT_TEXT.search(key)):
            return name, bad.group()
        found = _nul(item, name)
        if found is not None:
            return found
    return None


def decode(kind: RecordKind, path: str, data: bytes) -> dict[str, Any]:
    """Parse and validate the bytes of a record file."""
    id_from_path(kind, path)
    if len(data) > kind.max_bytes:
        raise InvalidRecordError(
            path, None, f"record is {len(data)} bytes, over the limit of {kind.max_bytes}"
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidRecordError(path, None, f"not UTF-8 text ({exc.reason})") from None
    try:
        if kind.suffix == ".md":
            from gitfactory.store import frontmatter

            record = frontmatter.parse(text, path)
        else:
            record = loads(text)
        validate(kind, path, record)
    except json.JSONDecodeError as exc:
        raise InvalidRecordError(
            path, None, f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    except ValueError as exc:  # NaN or Infinity: not JSON, and not portable
        raise InvalidRecordError(path, None, f"not valid JSON: {exc}") from None
    except RecursionError:
        # Anyone who can commit can write this; it must not stop every reader.
        raise InvalidRecordError(path, None, "nested too deep to read") from None
    result: dict[str, Any] = record
    return result


def loads(text: str) -> Any:
    """JSON as the protocol has it: NaN and Infinity are refused (ValueError), as
    other languages' parsers refuse them, and so is a number too large to be one
    (``1e400``)."""
    return json.loads(text, parse_constant=_not_a_number, parse_float=_finite)


def _finite(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise ValueError(f"{text[:40]} is out of range for a JSON number")
    return value


def _not_a_number(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def encode(record: dict[str, Any], kind: RecordKind = EVENT) -> bytes:
    """The canonical bytes of a record: indented JSON, or front matter and a markdown body."""
    if kind.suffix == ".md":
        from gitfactory.store import frontmatter

        return frontmatter.emit(record).encode("utf-8")
    return (json.dumps(record, ensure_ascii=False, indent=2) + "\n").encode("utf-8")
