"""One exception hierarchy; every failure a user can meet says what to do next.

Exit codes are part of the CLI contract (documented in README.md and protocol/SPEC.md):

====  ==========================================================================
0     success
1     the operation was refused (a conflict the caller must look at)
2     usage: bad arguments or input, not a git repository, factory not initialised
3     reserved for "no work" (``gitfactory next``), never used for an error
4     the factory holds invalid records (each one is named with file, field, reason);
      for ``daemon --burst``: it stopped with work left that blockers hold back
      (each one is printed with its fix)
5     busy: the write lock or the branch stayed contended past the retry budget
6     the sync remote could not be reached: nothing was exchanged; a claim made
      then is tentative (it counts once the remote has it)
70    internal error (a bug): the traceback is written to a crash log
130   interrupted (Ctrl-C)
====  ==========================================================================
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_NO_WORK = 3
EXIT_INTERNAL = 70
EXIT_INTERRUPTED = 130


class FactoryError(Exception):
    """Base of every error gitfactory reports on purpose."""

    exit_code = 1

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {
            "error": type(self).__name__,
            "message": self.message,
            "exit_code": self.exit_code,
        }
        if self.hint:
            out["hint"] = self.hint
        return out


class UsageError(FactoryError):
    """The command line or its input is wrong; nothing was written."""

    exit_code = 2


class NotARepositoryError(UsageError):
    pass


class NotInitializedError(UsageError):
    pass


class ConfigError(UsageError):
    """factory.yaml cannot be used; the message names file, line and column."""


class InvalidRecordError(FactoryError):
    """A record failed validation: names the file, the field and the reason."""

    exit_code = 4

    def __init__(self, path: str, field: str | None, reason: str) -> None:
        where = f"field '{field}': " if field else ""
        super().__init__(
            f"{path}: {where}{reason}",
            hint="records are described in protocol/SPEC.md; "
            "`gitfactory status` lists every invalid record",
        )
        self.path = path
        self.field = field
        self.reason = reason

    def to_json(self) -> dict[str, object]:
        out = super().to_json()
        out.update(path=self.path, field=self.field, reason=self.reason)
        return out


class RecordConflictError(FactoryError):
    """A write would change an immutable record that already exists."""


class BusyError(FactoryError):
    """The write lock or the branch stayed contended past the retry budget."""

    exit_code = 5


class NoWorkError(FactoryError):
    """Not an error: nothing is ready for this agent now (`gitfactory next` exits 3)."""

    exit_code = 3


class GitCommandError(FactoryError):
    """A git command failed; the message shows command, exit code and stderr."""


class RemoteUnreachableError(FactoryError):
    """The sync remote could not be reached (or refused to talk): nothing was exchanged."""

    exit_code = 6
