"""The factory's own mail work: take in messages committed with plain git, quarantine
invalid ones, and escalate acknowledgements that are overdue.

Anyone who can commit may drop a message file under ``.factory/mail/`` on the
factory branch or on any branch that factory.yaml's ``watch`` names. Ingestion
validates it (path, file mode, size, schema, sender), copies a valid one onto the
factory branch byte for byte (a second sight of the same file is a no-op: the record
is already there), writes its ``mail.delivered`` receipt, and records an invalid one
as ``mail.quarantined`` with the reason, telling its sender when one can be read
from it. Content from branches is data: nothing in it is ever run.

Every pass is one compare-and-swap commit decided at the tip it lands on, so two
postmasters (two daemons, or a daemon and a user) never deliver twice.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from gitfactory.errors import InvalidRecordError
from gitfactory.mail import verify
from gitfactory.mail.messages import POSTMASTER, Message, change_for, delivery, is_remote, reaches
from gitfactory.store import clock, ids, index_mail, records
from gitfactory.store.log import Draft, Event, stamp
from gitfactory.store.records import MESSAGE

if TYPE_CHECKING:
    from gitfactory.config.factory_yaml import FactoryConfig
    from gitfactory.store.branch import Change, Snapshot
    from gitfactory.store.factory import Factory

MAIL_DIR = f"{records.FACTORY_DIR}/{MESSAGE.directory}"
_KEPT_CONTENT = 64 * 1024  # how much of a quarantined file the record keeps
OWN = "written by the factory itself"


@dataclass
class Report:
    """What one pass did."""

    delivered: list[str] = field(default_factory=list)  # message ids
    quarantined: list[dict[str, Any]] = field(default_factory=list)  # path, reason, ...
    escalated: list[str] = field(default_factory=list)  # message ids
    branches: list[str] = field(default_factory=list)  # branches looked at
    commit: str | None = None


@dataclass
class _Pass:
    """The records one pass will commit."""

    messages: list[tuple[Message, Event]] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    report: Report = field(default_factory=Report)
    refused: set[tuple[str, str]] = field(default_factory=set)  # (blob, path)
    copies: dict[str, bytes] = field(default_factory=dict)  # files taken in as they are

    def change(self, subject: str) -> Change | None:
        if not self.messages and not self.events:
            return None
        change = change_for(self.messages, subject)
        change.files.update(self.copies)
        for event in self.events:
            change.files[event.path] = records.encode(event.to_record())
            change.trailers.append(("Factory-Record", f"event {event.id}"))
        return change


def ingest(factory: Factory, branches: list[str] | None = None) -> Report:
    """Deliver what plain git committed: on the factory branch and on watched branches."""
    from gitfactory.config import factory_yaml

    factory.require_tip()
    config = factory_yaml.load(factory)
    names = branches if branches is not None else watched(factory)
    seen: dict[str, str] = {}
    delivered_up_to = [0]
    result: list[Report] = []

    def build(snap: Snapshot) -> Change | None:
        tip = str(snap.tip) if snap.tip else None
        factory.index.refresh(tip)
        index_mail.forget_if_rewound(factory.index.db, factory.store.repo, tip)
        work = _Pass()
        work.report.branches = list(names)
        delivered_up_to[0] = _from_factory_branch(factory, work, config)
        for name in names:
            tree = _from_branch(factory, snap, name, work, config)
            if tree is not None:
                seen[name] = tree
        result[:] = [work.report]
        n, q = len(work.report.delivered), len(work.report.quarantined)
        return work.change(f"mail: ingest {n} message(s), quarantine {q}")

    commit = factory.store.transact(build)
    landed = commit.oid if commit is not None and commit.paths else factory.tip()
    index_mail.mark_seen(factory.index.db, seen, landed)
    index_mail.mark_delivered(factory.index.db, delivered_up_to[0])
    report = result[0]
    report.commit = commit.oid if commit is not None and commit.paths else None
    return report


def watched(factory: Factory, names: list[str] | None = None) -> list[str]:
    """Those of ``names`` (default: every local branch) that factory.yaml's ``watch``
    names, the factory branch itself excepted."""
    from gitfactory.config import factory_yaml

    patterns = factory_yaml.load(factory).watch
    candidates = factory.store.local_branches() if names is None else names
    return [
        name
        for name in candidates
        if name != factory.branch and any(fnmatch.fnmatchcase(name, p) for p in patterns)
    ]


def _from_factory_branch(factory: Factory, work: _Pass, config: FactoryConfig) -> int:
    """Receipts for valid messages committed straight onto the factory branch, and
    quarantine records for invalid files there (they stay in history: records are
    never deleted, but the inbox will not show them). Returns how far the index was
    looked at."""
    db = factory.index.db
    pending, up_to = index_mail.undelivered(db)
    for record in pending:
        message = Message.from_record(record)
        blob = factory.index.record_blob(message.path)
        assert blob is not None  # the index has the record, so its blob
        try:
            _admit(message, message.path, config.mail.max_body)
            found = verify.for_factory_branch(factory, config, message, blob)
            vouch = _vouched(config, message.path, found)
        except InvalidRecordError as refused:
            _quarantine(work, refused, blob, factory.store.blob(blob), factory.branch, False)
            continue
        work.events.append(delivery(message, POSTMASTER, factory.branch, vouch.verified, vouch.how))
        work.report.delivered.append(message.id)
    for problem in factory.index.invalid(f"{MAIL_DIR}/"):
        blob = factory.index.record_blob(problem.path)
        if blob is None or index_mail.is_quarantined(db, blob, problem.path):
            continue
        _quarantine(work, problem, blob, _content(factory, blob), factory.branch, keep=False)
    return up_to


def _from_branch(
    factory: Factory, snap: Snapshot, branch: str, work: _Pass, config: FactoryConfig
) -> str | None:
    """Take in the new message files of one watched branch; returns its mail tree."""
    store, db = factory.store, factory.index.db
    tree = store.tree_at(f"refs/heads/{branch}", MAIL_DIR)
    if tree is None:
        return None
    old = index_mail.seen_tree(db, branch)
    old = old if old is not None and store.has_object(old) else None
    if old == tree:
        return tree
    for path, _, blob, mode in store.diff_trees(old, tree, f"{MAIL_DIR}/"):
        if blob is None or index_mail.is_quarantined(db, blob, path):
            continue
        regular = mode in (0o100644, 0o100755)
        data = store.blob(blob) if regular else b""  # a symlink's target, a submodule: none
        try:
            if not regular:
                raise InvalidRecordError(path, None, "not a regular file (symlinks are refused)")
            record = records.decode(MESSAGE, path, data)
            message = Message.from_record(record)
            on_factory = snap.read(path)
            if on_factory is None:  # on the factory branch: delivered there already
                _admit(message, path, config.mail.max_body)
            _check_place(snap, path)
            if on_factory is not None and on_factory != data:
                raise InvalidRecordError(
                    path, "id", "another message with this id is already on the factory branch"
                )
            if work.copies.get(path, data) != data:
                raise InvalidRecordError(
                    path, "id", "another message with this id came from another branch"
                )
            vouch = None
            if on_factory is None and all(m.id != message.id for m, _ in work.messages):
                found = verify.for_branch(factory, config, message, branch, path, blob)
                vouch = _vouched(config, path, found)
        except InvalidRecordError as problem:
            _quarantine(work, problem, blob, data, branch, keep=True)
            continue
        if vouch is not None:
            work.messages.append(
                (message, delivery(message, POSTMASTER, branch, vouch.verified, vouch.how))
            )
            work.copies[path] = data  # byte for byte, not as gitfactory would write it
            work.report.delivered.append(message.id)
    return tree


def _content(factory: Factory, oid: str) -> bytes:
    """A blob's bytes; nothing for what is not a blob (a submodule entry)."""
    import pygit2

    obj = factory.store.repo.get(oid)
    return obj.data if isinstance(obj, pygit2.Blob) else b""


def _vouched(config: FactoryConfig, path: str, vouch: verify.Vouch) -> verify.Vouch:
    """``vouch``, unless the factory quarantines mail nothing vouches for."""
    if not vouch.verified and config.mail.unverified == "quarantine":
        raise InvalidRecordError(path, "from", f"nothing vouches for the sender: {vouch.how}")
    return vouch


def _check_place(snap: Snapshot, path: str) -> None:
    """The message can be written at ``path`` on the factory branch: no folder is
    there, and no file stands where one of its folders must be."""
    import pygit2

    parts = path.split("/")
    for n in range(1, len(parts) + 1):
        entry = snap.entry("/".join(parts[:n]))
        if entry is None:
            return
        last = n == len(parts)
        if last and entry.type == pygit2.GIT_OBJECT_TREE:
            raise InvalidRecordError(path, None, "a folder is at this path on the factory branch")
        if not last and entry.type != pygit2.GIT_OBJECT_TREE:
            where = "/".join(parts[:n])
            raise InvalidRecordError(path, None, f"a file is at {where}, where its folder must be")


def _admit(message: Message, path: str, max_body: int) -> Message:
    """Rules a schema cannot say, for a message that did not come through `mail send`."""
    if is_remote(message.sender):
        raise InvalidRecordError(
            path, "from", "a message from another factory only arrives through a peer"
        )
    body = len(message.body.encode("utf-8"))
    if body > max_body:
        raise InvalidRecordError(
            path, "body", f"the body is {body:,} bytes, over this factory's limit of {max_body:,}"
        )
    return message


def _quarantine(
    work: _Pass, problem: InvalidRecordError, blob: str, data: bytes, branch: str, keep: bool
) -> None:
    """Record why a file was refused, keep its content if it would otherwise be lost,
    and tell its sender."""
    if (blob, problem.path) in work.refused:
        return  # the same file on two branches: one record
    work.refused.add((blob, problem.path))
    sender = _sender_of(problem.path, data)
    info: dict[str, Any] = {
        "path": problem.path, "blob": blob, "branch": branch, "field": problem.field,
        "reason": problem.reason, "from": sender,
    }  # fmt: skip
    if keep:
        info["content"] = data[:_KEPT_CONTENT].decode("utf-8", "replace")
        info["truncated"] = len(data) > _KEPT_CONTENT
    else:
        # The refused file is on the factory branch for good (records are never
        # deleted): naming its id here keeps it out of every inbox. A file from any
        # other branch never names one, or it could hide a real message.
        name = problem.path.rsplit("/", 1)[-1].removesuffix(".md")
        info["message"] = name if ids.is_id(name) else None
    event = stamp(
        Draft(kind="mail.quarantined", actor=POSTMASTER, text=str(problem), data=info)
    )  # fmt: skip
    work.events.append(event)
    work.report.quarantined.append(
        {k: info[k] for k in ("path", "branch", "field", "reason", "from")}
    )
    if sender is not None and not is_remote(sender):
        notice = _notice(
            to=sender,
            subject=f"Undeliverable: {problem.path.rsplit('/', 1)[-1]}",
            body=f"Your message file `{problem.path}` on branch `{branch}` was not delivered:\n\n"
            f"    {problem}\n\nFix it and commit it again under a new id. The quarantine "
            f"record is event {event.id} (`gitfactory log --kind mail.quarantined`).",
        )
        work.messages.append((notice, delivery(notice, POSTMASTER, "postmaster", True, OWN)))


def _sender_of(path: str, data: bytes) -> str | None:
    """The ``from`` address of a file that failed validation, if one can be read."""
    from gitfactory.store import actors, frontmatter

    try:
        record = frontmatter.parse(data.decode("utf-8"), path)
        return actors.check(str(record.get("from")), "from")
    except Exception:  # anything at all wrong with it: there is no one to tell
        return None


def _notice(*, to: str, subject: str, body: str, **extra: Any) -> Message:
    now = clock.now_ms()
    return Message(
        id=ids.new_id(now), sender=POSTMASTER, to=(to,), subject=subject[:200],
        created=clock.format_time(now), body=body, **extra,
    )  # fmt: skip


# -- escalation ----------------------------------------------------------------------------


def escalate(factory: Factory) -> Report:
    """Escalate ack_required messages not acknowledged within mail.ack_timeout: a
    ``mail.escalated`` record and a message to the sender, once per message."""
    from gitfactory.config import factory_yaml

    factory.require_tip()
    timeout = factory_yaml.load(factory).mail.ack_timeout_ms
    result: list[Report] = []

    def build(snap: Snapshot) -> Change | None:
        tip = str(snap.tip) if snap.tip else None
        factory.index.refresh(tip)
        index_mail.forget_if_rewound(factory.index.db, factory.store.repo, tip)
        work = _Pass()
        now = clock.now_ms()
        for record, acked in index_mail.overdue(factory.index.db, now - timeout):
            message = Message.from_record(record)
            missing = [
                a for a in message.to
                if not is_remote(a) and not any(reaches(a, who) for who in acked)
            ]  # fmt: skip
            if missing:
                _escalation(work, message, missing, timeout)
        result[:] = [work.report]
        return work.change(f"mail: escalate {len(work.report.escalated)} unacknowledged")

    commit = factory.store.transact(build)
    report = result[0]
    report.commit = commit.oid if commit is not None and commit.paths else None
    return report


def _escalation(work: _Pass, message: Message, missing: list[str], timeout_ms: int) -> None:
    minutes = timeout_ms // 60_000
    event = stamp(
        Draft(kind="mail.escalated", actor=POSTMASTER, task=message.task,
              text=f"{message.subject}: no acknowledgement from {', '.join(missing)}",
              data={"message": message.id, "unacked": missing, "timeout_ms": timeout_ms})
    )  # fmt: skip
    work.events.append(event)
    work.report.escalated.append(message.id)
    notice = _notice(
        to=message.sender,
        subject=f"Not acknowledged: {message.subject}",
        body=f"Your message {message.id} asked for an acknowledgement. After "
        f"{minutes} minute(s) these recipients have not acknowledged it:\n\n"
        + "".join(f"- {a}\n" for a in missing),
        thread=message.thread_name,
        reply_to=message.id,
        task=message.task,
        priority="high",
    )
    work.messages.append((notice, delivery(notice, POSTMASTER, "postmaster", True, OWN)))
