"""How `gitfactory log` prints events: one line each, their data summarised (or, with
--full, every line of the text and every data field)."""

from __future__ import annotations

import json
import shutil
import sys
from typing import Any

from gitfactory.cli import output
from gitfactory.store.log import Event

WIDTH = 160  # a line's bound when the terminal's width is unknown (a pipe)
NARROWEST = 80  # never cut to less than this, however narrow the terminal
VALUE = 60  # the most one data value shows of itself on the compact line
TEXT = 120  # the least of an event's text a compact line shows
DATA = 20  # less room than this for the data: only "…" says there is more


def width() -> int:
    """How long a compact line may be: the terminal's width, else ``WIDTH``."""
    return max(NARROWEST, shutil.get_terminal_size((WIDTH, 24)).columns)


def show(event: Event, short: dict[str, str], full: bool = False) -> None:
    """Print one event for a human (``short``: the short ids of the tasks)."""
    task = f" [{short.get(event.task, event.task)}]" if event.task else ""
    head = f"{output.local_time(event.time)}  {event.kind:<17} {event.actor:<20}{task}"
    lines = event.text.splitlines() or [""]
    if full:
        output.echo(f"{head} {lines[0]}".rstrip())
        for line in lines[1:]:
            output.echo(f"{'':>20}{line}")
        for key, value in event.data.items():
            output.echo(f"{'':>20}{key}: {_value(value)}")
    else:
        # The text is what a person wrote: it keeps TEXT characters however narrow the
        # terminal; the data gets what room is left (all of it: --full).
        text = lines[0] + (" …" if len(lines) > 1 else "")
        line = f"{head} {clip(text, max(TEXT, width() - len(head) - 1))}".rstrip()
        if event.data:
            room = width() - len(line) - 2
            line += "  " + (clip(summary(event.data), room) if room >= DATA else "…")
        output.echo(line)
    sys.stdout.flush()


def summary(data: dict[str, Any]) -> str:
    """``key=value`` pairs, each value cut to :data:`VALUE` characters; a value with
    blanks in double quotes."""
    pairs = []
    for key, value in data.items():
        text = clip(_value(value), VALUE)
        if not text or any(c.isspace() for c in text):
            text = f'"{text}"'
        pairs.append(f"{key}={text}")
    return " ".join(pairs)


def clip(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters at a word boundary, with an ellipsis."""
    text = " ".join(text.split("\n"))
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    blank = cut.rfind(" ")
    if blank > limit // 2:  # a word boundary not too far back
        cut = cut[:blank]
    return cut.rstrip() + "…"


def _value(value: Any) -> str:
    """A data value as text: a string as it is, anything else as compact JSON."""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
