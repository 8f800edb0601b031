"""The JSON Schemas of protocol/schemas, compiled once per process."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

from gitfactory.resources import protocol_file


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
def _compiled(name: str) -> Callable[[Any], Any]:
    import fastjsonschema

    validate: Callable[[Any], Any] = fastjsonschema.compile(schema(name))
    return validate


def check(name: str, obj: Any) -> Violation | None:
    """Validate ``obj`` against schema ``name``; the first violation, or None."""
    import fastjsonschema

    try:
        _compiled(name)(obj)
    except fastjsonschema.JsonSchemaValueException as exc:
        return _explain(exc)
    return None


def _explain(exc: Any) -> Violation:
    path: list[str | int] = list(exc.path[1:])
    where = ".".join(str(p) for p in path) or None
    definition = exc.definition or {}
    value = exc.value
    if exc.rule == "required" and isinstance(value, dict):
        missing = [f for f in definition.get("required", ()) if f not in value]
        field = ".".join(str(p) for p in [*path, missing[0]]) if missing else where
        return Violation(path, field, "is required")
    if exc.rule == "additionalProperties" and isinstance(value, dict):
        allowed = list(definition.get("properties", {}))
        extra = sorted(set(value) - set(allowed))
        field = ".".join(str(p) for p in [*path, extra[0]]) if extra else where
        return Violation(
            [*path, extra[0]] if extra else path,
            field,
            f"is not a known field here (known: {', '.join(allowed)})",
        )
    reason = exc.message.split(" ", 1)[1] if " " in exc.message else exc.message
    shown = json.dumps(value, ensure_ascii=False, default=str)
    if len(shown) > 80:
        shown = shown[:77] + "..."
    hint = definition.get("description")
    return Violation(path, where, f"{reason} (got {shown})" + (f"; {hint}" if hint else ""))
