"""The one YAML setup: round-trip loading that keeps comments, errors with line and
column, and limits checked on the parser's events before any object is built.

YAML lets a few hundred bytes stand for billions of nodes (an anchor holding nine
aliases of an anchor holding nine aliases, nine times over). :func:`limits` reads
only the event stream, so such a text is refused in milliseconds: records may use
no anchors or aliases at all (gitfactory never writes them), and factory.yaml may,
up to a size once they are expanded.
"""

from __future__ import annotations

import re
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.events import (
    AliasEvent,
    CollectionEndEvent,
    CollectionStartEvent,
    NodeEvent,
)

from gitfactory.errors import ConfigError

MAX_DEPTH = 64  # nested mappings and sequences
MAX_RECORD_NODES = 20_000  # scalars and collections in a record's front matter
MAX_CONFIG_NODES = 100_000  # in factory.yaml, aliases expanded


def _yaml() -> YAML:
    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.indent(mapping=2, sequence=4, offset=2)
    return yaml


def dump(doc: Any) -> str:
    """``doc`` (as :func:`load` gave it, comments and all) as YAML text again: a file
    loaded and dumped unchanged comes back byte for byte."""
    import io

    yaml = _yaml()
    yaml.width = 4096  # never fold a long line the file had on one
    out = io.StringIO()
    yaml.dump(doc, out)
    return out.getvalue()


_BRACKET = re.compile(r"[\[\]{}]")


def load(text: str, source: str) -> Any:
    """Parse YAML text (factory.yaml); a syntax error names ``source`` with line and
    column, and a text over the limits is refused before it is built."""
    try:
        problem = limits(text, aliases=True, max_nodes=MAX_CONFIG_NODES)
        if problem is not None:
            raise ConfigError(f"{source}: {problem}", hint="write the values out instead")
        return _yaml().load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else source
        raise ConfigError(f"{where}: {exc.problem or exc.context}") from None
    except (YAMLError, RecursionError) as exc:
        raise ConfigError(f"{source}: not valid YAML ({type(exc).__name__})") from None
    except (ValueError, OverflowError, TypeError, AttributeError) as exc:
        # A value the constructors cannot build: a 30th of February, !!int abc, a
        # 5,000-digit number, a tag on nothing.
        why = f"{type(exc).__name__}: {str(exc)[:120]}"
        raise ConfigError(f"{source}: a value cannot be read ({why})") from None


def limits(text: str, *, aliases: bool, max_nodes: int, max_depth: int = MAX_DEPTH) -> str | None:
    """Why ``text`` is over the limits, or None; read from parser events alone.

    Nodes are counted as they would be built: an alias counts every node of what it
    stands for (``aliases``), or is refused outright. Raises the parser's own
    YAMLError for a text that is not YAML.
    """
    # The parser looks ahead up to 1,024 characters at each flow collection it opens
    # (quadratic in their depth): a text of 2,000 brackets would take seconds before
    # the first event. Counting brackets (quoted ones too) bounds that cheaply.
    depth = deepest = 0
    for match in _BRACKET.finditer(text):
        depth = depth + 1 if match.group() in "[{" else max(depth - 1, 0)
        deepest = max(deepest, depth)
    if deepest > 4 * max_depth:
        return f"nests {deepest} brackets deep, over the limit of {max_depth} levels"
    nodes = 0
    # One frame per open collection: its anchor, its node count, its height so far.
    stack: list[list[Any]] = []
    sizes: dict[str, tuple[int, int]] = {}  # anchor -> (nodes, height)

    def add(count: int, height: int) -> None:
        if stack:
            stack[-1][1] += count
            stack[-1][2] = max(stack[-1][2], height + 1)

    for event in YAML(typ="safe", pure=True).parse(text):
        if isinstance(event, AliasEvent):
            if not aliases:
                return f"uses the YAML alias *{event.anchor}; records may use no anchors or aliases"
            count, height = sizes.get(event.anchor, (1, 0))
        elif isinstance(event, NodeEvent) and event.anchor is not None and not aliases:
            return f"uses the YAML anchor &{event.anchor}; records may use no anchors or aliases"
        elif isinstance(event, CollectionStartEvent):
            stack.append([event.anchor, 1, 0])
            if len(stack) > max_depth:
                return f"is nested deeper than {max_depth} levels"
            continue
        elif isinstance(event, CollectionEndEvent):
            anchor, count, height = stack.pop()
            if anchor is not None:
                sizes[anchor] = (count, height)
        elif isinstance(event, NodeEvent):  # a scalar
            count, height = 1, 0
            if event.anchor is not None:
                sizes[event.anchor] = (count, height)
        else:
            continue  # stream and document start and end
        nodes += count
        if nodes > max_nodes:
            return f"has more than {max_nodes:,} values (aliases expanded)"
        if len(stack) + height > max_depth:
            return f"is nested deeper than {max_depth} levels (aliases expanded)"
        add(count, height)
    return None


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
