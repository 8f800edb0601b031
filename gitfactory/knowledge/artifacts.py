"""Artifacts: files a task produced (transcripts, reports, verdicts), kept in git.

An artifact is two files on the factory branch: its content, stored as it is at
``.factory/blobs/<shards>/<id>``, and its manifest record
``.factory/artifacts/<shards>/<id>.json`` (name, media type, size, SHA-256, git blob
id, producer, step). Both are written in one commit, so an artifact is never seen
without its content, and both travel with the branch by push and fetch.
"""

from __future__ import annotations

import hashlib
import json
import mimetypes
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from gitfactory.errors import FactoryError, InvalidRecordError, UsageError
from gitfactory.store import clock, ids, records
from gitfactory.store.records import ARTIFACT, BLOBS_DIR, FACTORY_DIR, MAX_BLOB_BYTES, shard_path

if TYPE_CHECKING:
    from gitfactory.store.factory import Factory

MAX_BYTES = MAX_BLOB_BYTES
TAIL = 4  # the fewest trailing characters that name an artifact
_NAME_BAD = re.compile(r"[^A-Za-z0-9._-]+")


class ArtifactNotFoundError(UsageError):
    """No artifact, or more than one, matches the id that was typed."""


class CorruptArtifactError(FactoryError):
    """The stored content does not match its manifest's SHA-256."""


@dataclass(frozen=True)
class Artifact:
    id: str
    task: str | None
    name: str
    media_type: str
    size: int
    sha256: str
    blob: str
    producer: str
    step: str | None
    created: str

    @property
    def path(self) -> str:
        return ARTIFACT.path(self.id)

    @property
    def content_path(self) -> str:
        return content_path(self.id)

    def to_record(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Artifact:
        fields: dict[str, Any] = {k: record.get(k) for k in cls.__dataclass_fields__}
        return cls(**fields)


def content_path(artifact_id: str) -> str:
    return f"{FACTORY_DIR}/{BLOBS_DIR}/{shard_path(artifact_id, ARTIFACT.shards)}{artifact_id}"


def clean_name(name: str) -> str:
    """A safe file name from any name or path: its last part, odd characters as '-'."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    cleaned = _NAME_BAD.sub("-", base).strip("-.") or "artifact"
    return cleaned[:128]


def media_type(name: str, data: bytes) -> str:
    guessed, _ = mimetypes.guess_type(name)
    if guessed:
        return guessed
    try:
        data[:65536].decode("utf-8")
    except UnicodeDecodeError:
        return "application/octet-stream"
    return "text/plain"


def put(
    factory: Factory,
    task: str | None,
    data: bytes,
    *,
    name: str,
    producer: str,
    step: str | None = None,
) -> Artifact:
    """Store ``data`` for ``task`` (a full id, or None) and return its manifest."""
    artifact = prepare(task, data, name=name, producer=producer, step=step)
    store(factory, [(artifact, data)])
    return artifact


def prepare(
    task: str | None, data: bytes, *, name: str, producer: str, step: str | None = None
) -> Artifact:
    """The manifest ``data`` will have (its id included), checked; nothing is written."""
    import pygit2

    if len(data) > MAX_BYTES:
        raise UsageError(
            f"{name}: {len(data):,} bytes is over the artifact limit of {MAX_BYTES:,}",
            hint="store large build outputs elsewhere and put a pointer to them in a message",
        )
    now = clock.now_ms()
    safe = clean_name(name)
    artifact = Artifact(
        id=ids.new_id(now), task=task, name=safe, media_type=media_type(safe, data),
        size=len(data), sha256=hashlib.sha256(data).hexdigest(),
        blob=str(pygit2.hash(data)), producer=producer, step=step,
        created=clock.format_time(now),
    )  # fmt: skip
    try:
        records.validate(ARTIFACT, artifact.path, artifact.to_record())
    except InvalidRecordError as exc:
        raise UsageError(f"{exc.field or 'artifact'}: {exc.reason}") from None
    return artifact


def store(factory: Factory, prepared: list[tuple[Artifact, bytes]]) -> None:
    """Write prepared artifacts, contents and manifests, all in one commit."""
    from gitfactory.store.branch import Change

    if not prepared:
        return
    factory.require_tip()
    files = {}
    for artifact, data in prepared:
        files[artifact.content_path] = data
        files[artifact.path] = (json.dumps(artifact.to_record(), indent=2) + "\n").encode()
    first = prepared[0][0]
    for_task = f" for {first.task[:8]}" if first.task else ""
    size = sum(len(data) for _, data in prepared)
    what = first.name if len(prepared) == 1 else f"{len(prepared)} artifacts"
    factory.store.write(
        Change(
            files=files,
            subject=f"artifact: {what}{for_task} ({size:,} bytes)",
            trailers=[("Factory-Record", f"artifact {a.id}") for a, _ in prepared],
        )
    )


def listing(factory: Factory, task: str | None = None) -> list[Artifact]:
    """Artifacts, oldest first; of one task if ``task``."""
    factory.require_tip()
    factory.index.refresh()
    return [Artifact.from_record(r) for r in factory.index.artifacts(task)]


def resolve(factory: Factory, text: str) -> Artifact:
    """The artifact whose id starts with ``text`` (any unique prefix; failing that, a
    unique tail of 4 or more characters, as session summaries show)."""
    factory.require_tip()
    factory.index.refresh()
    wanted = ids.typed(text, "artifact", ArtifactNotFoundError)
    found = factory.index.ids_starting("artifacts", wanted)
    if not found and len(wanted) >= TAIL:
        found = factory.index.ids_ending("artifacts", wanted)
    artifact_id = ids.pick("artifact", text, found, ArtifactNotFoundError,
                           listing="`gitfactory artifact list`", tails=True,
                           describe=lambda some: _described(factory, some))  # fmt: skip
    record = factory.index.artifact(artifact_id)
    assert record is not None
    return Artifact.from_record(record)


def _described(factory: Factory, artifact_ids: Sequence[str]) -> list[str]:
    """Artifacts as an ambiguous id names them: short id and name."""
    short = factory.index.short_ids("artifacts", artifact_ids)
    names = {a: (factory.index.artifact(a) or {}).get("name", "?") for a in artifact_ids}
    return [f"{short[a]} ({names[a]})" for a in artifact_ids]


def get(factory: Factory, text: str) -> tuple[Artifact, bytes]:
    """The artifact and its content, checked against its SHA-256."""
    artifact = resolve(factory, text)
    data = factory.store.snapshot().read(artifact.content_path)
    if data is None or hashlib.sha256(data).hexdigest() != artifact.sha256:
        raise CorruptArtifactError(
            f"the content of artifact {artifact.id} ({artifact.content_path}) is missing or "
            "does not match its SHA-256",
            hint="`gitfactory status` lists invalid records; fetch the factory branch again",
        )
    return artifact, data
