"""Everything the CLI prints goes through here: human text, JSON, warnings, errors."""

from __future__ import annotations

import json
import re
import sys
from datetime import datetime
from typing import Any

from gitfactory.errors import FactoryError, NoWorkError

# C0 controls except tab and newline, DEL, and C1 controls: an agent's text must not
# be able to move the cursor, recolour or retitle the reader's terminal.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def sanitize(text: str) -> str:
    """Controls and bidirectional overrides shown as escapes (\\x1b, \\u202e)."""
    return _CONTROL.sub(lambda m: _escaped(m.group()), text)


def _escaped(char: str) -> str:
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def counted(n: int, noun: str, nouns: str | None = None) -> str:
    """``1 message``, ``2 messages`` (``nouns``: an irregular plural)."""
    return f"{n} {noun if n == 1 else nouns or noun + 's'}"


def echo(text: str = "") -> None:
    sys.stdout.write(sanitize(text) + "\n")


def progress(text: str) -> None:
    """Progress for humans on stderr, so that stdout stays clean for --json."""
    sys.stderr.write(sanitize(text) + "\n")


class Ticker:
    """Progress of a long operation on a terminal's stderr: nothing for the first
    second (most operations are done by then), then a counter that updates in place;
    nothing at all in a pipe. Call it with the count so far; :meth:`done` clears it."""

    def __init__(self, label: str, unit: str) -> None:
        import os
        import time

        # GITFACTORY_PROGRESS_AFTER: seconds before it shows (tests show it at once).
        self.delay = float(os.environ.get("GITFACTORY_PROGRESS_AFTER") or 1.0)
        self.label, self.unit = label, unit
        self.started = time.monotonic()
        self.shown = False
        self.live = sys.stderr.isatty()

    def __call__(self, count: int) -> None:
        import time

        elapsed = time.monotonic() - self.started
        if not self.live or elapsed < self.delay:
            return
        self.shown = True
        sys.stderr.write(f"\r{self.label}: {count:,} {self.unit} ({count / elapsed:,.0f}/s)\x1b[K")
        sys.stderr.flush()

    def done(self) -> None:
        if self.shown:
            sys.stderr.write("\r\x1b[K")
            sys.stderr.flush()
            self.shown = False


class Waiting:
    """A line on a terminal's stderr that says an operation of unknown length is
    still at work (and for how long), from its second second; nothing in a pipe.
    Use as a context manager around the operation."""

    def __init__(self, label: str) -> None:
        import threading

        self.ticker = Ticker(label, "")
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Waiting:
        if self.ticker.live:
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        if self._thread.is_alive():
            self._thread.join(2)
        self.ticker.done()

    def _run(self) -> None:
        import time

        while True:
            elapsed = time.monotonic() - self.ticker.started
            if elapsed >= self.ticker.delay:
                self.ticker.shown = True
                sys.stderr.write(f"\r{self.ticker.label}... {elapsed:.0f}s\x1b[K")
                sys.stderr.flush()
            if self._done.wait(0.5):
                return


def emit_json(value: Any, *, lines: bool = False) -> None:
    """JSON for scripts: indented on a terminal, compact in a pipe, one line per object
    for streams. (Indenting makes Python's encoder ~10x slower: 10,000 tasks take 0.6 s.)
    """
    if lines or not sys.stdout.isatty():
        sys.stdout.write(json.dumps(value, ensure_ascii=False, separators=(",", ":")) + "\n")
    else:
        sys.stdout.write(json.dumps(value, ensure_ascii=False, indent=2) + "\n")
    sys.stdout.flush()


def emit_json_texts(texts: list[str]) -> None:
    """A JSON array of values that are already JSON text (no decode, no re-encode)."""
    if sys.stdout.isatty():
        emit_json([json.loads(t) for t in texts])
        return
    sys.stdout.write("[" + ",".join(texts) + "]\n")
    sys.stdout.flush()


def error(exc: FactoryError, as_json: bool) -> None:
    if as_json:
        sys.stderr.write(json.dumps(exc.to_json(), ensure_ascii=False) + "\n")
        return
    # "No work" (exit 3) is an answer, not a failure: it is said plainly.
    said = exc.message if isinstance(exc, NoWorkError) else f"error: {exc.message}"
    sys.stderr.write(f"{sanitize(said)}\n")
    if exc.hint:
        sys.stderr.write(f"hint: {sanitize(exc.hint)}\n")


def local_time(rfc3339: str) -> str:
    """A record time shown in the reader's local zone, to the second."""
    dt = datetime.fromisoformat(rfc3339.replace("Z", "+00:00"))
    return dt.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def local_time_ms(ms: int) -> str:
    """A time in milliseconds since the epoch, in the reader's local zone."""
    from gitfactory.store import clock

    return local_time(clock.format_time(ms))
