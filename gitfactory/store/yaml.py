"""The one YAML setup: round-trip loading that keeps comments, errors with line and column."""

from __future__ import annotations

from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError

from gitfactory.errors import ConfigError


def _yaml() -> YAML:
    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.indent(mapping=2, sequence=4, offset=2)
    return yaml


def load(text: str, source: str) -> Any:
    """Parse YAML text; a syntax error names ``source`` with line and column."""
    try:
        return _yaml().load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else source
        raise ConfigError(f"{where}: {exc.problem or exc.context}") from None


def location(node: Any, path: list[str | int], source: str) -> str:
    """``source:line:col`` of the deepest key of ``path`` that exists in ``node``."""
    line = col = None
    for key in path:
        if isinstance(node, CommentedMap) and key in node:
            line, col = node.lc.key(key)
        elif isinstance(node, CommentedSeq) and isinstance(key, int) and key < len(node):
            line, col = node.lc.item(key)
        else:
            break
        node = node[key]
    return f"{source}:{line + 1}:{col + 1}" if line is not None and col is not None else source
