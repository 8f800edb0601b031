"""The new text of an in-place markdown file (`docs edit`, `scenario edit`): from
--file, from standard input, or from $EDITOR."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import click

from gitfactory.errors import UsageError

if TYPE_CHECKING:
    from gitfactory.store import Commit

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
    """The text after $EDITOR opened on ``current`` (``start`` for a new file), or None
    if it was left as it was."""
    try:
        before = start if current is None else current.decode("utf-8")
    except UnicodeDecodeError:
        raise UsageError(f"{name} is not UTF-8 text; replace it with --file") from None
    after = click.edit(before, extension=extension, require_save=True)
    return None if after is None or after == before else after.encode("utf-8")


def report_edit(
    name: str, path: str, data: bytes | None, commit: Commit | None, as_json: bool
) -> None:
    """Say what an edit committed (or that it committed nothing)."""
    from gitfactory import output

    if as_json:
        output.emit_json({"name": name, "path": path, "changed": commit is not None,
                          "commit": commit.oid if commit else None})  # fmt: skip
    elif commit is None:
        output.echo(f"{name} unchanged: nothing committed")
    else:
        output.echo(f"committed {path} ({len(data or b''):,} bytes) at {commit.oid[:12]}")
