"""Living documents: markdown under ``.factory/docs/`` that every agent's prompt includes.

``best-practices.md``, ``start-sequence.md`` and any other ``<name>.md`` there are
written by people (and agents) and change in place: with factory.yaml and the scenarios
they are the only files on the factory branch that do (DESIGN I2), so git versions them
like code (``git log -p factory -- .factory/docs``); :mod:`gitfactory.store.folder` reads and
writes them. ``history.md`` is different: it is generated from the ``session.summary``
records, one per finished task, so it is never edited by hand and can always be rebuilt
from them, byte for byte (:mod:`gitfactory.knowledge.sessions`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from gitfactory.errors import FactoryError, UsageError
from gitfactory.knowledge import sessions
from gitfactory.knowledge.sessions import SUMMARY
from gitfactory.plan import states
from gitfactory.store import records
from gitfactory.store.folder import Folder
from gitfactory.store.log import Event, EventQuery, clip, stamp
from gitfactory.store.records import FACTORY_DIR

if TYPE_CHECKING:
    from gitfactory.store.branch import Commit, Snapshot
    from gitfactory.store.factory import Factory

DOCS_DIR = f"{FACTORY_DIR}/docs"
HISTORY = "history"
HISTORY_PATH = f"{DOCS_DIR}/{HISTORY}.md"
FIRST = ("best-practices", "start-sequence")  # the order prompts show them in; then by name
TEMPLATES = FIRST  # laid down by `gitfactory init` from templates/docs/
MAX_BYTES = records.MAX_RECORD_BYTES  # every prompt carries them: keep them small


class DocumentNotFoundError(UsageError):
    """No document of that name on the factory branch."""


FOLDER = Folder(
    DOCS_DIR, noun="document", command="gitfactory docs", subject="docs",
    name=re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$"),
    name_hint="a document name is lowercase letters, digits, '.', '_' and '-', starting "
    "with a letter or digit, at most 64 characters (e.g. best-practices); never a path",
    max_bytes=MAX_BYTES,
    size_hint="every agent's prompt includes the documents: keep them short, "
    "and put long material in an artifact or the repository",
    missing=DocumentNotFoundError,
)  # fmt: skip


@dataclass(frozen=True)
class Document:
    name: str
    path: str
    size: int

    @property
    def generated(self) -> bool:
        return self.name == HISTORY

    def to_json(self) -> dict[str, object]:
        return {"name": self.name, "path": self.path, "size": self.size,
                "generated": self.generated}  # fmt: skip


def check_name(name: str, *, writing: bool = False) -> str:
    """The document name in ``name`` (a trailing ``.md`` is dropped), or a usage error.

    With ``writing``, ``history`` is refused too: it is generated from the records.
    """
    wanted = FOLDER.check_name(name)
    if writing and wanted == HISTORY:
        raise UsageError(
            f"{HISTORY_PATH} is generated from the session summaries; it is not edited by hand",
            hint="`gitfactory docs regenerate` rebuilds it; write what the next sessions should "
            "know into best-practices (`gitfactory docs edit best-practices`)",
        )
    return wanted


def path_of(name: str) -> str:
    return FOLDER.path_of(name)


# -- reading ----------------------------------------------------------------------------


def listing(factory: Factory) -> list[Document]:
    """The documents at the branch tip, by name (none in a factory made before them)."""
    return [
        Document(name, path_of(name), len(data)) for name, data in FOLDER.at_tip(factory).items()
    ]


def read(factory: Factory, name: str) -> bytes:
    """A document's bytes as committed."""
    return FOLDER.read(factory, name)


# -- writing ----------------------------------------------------------------------------


def write(factory: Factory, name: str, data: bytes, actor: str) -> Commit | None:
    """Commit ``data`` as the document ``name`` (created if new); None if unchanged."""
    return FOLDER.write(factory, check_name(name, writing=True), data, actor)


def initial_files() -> dict[str, bytes]:
    """The documents `gitfactory init` commits: the templates and an empty history."""
    from gitfactory.resources import template_file

    files = {path_of(n): template_file("docs", f"{n}.md").read_bytes() for n in TEMPLATES}
    files[HISTORY_PATH] = sessions.history([], 0)
    return files


# -- session summaries and the history --------------------------------------------------


def pending(factory: Factory) -> list[str]:
    """Ids of finished tasks with no session summary yet, oldest first (index only:
    the daemon asks every tick)."""
    factory.require_tip()
    factory.index.refresh()
    return states.finished_without(factory, SUMMARY)


def summarize(factory: Factory, task_id: str) -> Event | None:
    """Add the session summary of a finished task and the regenerated history, in one
    commit; None if the task already has a summary."""
    from gitfactory.plan import decisions
    from gitfactory.store.branch import Change

    made: list[Event] = []

    def build(snap: Snapshot) -> Change | None:
        made.clear()
        _index_at(factory, snap)
        if states.has_since_start(factory, task_id, SUMMARY):  # a retry gets another
            return None
        st = decisions.load(factory, task_id, history=True)
        event = stamp(sessions.summary(st, factory.index.artifacts(task_id)))
        made.append(event)
        files = {event.path: records.encode(event.to_record())}
        history = _history(factory, [event])
        if snap.read(HISTORY_PATH) != history:
            files[HISTORY_PATH] = history
        return Change(
            files, subject=f"docs: session summary of {task_id[:8]}: {clip(event.text, 60)}",
            trailers=[("Factory-Record", f"event {event.id}")],
            replace=frozenset({HISTORY_PATH}),
        )  # fmt: skip

    factory.require_tip()
    factory.store.transact(build)
    return made[0] if made else None


def catch_up(factory: Factory, limit: int | None = None) -> list[Event]:
    """Summarize the finished tasks that have no summary (at most ``limit`` of them)."""
    done = []
    for task_id in pending(factory)[:limit]:
        event = summarize(factory, task_id)
        if event is not None:
            done.append(event)
    return done


def regenerate(factory: Factory) -> Commit | None:
    """Rewrite history.md from the summary records; None if it already matches them."""
    from gitfactory.store.branch import Change

    def build(snap: Snapshot) -> Change | None:
        _index_at(factory, snap)
        history = _history(factory, [])
        if snap.read(HISTORY_PATH) == history:
            return None
        subject = f"docs: regenerate {HISTORY} from the session summaries"
        return Change({HISTORY_PATH: history}, subject, replace=frozenset({HISTORY_PATH}))

    factory.require_tip()
    return factory.store.transact(build)


def _index_at(factory: Factory, snap: Snapshot) -> None:
    if snap.tip is None:
        raise FactoryError(f"the {factory.branch} branch is gone", hint="run `gitfactory init`")
    factory.index.refresh(str(snap.tip))


def _history(factory: Factory, new: list[Event]) -> bytes:
    """history.md from the summaries the index holds, plus ``new`` ones."""
    shown = sessions.HISTORY_SESSIONS
    latest = [e for _, e in factory.index.events(EventQuery(kind=SUMMARY, limit=shown))]
    total = factory.index.event_count(SUMMARY) + len(new)
    newest = sorted([*latest, *new], key=lambda e: e.id, reverse=True)[:shown]
    return sessions.history(newest, total)


# -- prompts ----------------------------------------------------------------------------

_INTRO = (
    "The factory's living documents (.factory/docs/ on the factory branch). "
    "`gitfactory docs show NAME` prints one whole; `gitfactory docs edit NAME --file F` "
    "changes one (history is generated)."
)
_CUT = "\n\n[cut to fit the prompt; the whole document: `gitfactory docs show {name}`]"


def for_prompt(factory: Factory, budget_chars: int = 12000) -> str:
    """The documents as prompts show them (``{{documents}}``), within ``budget_chars``:
    best-practices, start-sequence, the others by name, then the newest history
    entries; a document longer than its fair share is cut, with a note saying where
    the whole text is."""
    found = FOLDER.at_tip(factory)
    order = [n for n in FIRST if n in found]
    order += sorted(n for n in found if n not in FIRST and n != HISTORY)
    texts = {n: found[n].decode("utf-8", "replace").strip() for n in order}
    if HISTORY in found:
        texts[HISTORY] = sessions.entries(found[HISTORY].decode("utf-8", "replace"))
        order.append(HISTORY)
    sections = [(n, texts[n]) for n in order if texts[n]]
    if not sections:
        return "(none yet)"
    heads = [f"### {n}\n\n" for n, _ in sections]
    room = budget_chars - len(_INTRO) - sum(len(h) + 2 for h in heads)
    shares = _fair_shares([len(t) for _, t in sections], room)
    parts = [_INTRO]
    for head, (name, text), share in zip(heads, sections, shares, strict=True):
        parts.append(head + _cut(name, text, share))
    out = "\n\n".join(parts)
    if len(out) > budget_chars:  # a budget too small for the headings themselves
        return "(the documents do not fit this prompt: `gitfactory docs list`)"[:budget_chars]
    return out


def _fair_shares(sizes: list[int], room: int) -> list[int]:
    """Split ``room`` characters max-min fairly: short texts whole, the rest share evenly."""
    shares = [0] * len(sizes)
    left = max(room, 0)
    for k, i in enumerate(sorted(range(len(sizes)), key=lambda i: sizes[i])):
        shares[i] = min(sizes[i], left // (len(sizes) - k))
        left -= shares[i]
    return shares


def _cut(name: str, text: str, share: int) -> str:
    if len(text) <= share:
        return text
    note = _CUT.format(name=name)
    head = text[: max(share - len(note), 0)]
    # Whole history entries, else whole lines, where the cut allows.
    for boundary in ("\n## ", "\n") if name == HISTORY else ("\n",):
        end = head.rfind(boundary)
        if end > 0:
            head = head[:end]
            break
    return head.rstrip() + note
