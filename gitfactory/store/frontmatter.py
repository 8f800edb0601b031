"""Markdown records with YAML front matter: the format of records people read and write.

    ---
    id: "4jrc7rv5tgdry5g26xkmvbfxsb"
    title: "Fix the parser"
    ---
    The body, in markdown.

gitfactory writes each front-matter value as JSON (YAML is a superset of JSON), so
what it writes is exact and unambiguous; people may write any YAML. The body becomes
the ``body`` field of the record.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime
from typing import Any

from gitfactory.errors import InvalidRecordError

_FENCE = "---"
# What gitfactory itself writes: one `key: <JSON>` per line. Such front matter is read
# with the json module (about 30x faster than a YAML parser); anything else goes
# through YAML, and the result is the same either way (JSON is YAML).
_JSON_LINE = re.compile(r"^([a-z_][a-z0-9_]*): (.+)$")


def parse(text: str, path: str) -> dict[str, Any]:
    lines = text.split("\n")
    if not lines or lines[0].rstrip() != _FENCE:
        raise InvalidRecordError(path, None, "must start with a '---' line (YAML front matter)")
    try:
        end = next(i for i in range(1, len(lines)) if lines[i].rstrip() == _FENCE)
    except StopIteration:
        raise InvalidRecordError(path, None, "front matter has no closing '---' line") from None
    try:
        meta = _json_lines(lines[1:end])
        if meta is None:
            meta = _yaml(lines[1:end], path)
        if not isinstance(meta, dict):
            raise InvalidRecordError(path, None, "front matter must be a mapping of fields")
        if "body" in meta:
            raise InvalidRecordError(path, "body", "the body goes after the front matter")
        record = {str(k): _plain(v) for k, v in meta.items()}
    except UNREADABLE as exc:
        # What the YAML parser's constructors raise on values they cannot build (a
        # 30th of February, a 5,000-digit number, a time past year 9999 in UTC), and
        # nesting deeper than Python recurses: anyone can commit these.
        if isinstance(exc, RecursionError):
            raise InvalidRecordError(path, None, "nested too deep to read") from None
        raise InvalidRecordError(path, None, f"front matter cannot be read ({_why(exc)})") from None
    body = "\n".join(lines[end + 1 :])
    record["body"] = body[1:] if body.startswith("\n") else body
    return record


UNREADABLE = (ValueError, OverflowError, TypeError, AttributeError, RecursionError)


def _why(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {str(exc)[:120]}"


def _json_lines(lines: list[str]) -> dict[str, Any] | None:
    """Front matter in gitfactory's own form, or None when it is any other YAML."""
    if not lines:
        return None
    meta: dict[str, Any] = {}
    for line in lines:
        match = _JSON_LINE.match(line)
        if match is None or match.group(1) in meta:
            return None
        try:
            meta[match.group(1)] = json.loads(match.group(2), parse_constant=_not_json)
        except ValueError:
            return None
    return meta


def _not_json(name: str) -> Any:
    raise ValueError(f"{name} is not JSON (and is a string in YAML)")


def _yaml(lines: list[str], path: str) -> Any:
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    from gitfactory.store import yaml

    text = "\n".join(lines)
    try:
        # Checked on the parser's events first: nothing is built from a text that
        # would expand past the limits (an alias bomb of a few hundred bytes).
        problem = yaml.limits(text, aliases=False, max_nodes=yaml.MAX_RECORD_NODES)
        if problem is not None:
            raise InvalidRecordError(path, None, f"front matter {problem}")
        return YAML(typ="safe", pure=True).load(text)
    except YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 2}" if mark is not None else ""
        raise InvalidRecordError(path, None, f"front matter is not valid YAML{where}") from None


def _plain(value: Any) -> Any:
    """YAML's own types as JSON's: a hand-written unquoted time stays a string."""
    if isinstance(value, datetime):
        value = value if value.tzinfo else value.replace(tzinfo=UTC)
        text = value.astimezone(UTC).isoformat(timespec="milliseconds")
        return text.replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


def emit(record: dict[str, Any]) -> str:
    lines = [_FENCE]
    for key, value in record.items():
        if key != "body":
            lines.append(f"{key}: {json.dumps(value, ensure_ascii=False)}")
    lines.append(_FENCE)
    body = record.get("body", "")
    return "\n".join(lines) + "\n" + (f"\n{body.rstrip()}\n" if body.strip() else "")
