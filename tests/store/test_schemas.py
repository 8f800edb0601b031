"""gitfactory's validator against the reference JSON Schema implementation."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from gitfactory.store import schemas

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "protocol" / "schemas"
NAMES = sorted(p.name.removesuffix(".schema.json") for p in SCHEMA_DIR.glob("*.schema.json"))

VALID_EVENT = {
    "id": "01m80b4s7wyz3ygbxxr8d61t8v", "kind": "note", "actor": "coder/ada",
    "time": "2026-11-22T00:40:20.123Z", "task": None, "text": "hi", "data": {"a": [1]},
}
ODD_VALUES: list[Any] = [
    None, True, False, 0, 1, -1, 2.5, "", "x", "NOTE", "a b", "note", "coder/ada",
    "factory:qa/bob", "01m80b4s7wyz3ygbxxr8d61t8v", "81m80b4s7wyz3ygbxxr8d61t8v",
    "2026-11-22T00:40:20Z", "2026-11-22 00:40:20", "x" * 70000, [], ["a"], {}, {"k": "v"},
    "0.1", "0.2", "0.3",
]


def _walk(node: Any) -> Any:
    """Every subschema of a schema (property names are not schemas: a property may be
    called "type")."""
    yield node
    for sub in (node.get("properties") or {}).values():
        yield from _walk(sub)
    for key in ("additionalProperties", "items"):
        if isinstance(node.get(key), dict):
            yield from _walk(node[key])


@pytest.mark.parametrize("name", NAMES)
def test_schema_is_valid_draft7_and_uses_only_supported_keywords(name: str) -> None:
    schema = schemas.schema(name)
    jsonschema.Draft7Validator.check_schema(schema)
    for node in _walk(schema):
        unsupported = set(node) - schemas.KEYWORDS
        assert not unsupported, f"{name}: unsupported keywords {unsupported}"


def _agree(name: str, obj: Any) -> None:
    reference = jsonschema.Draft7Validator(schemas.schema(name)).is_valid(obj)
    ours = schemas.check(name, obj)
    assert (ours is None) == reference, (obj, ours)


def test_event_mutations_agree_with_the_reference() -> None:
    _agree("event", VALID_EVENT)
    for field, value in itertools.product([*VALID_EVENT, "extra"], ODD_VALUES):
        _agree("event", {**VALID_EVENT, field: value})
    for field in VALID_EVENT:
        _agree("event", {k: v for k, v in VALID_EVENT.items() if k != field})
    for odd in ODD_VALUES:
        _agree("event", odd)


def test_factory_config_mutations_agree_with_the_reference() -> None:
    valid = {"protocol": "0.1", "name": "demo"}
    _agree("factory", valid)
    for field, value in itertools.product([*valid, "extra"], ODD_VALUES):
        _agree("factory", {**valid, field: value})


def test_conformance_records_agree_with_the_reference() -> None:
    root = Path(__file__).resolve().parents[2] / "protocol" / "conformance"
    files = list(root.glob("*/tree/.factory/log/**/*.json"))
    assert files
    for path in files:
        try:
            obj = json.loads(path.read_text())
        except json.JSONDecodeError:
            continue
        _agree("event", obj)


def test_violation_messages_name_the_field() -> None:
    v = schemas.check("event", {**VALID_EVENT, "kind": "Bad Kind"})
    assert v is not None and v.field == "kind" and "must match pattern" in v.reason
    v = schemas.check("event", {k: v for k, v in VALID_EVENT.items() if k != "actor"})
    assert v is not None and v.field == "actor" and v.reason == "is required"
    v = schemas.check("event", {**VALID_EVENT, "colour": 1})
    assert v is not None and v.field == "colour" and "not a known field" in v.reason
    v = schemas.check("event", {**VALID_EVENT, "data": []})
    assert v is not None and v.field == "data" and "must be object" in v.reason
