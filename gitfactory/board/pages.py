"""The templates every page is made from (Jinja2, autoescaped: a task titled
``<script>`` shows as text), for the live board and the one-file HTML report."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import jinja2
import markupsafe

HERE = Path(__file__).parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"
# The files /static/ serves: exactly these, nothing found by a path.
ASSETS = {"board.css": "text/css; charset=utf-8", "board.js": "text/javascript; charset=utf-8"}
_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")
# Control characters, and the bidirectional overrides that make "gnp.exe" read "exe.png".
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u202a-\u202e\u2066-\u2069]")


@cache
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        autoescape=True,  # every template, whatever its name
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        finalize=_printable,  # what agents wrote: no control characters in any page
    )
    env.filters.update(
        when=when, ago=ago, duration=duration, seconds=seconds, clean=clean, diff_class=diff_class
    )
    return env


def _printable(value: Any) -> Any:
    if isinstance(value, markupsafe.Markup):  # ours, already safe: keep it so
        return markupsafe.Markup(_CONTROL.sub("", value))
    return _CONTROL.sub("", value) if isinstance(value, str) else value


def render(name: str, links: Links, **context: Any) -> str:
    return environment().get_template(name).render(links=links, b=links.base, **context)


class Links:
    """Where a page's links go: the live board's routes (under its ``base`` path), or
    anchors within a report."""

    def __init__(self, report: bool = False, base: str = "") -> None:
        self.report = report
        self.base = base

    def task(self, task_id: str) -> str:
        return f"#task-{task_id}" if self.report else f"{self.base}/tasks/{task_id}"

    def artifact(self, artifact_id: str) -> str:
        return f"#artifact-{artifact_id}" if self.report else f"{self.base}/artifacts/{artifact_id}"

    def page(self, name: str) -> str:
        if self.report:
            return f"#{name}"
        return f"{self.base}/" if name == "board" else f"{self.base}/{name}"


def asset(name: str) -> str:
    return (STATIC / name).read_text(encoding="utf-8")


def when(rfc3339: str | None) -> str:
    """A record time in the reader's local zone, to the second."""
    if not rfc3339:
        return ""
    try:
        dt = datetime.fromisoformat(str(rfc3339).replace("Z", "+00:00"))
    except ValueError:
        return str(rfc3339)
    return dt.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def ago(rfc3339: str | None, now: datetime | None = None) -> str:
    if not rfc3339:
        return ""
    try:
        dt = datetime.fromisoformat(str(rfc3339).replace("Z", "+00:00"))
    except ValueError:
        return ""
    return seconds(((now or datetime.now(UTC)) - dt).total_seconds()) + " ago"


def seconds(value: float | int | None) -> str:
    if value is None:
        return ""
    s = max(0, int(value))
    if s < 120:
        return f"{s}s"
    if s < 7200:
        return f"{s // 60}m {s % 60:02d}s"
    return f"{s // 3600}h {s % 3600 // 60:02d}m"


def duration(ms: int | None) -> str:
    if ms is None:
        return ""
    return f"{ms / 1000:.1f}s" if ms < 120_000 else seconds(ms / 1000)


def clean(text: str) -> str:
    """A transcript as text: terminal colour codes and control characters removed."""
    return _CONTROL.sub("", _ANSI.sub("", text))


def diff_class(line: str) -> str:
    if line.startswith(("+++", "---", "diff --git", "index ")):
        return "meta"
    if line.startswith("@@"):
        return "hunk"
    if line.startswith("+"):
        return "add"
    if line.startswith("-"):
        return "del"
    return ""


def is_diff(name: str, text: str) -> bool:
    return name.endswith((".diff", ".patch")) or text.startswith(("diff --git", "--- a/"))
