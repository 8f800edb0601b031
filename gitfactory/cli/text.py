"""The new text of an in-place markdown file (`docs edit`, `scenario edit`): from
--file, from standard input, or from $EDITOR."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import click

from gitfactory.errors import FactoryError, UsageError

if TYPE_CHECKING:
    from gitfactory.store.branch import Commit
    from gitfactory.store.factory import Factory

F = TypeVar("F", bound=Callable[..., object])


def file_option(f: F) -> F:
    """``--file F`` (``-``: standard input)."""
    option = click.option(
        "--file", "source", type=click.Path(dir_okay=False, allow_dash=True, path_type=Path),
        help="Take the new text from this file ('-': standard input) instead of $EDITOR.",
    )  # fmt: skip
    return option(f)


def read_source(source: Path) -> bytes:
    """The bytes of ``source`` (``-``: standard input), or a usage error."""
    if str(source) == "-":
        return sys.stdin.buffer.read()
    try:
        return source.read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read {source}: {exc.strerror}") from None


def edited(name: str, current: bytes | None, start: str, extension: str = ".md") -> bytes | None:
    """The bytes after $EDITOR opened on ``current`` (``start`` for a new file), or
    None if they were left as they were. Bytes in and out: the file's line endings,
    final newline and encoding are the user's, and saving it unchanged changes
    nothing (text mode would add a newline and drop CRs)."""
    before = start.encode("utf-8") if current is None else current
    after = click.edit(before, extension=extension, require_save=True)
    if after is None:
        return None
    data = bytes(after) if not isinstance(after, str) else after.encode("utf-8")
    return None if data == before else data


@contextmanager
def keeping(factory: Factory, filename: str, data: bytes, from_editor: bool) -> Iterator[None]:
    """Commit inside this block; if that fails and the text came from $EDITOR (so it
    exists nowhere else), keep it in .git/gitfactory/FILENAME.draft and say where."""
    try:
        yield
    except FactoryError as exc:
        if from_editor:
            draft = factory.paths.factory_dir / f"{filename}.draft"
            draft.write_bytes(data)
            kept = f"your text is kept in {draft}: fix it, then run this again with --file {draft}"
            exc.hint = f"{exc.hint}; {kept}" if exc.hint else kept
        raise


def report_edit(
    name: str, path: str, data: bytes | None, commit: Commit | None, as_json: bool
) -> None:
    """Say what an edit committed (or that it committed nothing)."""
    from gitfactory.cli import output

    if as_json:
        output.emit_json({"name": name, "path": path, "changed": commit is not None,
                          "commit": commit.oid if commit else None})  # fmt: skip
    elif commit is None:
        output.echo(f"{name} unchanged: nothing committed")
    else:
        output.echo(f"committed {path} ({len(data or b''):,} bytes) at {commit.oid[:12]}")
