"""Why another clone's factory branch was not merged: the problems found in what
came in, and the human-edited files that do not merge (:mod:`gitfactory.store.union`)."""

from __future__ import annotations

from dataclasses import dataclass

from gitfactory.errors import FactoryError

MAX_LISTED = 20  # problems named in one error (the count is exact)


@dataclass(frozen=True)
class Problem:
    path: str
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


@dataclass(frozen=True)
class Conflict:
    """An in-place file both sides changed in ways that do not merge."""

    path: str
    base: bytes | None
    ours: bytes | None
    theirs: bytes | None


class UnrelatedHistoryError(FactoryError):
    """The other factory branch shares no commit with ours: another factory."""


class IncomingRefusedError(FactoryError):
    """What came in breaks the protocol; nothing of it was merged."""

    def __init__(self, message: str, problems: list[Problem], hint: str) -> None:
        super().__init__(message, hint=hint)
        self.problems = problems

    def to_json(self) -> dict[str, object]:
        out = super().to_json()
        out["problems"] = [{"path": p.path, "reason": p.reason} for p in self.problems]
        return out


class MergeConflictError(FactoryError):
    """Human-edited files changed on both sides in ways that do not merge."""

    def __init__(self, message: str, conflicts: list[Conflict], hint: str) -> None:
        super().__init__(message, hint=hint)
        self.conflicts = conflicts

    def to_json(self) -> dict[str, object]:
        out = super().to_json()
        out["conflicts"] = [
            {
                "path": c.path,
                **{side: _text(getattr(c, side)) for side in ("base", "ours", "theirs")},
            }
            for c in self.conflicts
        ]
        return out


def refused(problems: list[Problem]) -> IncomingRefusedError:
    listed = "\n".join(f"  {p}" for p in problems[:MAX_LISTED])
    more = f"\n  ... and {len(problems) - MAX_LISTED} more" if len(problems) > MAX_LISTED else ""
    n = len(problems)
    return IncomingRefusedError(
        f"the other factory branch holds {n} file{'s' * (n != 1)} the protocol does not "
        f"allow; nothing was merged:\n{listed}{more}",
        problems,
        hint="whoever wrote them fixes the remote: a commit there that removes them, or "
        "(for a bad record, which no commit may delete) the branch moved back to the last "
        "good commit by whoever may force-push it; every clone's next sync restores the "
        "good records written since",
    )


def conflicted(conflicts: list[Conflict]) -> MergeConflictError:
    shown = [_diff(c) for c in conflicts]
    paths = " ".join(f"--resolve {c.path}=ours|theirs|FILE" for c in conflicts)
    return MergeConflictError(
        f"{len(conflicts)} human-edited file{'s' * (len(conflicts) != 1)} changed here and "
        f"on the other side in ways that do not merge; nothing was merged:\n" + "\n".join(shown),
        conflicts,
        hint=f"settle each: `gitfactory sync {paths}` (FILE: a file with the merged text)",
    )


def _diff(c: Conflict, most: int = 40) -> str:
    """How the two sides differ, as a unified diff (here -> there), at most ``most``
    lines; both whole texts are in the JSON error."""
    import difflib

    ours, theirs = _text(c.ours), _text(c.theirs)
    if ours is None or theirs is None:
        gone = "here" if ours is None else "on the other side"
        return f"{c.path}: deleted {gone}, changed on the other"
    lines = list(difflib.unified_diff(
        ours.splitlines(), theirs.splitlines(), f"{c.path} (here)", f"{c.path} (there)",
        lineterm="", n=2,
    ))  # fmt: skip
    more = (
        f"\n... {len(lines) - most} more lines (--json has both texts)" if len(lines) > most else ""
    )
    return "\n".join(lines[:most]) + more


def _text(data: bytes | None) -> str | None:
    return data.decode("utf-8", "replace") if data is not None else None
