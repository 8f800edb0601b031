"""The JSON Schemas of protocol/schemas, and the validator that applies them.

The validator implements the part of JSON Schema draft-07 that the protocol's
schemas use (listed in ``KEYWORDS``); ``tests/store/test_schemas.py`` checks that every
schema sticks to that part and that this validator agrees with the reference
implementation (``jsonschema``) on every conformance fixture and on many mutated
records. It exists because a CLI call must stay fast: importing and compiling a
general validator cost more than everything else a `log append` does but pygit2.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from typing import Any

from gitfactory.resources import protocol_file

KEYWORDS = frozenset(
    {
        "$schema", "$id", "title", "description", "type", "required", "properties",
        "additionalProperties", "pattern", "maxLength", "minLength", "enum", "items",
        "minimum", "maximum", "maxItems", "minItems",
    }
)  # fmt: skip

_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "null": (type(None),),
}


@dataclass(frozen=True)
class Violation:
    """The first way an object breaks its schema, in words a user can act on."""

    path: list[str | int]  # where in the object, e.g. ["limits", "max"]
    field: str | None  # a dotted name for messages, or None for the whole object
    reason: str


@cache
def schema(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(
        protocol_file("schemas", f"{name}.schema.json").read_text("utf-8")
    )
    return loaded


@cache
def _regex(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def check(name: str, obj: Any) -> Violation | None:
    """Validate ``obj`` against schema ``name``; the first violation, or None."""
    return _check(schema(name), obj, [])


def _is_type(value: Any, name: str) -> bool:
    if isinstance(value, bool) and name in ("integer", "number"):
        return False
    if name == "number" and isinstance(value, float):
        return True
    return isinstance(value, _TYPES[name]) and not (name == "integer" and isinstance(value, float))


def _violation(path: list[str | int], reason: str, node: dict[str, Any]) -> Violation:
    field = ".".join(str(p) for p in path) or None
    hint = node.get("description")
    return Violation(path, field, reason + (f"; {hint}" if hint else ""))


def _shown(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 80 else text[:77] + "..."


def _check(node: dict[str, Any], value: Any, path: list[str | int]) -> Violation | None:
    types = node.get("type")
    if types is not None:
        names = [types] if isinstance(types, str) else types
        if not any(_is_type(value, t) for t in names):
            return _violation(path, f"must be {' or '.join(names)} (got {_shown(value)})", node)
    if "enum" in node and value not in node["enum"]:
        choices = ", ".join(_shown(v) for v in node["enum"])
        return _violation(path, f"must be one of {choices} (got {_shown(value)})", node)
    if isinstance(value, str):
        return _check_string(node, value, path)
    if isinstance(value, dict):
        return _check_object(node, value, path)
    if isinstance(value, list):
        return _check_array(node, value, path)
    if isinstance(value, int | float) and not isinstance(value, bool):
        if "minimum" in node and value < node["minimum"]:
            return _violation(path, f"must be at least {node['minimum']} (got {value})", node)
        if "maximum" in node and value > node["maximum"]:
            return _violation(path, f"must be at most {node['maximum']} (got {value})", node)
    return None


def _check_string(node: dict[str, Any], value: str, path: list[str | int]) -> Violation | None:
    if "maxLength" in node and len(value) > node["maxLength"]:
        return _violation(path, f"must be at most {node['maxLength']} characters", node)
    if "minLength" in node and len(value) < node["minLength"]:
        return _violation(path, f"must be at least {node['minLength']} characters", node)
    if "pattern" in node and not _regex(node["pattern"]).search(value):
        return _violation(path, f"must match pattern {node['pattern']} (got {_shown(value)})", node)
    return None


def _check_object(
    node: dict[str, Any], value: dict[str, Any], path: list[str | int]
) -> Violation | None:
    props: dict[str, Any] = node.get("properties", {})
    for name in node.get("required", ()):
        if name not in value:
            return Violation([*path, name], ".".join(str(p) for p in [*path, name]), "is required")
    extra = node.get("additionalProperties", True)
    for key in sorted(value):
        if key in props:
            found = _check(props[key], value[key], [*path, key])
        elif extra is False:
            known = ", ".join(props)
            found = Violation(
                [*path, key],
                ".".join(str(p) for p in [*path, key]),
                f"is not a known field here (known: {known})",
            )
        elif isinstance(extra, dict):
            found = _check(extra, value[key], [*path, key])
        else:
            found = None
        if found is not None:
            return found
    return None


def _check_array(node: dict[str, Any], value: list[Any], path: list[str | int]) -> Violation | None:
    if "maxItems" in node and len(value) > node["maxItems"]:
        return _violation(path, f"must have at most {node['maxItems']} items", node)
    if "minItems" in node and len(value) < node["minItems"]:
        return _violation(path, f"must have at least {node['minItems']} item(s)", node)
    items = node.get("items")
    if isinstance(items, dict):
        for i, item in enumerate(value):
            found = _check(items, item, [*path, i])
            if found is not None:
                return found
    return None
