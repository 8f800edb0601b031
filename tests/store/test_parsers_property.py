"""Every parser of text that anyone with push access (or a pipe) can hand gitfactory,
fed generated input: it parses it or refuses it with a FactoryError that says why.

No other exception (a crash with exit 70 and a traceback for the user), no hang, and
no few-hundred-byte file that builds gigabytes. Inputs: arbitrary bytes and text,
hostile YAML (alias bombs, deep nesting, huge scalars, python tags, merge keys,
impossible timestamps), hostile JSON (deep nesting, huge numbers, NaN, lone
surrogates, duplicate keys), front matter with and without its closing fence, and
valid records with random bytes spliced in. Hypothesis is derandomized, so a run in CI
tries the same inputs every time; the explicit examples are the cases found so far.
"""

from __future__ import annotations

import json
import time
import tracemalloc
from collections.abc import Callable
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from ruamel.yaml.error import YAMLError

from gitfactory.config import factory_yaml
from gitfactory.errors import FactoryError
from gitfactory.store import frontmatter, log, records, schemas, yaml
from gitfactory.store.records import ARTIFACT, EVENT, MESSAGE, TASK, RecordKind

T = TypeVar("T")
pytestmark = [
    # ruamel warns (and goes on) when an anchor is defined twice; hostile input does that.
    pytest.mark.filterwarnings("ignore::ruamel.yaml.error.ReusedAnchorWarning"),
    # The strategies hold long literal inputs, which make their reprs long.
    pytest.mark.filterwarnings("ignore:Generating overly large repr"),
]
KiB = 1024
MiB = 1024 * KiB
TIME_LIMIT_S = 1.0  # CPU seconds per parse, with tracemalloc on (which slows YAML ~2x)
SMALL_INPUT = 64 * KiB
SMALL_PEAK = 64 * MiB  # what an input of at most SMALL_INPUT may allocate at peak
ANY_PEAK = 200 * MiB

PROPERTY = settings(
    max_examples=150,
    deadline=None,  # time is checked per parse by bounded(), with tracemalloc's cost in it
    derandomize=True,
    database=None,  # no example database: every run is the same
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def bounded(
    parse: Callable[[], T], size: int, allowed: tuple[type[BaseException], ...] = (FactoryError,)
) -> tuple[T | None, BaseException | None]:
    """Run one parse: its result, or the refusal it raised when that is of an
    ``allowed`` type. Any other exception propagates (the test fails with the
    parser's own traceback); so does a parse over the CPU time or memory bound. A
    slow parse is timed once more (a busy machine's caches slow even CPU time)."""
    outcome, elapsed, grown = _measured(parse, allowed)
    if elapsed >= TIME_LIMIT_S:
        outcome, again, grown = _measured(parse, allowed)
        elapsed = min(elapsed, again)
    assert elapsed < TIME_LIMIT_S, f"took {elapsed:.2f}s on {size:,} bytes"
    limit = SMALL_PEAK if size <= SMALL_INPUT else ANY_PEAK
    assert grown < limit, f"allocated {grown / MiB:.0f} MiB at peak on {size:,} bytes"
    result, refused = outcome
    if isinstance(refused, FactoryError):
        assert refused.message.strip(), "a refusal says why"
    return result, refused


def _measured(
    parse: Callable[[], T], allowed: tuple[type[BaseException], ...]
) -> tuple[tuple[T | None, BaseException | None], float, int]:
    """(result, refusal), seconds taken, and bytes allocated at peak."""
    tracing = tracemalloc.is_tracing()
    if not tracing:
        tracemalloc.start()
    tracemalloc.reset_peak()
    before, _ = tracemalloc.get_traced_memory()
    result: T | None = None
    refused: BaseException | None = None
    # CPU time of this thread: other processes on a loaded machine do not count.
    start = time.thread_time()
    try:
        result = parse()
    except allowed as exc:
        refused = exc
    finally:
        elapsed = time.thread_time() - start
        _, peak = tracemalloc.get_traced_memory()
        if not tracing:
            tracemalloc.stop()
    return (result, refused), elapsed, peak - before


# -- valid records as gitfactory writes them, and as people write them ------------------

EVENT_SEED: dict[str, Any] = {
    "id": "01m8a00000aaaaaaaaaaaaaaaa", "kind": "task.created", "actor": "planner/p1",
    "time": "2026-11-22T10:00:00.000Z", "task": "01m89zzzzz0000000000000000",
    "text": "Fix the parser", "data": {"priority": 2, "labels": ["bug"], "nested": {"ok": True}},
}  # fmt: skip
TASK_SEED: dict[str, Any] = {
    "id": "1aaaaaaaaaaaaaaaaaaaaaaaaa", "title": "Fix the parser", "priority": 2,
    "labels": ["bug"], "depends_on": ["3ccccccccccccccccccccccccc"], "requester": "human/ada",
    "created": "2026-11-22T09:00:00.000Z", "body": "Steps to reproduce.\n",
}  # fmt: skip
MESSAGE_SEED: dict[str, Any] = {
    "id": "01m81bqv60a300000000000000", "from": "coder/ada", "to": ["human/lead"],
    "subject": "Re: Please fix the parser", "thread": "01m81b5h80a100000000000000",
    "reply_to": "01m81b5h80a100000000000000", "created": "2026-11-22T10:10:00.000Z",
    "body": "On it.\n",
}  # fmt: skip
ARTIFACT_SEED: dict[str, Any] = {
    "id": "01m8a00000aaaaaaaaaaaaaaab", "task": "1aaaaaaaaaaaaaaaaaaaaaaaaa", "name": "report.txt",
    "media_type": "text/plain", "size": 5, "sha256": "0" * 64, "blob": "0" * 40,
    "producer": "coder/ada", "step": None, "created": "2026-11-22T10:00:00.000Z",
}  # fmt: skip
SEEDS: dict[str, dict[str, Any]] = {
    "event": EVENT_SEED, "task": TASK_SEED, "message": MESSAGE_SEED, "artifact": ARTIFACT_SEED,
}  # fmt: skip
KINDS = (EVENT, TASK, MESSAGE, ARTIFACT)
# The same records in the YAML people write by hand (block lists, unquoted times).
HAND_WRITTEN = {
    "task": "---\nid: 1aaaaaaaaaaaaaaaaaaaaaaaaa\ntitle: Fix the parser  # soon\n"
    "requester: human/ada\ncreated: 2026-11-22T09:00:00Z\nlabels:\n  - bug\n"
    "depends_on: []\npriority: 2\n---\n\nSteps to reproduce.\n",
    "message": "---\nid: '01m81bqv60a300000000000000'\nfrom: coder/ada\nto:\n  - human/lead\n"
    "subject: >-\n  Re: Please fix\n  the parser\ncreated: 2026-11-22 10:10:00\n---\nOn it.\n",
}


def seed_files(kind: RecordKind) -> list[bytes]:
    """Valid files of ``kind``: as gitfactory encodes them, and as people write them."""
    files = [records.encode(SEEDS[kind.name], kind)]
    if kind.name in HAND_WRITTEN:
        files.append(HAND_WRITTEN[kind.name].encode())
    return files


def config_seeds() -> list[bytes]:
    return [
        factory_yaml.render("test"),
        b'# conformance fixture\nprotocol: "0.1"\nname: conformance\n',
        b'protocol: "0.3"\nname: test\nworkflows:\n  default:\n    start: implement\n'
        b"    steps:\n      implement: &coding {role: coder, timeout: 10m}\n"
        b"      again: *coding\n",
    ]


# -- hostile YAML ------------------------------------------------------------------------


def alias_bomb(levels: int = 9, fan: int = 9, key: str = "a") -> str:
    """``levels`` anchors, each a list of ``fan`` aliases of the one before: fan**levels
    values once built, from a few hundred bytes."""
    first = f"{key}0: &{key}0 [{', '.join(['x'] * fan)}]"
    rest = [
        f"{key}{i}: &{key}{i} [{', '.join([f'*{key}{i - 1}'] * fan)}]" for i in range(1, levels)
    ]
    return "\n".join([first, *rest])


BOMB = alias_bomb()  # 9**9 values, about 500 bytes
MERGE_BOMB = "a0: &a0 {x: 1, y: 2}\n" + "\n".join(
    f"a{i}: &a{i} {{<<: [{', '.join([f'*a{i - 1}'] * 9)}], k{i}: {i}}}" for i in range(1, 9)
)
DEEP_FLOW = "deep: " + "[" * 200 + "]" * 200
DEEP_BLOCK = "\n".join(" " * i + f"k{i}:" for i in range(120)) + " x"

HOSTILE_SCALARS = [
    "~", "null", "Null", "NULL", "", "yes", "no", "on", "off", "y", "n", ".nan", ".NaN", ".inf",
    "-.inf", "+.inf", "0x1f", "0o17", "017", "0b101", "1_000", "1:20", "190:20:30", "+12",
    "1e400", "-1e400", "1e-400", "6.8523015e+5", "0.", "-0",
    "!!python/object:os.system {}", "!!python/object/apply:os.system [echo hi]",
    "!!python/name:os.system", "!!python/module:os", "!!python/tuple [1, 2]",
    "!<tag:yaml.org,2002:python/object/apply:os.system> [ls]",
    "!!binary aGVsbG8=", "!!binary '!!!'", "!!set {a, b}", "!!omap [a: 1, a: 2]",
    "!!pairs [a: 1]", "!!int abc", "!!int 0xzz", "!!float abc", "!!bool maybe", "!!null x",
    "!!timestamp 2026-13-01", "!!timestamp nope", "!!str 1", "!!seq {}", "!!map []",
    "!custom x", "!!merge x", "!!value x", "!!yaml x", "&a x", "*a", "*undefined",
    "'unterminated", '"unterminated', '"\\x00"', '"\\ud800"', '"\\U0010FFFF"', '"\\N"',
    "'it''s'", "| \n  block\n", ">-\n  folded\n", "|9\n x", "? a", "<<: x", "{<<: [1]}",
    "[*a]", "{*a : 1}", "@reserved", "`reserved", "%", "- -", "-", "{a: [b, {c: d}]}",
    "[a, b", "{a: 1", "]", "}", ",", "#", "a #b", "a: b: c", "\t", "\ufeff", "\x85", "\u2028",
]  # fmt: skip
DATES = st.builds(
    lambda y, mo, d: f"{y:04d}-{mo:02d}-{d:02d}",
    st.one_of(st.sampled_from([0, 1, 1969, 1970, 2024, 2026, 9999]), st.integers(0, 9999)),
    st.integers(0, 13),
    st.integers(0, 32),
)
TIMESTAMPS = st.one_of(
    DATES,
    st.builds(
        lambda date, sep, h, mi, s, frac, tz: f"{date}{sep}{h:02d}:{mi:02d}:{s:02d}{frac}{tz}",
        DATES,
        st.sampled_from(["T", "t", " ", "  "]),
        st.integers(0, 25),
        st.integers(0, 60),
        st.integers(0, 61),
        st.sampled_from(["", ".0", ".123", ".123456789012"]),
        st.sampled_from(
            ["", "Z", "z", "+00:00", "+01:00", "-05:00", "+14:00", "-23:59", "+24:00", " +1", " -5"]
        ),
    ),
)
NUMBERS = st.one_of(
    st.integers().map(str),
    st.integers(4000, 6000).map(lambda n: "9" * n),  # past Python's int-from-text limit
    st.integers(4000, 6000).map(lambda n: "0x" + "f" * n),
    st.floats().map(repr),
)
PLAIN = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\n\r"), max_size=20)
YAML_SCALARS = st.one_of(
    st.sampled_from(HOSTILE_SCALARS),
    TIMESTAMPS,
    NUMBERS,
    PLAIN,
    st.builds(json.dumps, st.text(max_size=20), ensure_ascii=st.booleans()),
    # Huge scalars: kept to a few KiB, because the pure-Python YAML scanner reads about
    # 10 KiB a second under tracemalloc on a slow machine.
    st.integers(1, 4 * KiB).map(lambda n: "x" * n),
)
YAML_KEYS = st.one_of(
    st.sampled_from(
        ["id", "title", "created", "from", "to", "body", "labels", "priority", "<<", "? a", "a",
         "a", "x", "'id'", '"id"', "[a]", "{a: 1}", "*a", "&k key", "!!str id", "-", "1", "~"]
    ),
    PLAIN.filter(lambda s: ":" not in s and "#" not in s),
)  # fmt: skip
YAML_VALUES = st.recursive(
    YAML_SCALARS,
    lambda kids: st.one_of(
        st.lists(kids, max_size=5).map(lambda xs: "[" + ", ".join(xs) + "]"),
        st.lists(st.tuples(YAML_KEYS, kids), max_size=4).map(
            lambda kv: "{" + ", ".join(f"{k}: {v}" for k, v in kv) + "}"
        ),
        st.tuples(st.sampled_from(["&a ", "&b ", "!!set ", "!!omap ", "!x "]), kids).map("".join),
    ),
    max_leaves=12,
)


@st.composite
def yaml_mappings(draw: st.DrawFn) -> str:
    """A block mapping of hostile keys and values, with anchors, aliases and merge keys."""
    lines = []
    for key, value in draw(st.lists(st.tuples(YAML_KEYS, YAML_VALUES), max_size=8)):
        anchor = draw(st.sampled_from(["", "", "", "&a ", "&b ", "*a", "*b"]))
        lines.append(f"{key}: {value}" if not anchor.startswith("*") else f"{key}: {anchor}")
        if draw(st.integers(0, 9)) == 0:
            lines.append(f"{key}:\n  - {value}\n  - <<: *a")
    return "\n".join(lines)


ODD_DOCUMENTS = [
    BOMB, MERGE_BOMB, DEEP_FLOW, DEEP_BLOCK, "%YAML 1.1\n---\na: 1",
    "%TAG ! tag:yaml.org,2002:python/\n---\n!object:os.system x", "a: 1\n---\nb: 2\n...\n",
    "%YAML 9.9\n--- x", "--- |\n  x\n...", "? [a, b]\n: c", "? {a: 1}\n: c",
    "a: 1\na: 2", "<<: {a: 1}\n<<: {b: 2}", "x: &x [*x]", "&a [*a]", "- &a\n- *a",
    "a: !!binary |\n  " + "QUFB" * 100, "\x00", "\ufeffa: 1", "a:\tb", "a: 1\r\nb: 2",
]  # fmt: skip

YAML_TEXTS = st.one_of(
    yaml_mappings(),
    st.builds(alias_bomb, st.integers(1, 12), st.integers(1, 12)),
    st.integers(1, 300).map(lambda d: "x: " + "[" * d + "]" * d),
    st.integers(1, 300).map(lambda d: "x: " + "{a: " * d + "1" + "}" * d),
    st.integers(1, 300).map(lambda d: "x: " + "[" * d),
    st.integers(1, 150).map(lambda d: "\n".join(" " * i + f"k{i}:" for i in range(d)) + " x"),
    st.integers(1, 150).map(lambda d: "\n".join("  " * i + "- " for i in range(d)) + "x"),
    st.sampled_from(ODD_DOCUMENTS),
    st.text(max_size=300),
)

# -- hostile JSON ------------------------------------------------------------------------

JSON_ATOMS = st.one_of(
    st.sampled_from(
        ["null", "true", "false", "0", "-0", "1e400", "-1e400", "1e-400", "NaN", "Infinity",
         "-Infinity", "1.5", '""', '"\\u0000"', '"\\ud800"', '"\\udfff"', '"\\ud800\\udc00"',
         '"\\x41"', "01", "+1", ".5", "1.", "tru", '"', "'a'", "[1,]", "{,}", "/* c */", "\x00"]
    ),
    st.integers().map(str),
    st.integers(4000, 6000).map(lambda n: "9" * n),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.builds(json.dumps, st.text(max_size=30), ensure_ascii=st.booleans()),
)  # fmt: skip
# Only where JSON is read with the json module (fast); YAML is slow on big scalars.
HUGE_JSON = st.integers(1, 60 * KiB).map(lambda n: '"' + "x" * n + '"')
JSON_KEYS = st.one_of(
    st.sampled_from(["kind", "text", "task", "actor", "data", "id", "time", "a", "", "\x00"]),
    st.text(max_size=8),
)
JSON_TEXTS = st.recursive(
    JSON_ATOMS,
    lambda kids: st.one_of(
        st.lists(kids, max_size=5).map(lambda xs: "[" + ",".join(xs) + "]"),
        st.lists(st.tuples(JSON_KEYS, kids), max_size=5).map(
            lambda kv: "{" + ",".join(f"{json.dumps(k)}: {v}" for k, v in kv) + "}"
        ),
    ),
    max_leaves=16,
)
DEEP_JSON = st.one_of(
    HUGE_JSON,
    st.integers(1, 1500).map(lambda d: "[" * d + "]" * d),
    st.integers(1, 1500).map(lambda d: '{"a":' * d + "1" + "}" * d),
    st.integers(1, 1500).map(lambda d: "[" * d),
)


def deep_value(depth: int) -> str:
    return "[" * depth + "]" * depth


@st.composite
def json_objects(draw: st.DrawFn, base: dict[str, Any], fields: list[str]) -> str:
    """``base`` as a JSON object with some fields replaced, removed or given twice."""
    pairs = [(k, json.dumps(v)) for k, v in base.items()]
    for _ in range(draw(st.integers(0, 3))):
        key = draw(st.one_of(st.sampled_from(fields), JSON_KEYS))
        value = draw(st.one_of(JSON_TEXTS, DEEP_JSON))
        if draw(st.booleans()):
            pairs = [(k, value if k == key else v) for k, v in pairs]
        else:
            pairs.append((key, value))  # a new field, or the same key twice
    if pairs and draw(st.integers(0, 5)) == 0:
        del pairs[draw(st.integers(0, len(pairs) - 1))]
    space = draw(st.sampled_from(["", " ", "\n  ", "\t"]))
    return "{" + ",".join(f"{space}{json.dumps(k)}: {v}" for k, v in pairs) + "}"


# -- front matter ------------------------------------------------------------------------


@st.composite
def front_matter(draw: st.DrawFn, head: st.SearchStrategy[str]) -> str:
    """``---``, a head, a closing fence (or a near miss, or none), a body."""
    newline = draw(st.sampled_from(["\n", "\n", "\r\n", "\r"]))
    prefix = draw(st.sampled_from(["", "", "\ufeff", " ", "\n"]))
    opening = draw(st.sampled_from(["---", "---", "--- ", "----", "---x"]))
    closing = draw(st.sampled_from(["---", "---", "---", "--- \t", "...", "----", " ---", None]))
    body = draw(st.one_of(st.text(max_size=200), st.just("---\nx: 1\n---\n")))
    lines = [opening, *draw(head).split("\n")]
    if closing is not None:
        lines.append(closing)
    return prefix + newline.join(lines) + newline + body


@st.composite
def record_heads(draw: st.DrawFn, base: dict[str, Any]) -> str:
    """A record's front matter: gitfactory's `key: <JSON>` lines, some values replaced
    with hostile YAML or JSON (which sends the whole head through the YAML parser)."""
    lines = {k: json.dumps(v, ensure_ascii=False) for k, v in base.items() if k != "body"}
    fields = [k for k in schemas.schema(base_kind(base))["properties"] if k != "body"]
    for _ in range(draw(st.integers(0, 3))):
        key = draw(st.one_of(st.sampled_from(fields), YAML_KEYS))
        value = st.one_of(YAML_VALUES, JSON_TEXTS, TIMESTAMPS, st.integers(1, 1200).map(deep_value))
        lines[key] = draw(value)
    if draw(st.integers(0, 9)) == 0:
        lines["body"] = '"in the head"'
    return "\n".join(f"{k}: {v}" for k, v in lines.items())


def base_kind(base: dict[str, Any]) -> str:
    return next(name for name, seed in SEEDS.items() if seed is base)


# -- byte-level mutations of valid files -------------------------------------------------

SPLICES = [
    b"\x00", b"\xff", b"\xc3", b"\xed\xa0\x80", b"\xef\xbb\xbf", b"\r", b"\n", b"\n---\n",
    b"---", b"&a ", b"*a", b"<<: ", b"!!python/object:os.system ", b"!!binary ", b"[", b"{",
    b'"', b"'", b"\\", b"\t", b"#", b"1e400", b"NaN", b'"\\ud800"', b": ", b"- ", b"? ", b"|",
    b">", b"%", b"@", b"2026-02-30", b"0001-01-01T00:00:00+01:00", b"9" * 5000,
    b"[" * 1200, b"\xe2\x80\xa8", b"\xc2\x85",
]  # fmt: skip


@st.composite
def mutated(draw: st.DrawFn, seeds: list[bytes]) -> bytes:
    """A valid file with a few bytes inserted, deleted, replaced or lines repeated."""
    data = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["insert", "insert", "delete", "replace", "line", "cut"]))
        at = draw(st.integers(0, len(data)))
        splice = draw(st.one_of(st.sampled_from(SPLICES), st.binary(min_size=1, max_size=16)))
        if op == "insert":
            data[at:at] = splice
        elif op == "delete":
            del data[at : at + draw(st.integers(1, 16))]
        elif op == "replace":
            data[at : at + len(splice)] = splice
        elif op == "line":
            lines = bytes(data).split(b"\n")
            i = draw(st.integers(0, len(lines) - 1))
            lines.insert(i, lines[i] if draw(st.booleans()) else splice)
            data = bytearray(b"\n".join(lines))
        else:
            data = data[:at]
    return bytes(data)


def as_text(data: bytes) -> str:
    return data.decode("utf-8", "replace")


# -- front matter ------------------------------------------------------------------------

FM_PATH = TASK.path(TASK_SEED["id"])
MD_SEEDS = seed_files(TASK) + seed_files(MESSAGE)
DEEP_JSON_HEAD = f"---\nid: {json.dumps(TASK_SEED['id'])}\nx: {deep_value(1000)}\n---\n"


def task_head(extra: str) -> str:
    return (
        f'---\nid: "{TASK_SEED["id"]}"\ntitle: t\nrequester: human/a\n'
        f"created: 2026-11-22T10:00:00Z\n{extra}\n---\n"
    )


@PROPERTY
@given(
    text=st.one_of(
        front_matter(YAML_TEXTS),
        front_matter(st.sampled_from(list(SEEDS.values())).flatmap(record_heads)),
        mutated(MD_SEEDS).map(as_text),
        st.text(max_size=500),
    )
)
@example(text=f"---\n{BOMB}\n---\nbody\n")
@example(text=f"---\n{MERGE_BOMB}\n---\n")
@example(text=f"---\n{DEEP_FLOW}\n---\n")
@example(text="---\nx: 1\n")  # no closing fence
@example(text="---\n---\n")
@example(text="---\n" + "x" * 2 * MiB)
# Found: an impossible date or time is a ValueError, not a refusal.
@example(text=task_head("x: 2026-02-30"))
@example(text=task_head("x: !!timestamp 2026-13-01"))
@example(text=task_head("x: 0000-01-01"))  # year 0
# Found: a time near year 1 or 9999 with a zone offset overflows (OverflowError).
@example(text=task_head("x: 0001-01-01T00:00:00+01:00"))
@example(text=task_head("x: 9999-12-31T23:00:00-05:00"))
# Found: an integer past Python's 4,300-digit limit, or not an integer at all (ValueError).
@example(text=task_head("x: " + "9" * 5000))
@example(text=task_head("x: !!int abc"))
@example(text=task_head("a: 1\na: " + "9" * 4400))
# Found: JSON front matter nested 1,000 deep (RecursionError).
@example(text=DEEP_JSON_HEAD)
# Found: 2 KB of brackets take 1.5 s to refuse (3 s under tracemalloc): the YAML
# scanner's simple-key lookahead is quadratic in the nesting, up to 1,024 characters,
# and runs before the first event reaches limits().
@example(text="---\n" + deep_value(1000) + "\n---\n")
def test_front_matter_is_parsed_or_refused(text: str) -> None:
    """A markdown record with any head at all: read, or refused with its reason."""
    record, _ = bounded(lambda: frontmatter.parse(text, FM_PATH), len(text.encode("utf-8")))
    if record is not None:
        assert isinstance(record["body"], str)
        assert all(isinstance(k, str) for k in record)


# -- record files ------------------------------------------------------------------------

RecordFile = tuple[RecordKind, str, bytes]


@st.composite
def record_files(draw: st.DrawFn) -> RecordFile:
    """A file at (or near) a record's place: valid, mutated, hostile or random."""
    kind = draw(st.sampled_from(KINDS))
    seed = SEEDS[kind.name]
    path = draw(
        st.one_of(
            st.just(kind.path(seed["id"])),
            st.just(kind.path(seed["id"])),
            st.just(kind.path(seed["id"])),
            st.sampled_from(
                [kind.path("7zzzzzzzzzzzzzzzzzzzzzzzzz"), kind.prefix + seed["id"] + kind.suffix,
                 kind.path(seed["id"]).replace(kind.suffix, ".txt"), kind.prefix, "", "/",
                 kind.path(seed["id"].upper()), kind.path("8" + seed["id"][1:]),
                 kind.path(seed["id"][:-1])]
            ),
            st.text(max_size=80),
        )
    )  # fmt: skip
    if kind.suffix == ".json":
        fields = list(schemas.schema(kind.name)["properties"])
        text = st.one_of(json_objects(seed, fields), JSON_TEXTS, DEEP_JSON)
    else:
        text = st.one_of(front_matter(record_heads(seed)), front_matter(YAML_TEXTS))
    data = draw(
        st.one_of(
            text.map(lambda t: t.encode("utf-8", "surrogatepass")),
            mutated(seed_files(kind)),
            st.binary(max_size=300),
        )
    )
    return kind, path, data


def event_file(text: str) -> RecordFile:
    return EVENT, EVENT.path(EVENT_SEED["id"]), text.encode()


def task_file(extra: str) -> RecordFile:
    return TASK, TASK.path(TASK_SEED["id"]), task_head(extra).encode()


MESSAGE_HEAD_SURROGATE = records.encode(MESSAGE_SEED, MESSAGE).decode().replace(
    json.dumps(MESSAGE_SEED["subject"]), '"\\ud800"'
)


def _event_with(field: str, raw: str) -> str:
    return "{" + ", ".join(
        f"{json.dumps(k)}: {raw if k == field else json.dumps(v)}" for k, v in EVENT_SEED.items()
    ) + "}"  # fmt: skip


@settings(PROPERTY, max_examples=200)
@given(case=record_files())
@example(case=(TASK, FM_PATH, f"---\n{BOMB}\n---\n".encode()))
@example(case=(MESSAGE, MESSAGE.path(MESSAGE_SEED["id"]), b"-" * (records.MAX_MESSAGE_BYTES + 1)))
@example(case=(EVENT, EVENT.path(EVENT_SEED["id"]), b"[" * (records.MAX_RECORD_BYTES + 1)))
@example(case=event_file(_event_with("data", '{"a": ' + deep_value(5000) + "}")))
@example(case=event_file(_event_with("data", '{"a": NaN}')))
@example(case=(EVENT, EVENT.path(EVENT_SEED["id"]), b"\xff\xfe{}"))
# Found: a time near year 1 or 9999 with a zone offset, in any field of a task or a
# message, is an OverflowError out of decode(): every reader of the tree stops on it.
@example(case=task_file("x: 0001-01-01T00:00:00+01:00"))
@example(case=task_file("created: 9999-12-31T23:00:00-05:00"))
# Found: 1e400 is read as infinity and accepted; written back it is `Infinity`, which
# decode refuses (what gitfactory itself writes must read back).
@example(case=event_file(_event_with("data", '{"a": 1e400}')))
# Found: a lone surrogate escape (JSON "\\ud800") is accepted, and the str it gives
# cannot be encoded as UTF-8: the index insert (sqlite) raises UnicodeEncodeError, so
# one such committed event stops every command; a message crashes the inbox export.
@example(case=event_file(_event_with("text", '"\\ud800"')))
@example(case=(MESSAGE, MESSAGE.path(MESSAGE_SEED["id"]), MESSAGE_HEAD_SURROGATE.encode()))
def test_record_files_are_read_or_refused(case: RecordFile) -> None:
    """Any file in the factory tree: a valid record, or an invalid one named with its
    reason. What is read can be written back and read again the same."""
    kind, path, data = case
    record, _ = bounded(lambda: records.decode(kind, path, data), len(data))
    if record is None:
        return
    again = records.decode(kind, path, records.encode(record, kind))
    assert {k: v for k, v in again.items() if k != "body"} == {
        k: v for k, v in record.items() if k != "body"
    }
    assert again.get("body", "").rstrip() == record.get("body", "").rstrip()


# -- JSON as the protocol reads it -------------------------------------------------------


@settings(PROPERTY, max_examples=200)
@given(text=st.one_of(JSON_TEXTS, DEEP_JSON, st.text(max_size=200)))
@example(text="NaN")
@example(text="[" * 100_000)
@example(text='{"a": 1, "a": 2}')
# Found: a number too large for a float is read as infinity, though the protocol
# refuses Infinity (and gitfactory then writes `Infinity` out).
@example(text="1e400")
def test_protocol_json_is_read_or_refused(text: str) -> None:
    """records.loads: JSON, or ValueError / RecursionError, which each caller turns into
    its own error; what it returns is JSON the protocol can write back."""
    value, _ = bounded(
        lambda: records.loads(text), len(text.encode("utf-8", "surrogatepass")),
        allowed=(ValueError, RecursionError),
    )  # fmt: skip
    if value is not None:
        json.dumps(value, allow_nan=False)


# -- the bounded YAML loader -------------------------------------------------------------


@settings(PROPERTY, max_examples=100)  # three parses an example
@given(text=YAML_TEXTS, max_nodes=st.sampled_from([1, 100, 20_000]))
@example(text=BOMB, max_nodes=20_000)
@example(text=MERGE_BOMB, max_nodes=20_000)
@example(text=DEEP_FLOW, max_nodes=20_000)
@example(text=alias_bomb(12, 12), max_nodes=100_000)
# Found: an impossible date, a too-long integer, a non-integer `!!int` (ValueError).
@example(text="x: 2026-02-30", max_nodes=20_000)
@example(text="x: " + "9" * 5000, max_nodes=20_000)
@example(text="x: !!int abc", max_nodes=20_000)
@example(text="x: 0000-01-01", max_nodes=20_000)
# Found: over a second to refuse 2 KB of brackets (quadratic scanner lookahead).
@example(text="x: " + "[" * 2000, max_nodes=20_000)
# Found: ruamel's own duplicate-key message shows the value; a long integer cannot be shown.
@example(text="a: 1\na: " + "9" * 4400, max_nodes=20_000)
# Found: a collection tag on an empty value is an AttributeError in the round-trip loader.
@example(text="x: !!set", max_nodes=20_000)
@example(text="x: !!omap", max_nodes=20_000)
def test_bounded_yaml_is_loaded_or_refused(text: str, max_nodes: int) -> None:
    """limits() answers from the events alone (or raises YAML's own error for text that
    is not YAML); load() builds the text, or refuses it with a ConfigError."""
    size = len(text.encode("utf-8", "surrogatepass"))
    for aliases in (False, True):

        def check(aliases: bool = aliases) -> str | None:
            return yaml.limits(text, aliases=aliases, max_nodes=max_nodes)

        problem, _ = bounded(check, size, allowed=(YAMLError,))
        assert problem is None or isinstance(problem, str)
    bounded(lambda: yaml.load(text, "test.yaml"), size)


# -- factory.yaml ------------------------------------------------------------------------

NAMES = st.sampled_from(["default", "implement", "test", "review", "merge", "done", "failed",
                         "coder", "reviewer", "tests", "x", "Bad Name", ""])  # fmt: skip
DURATIONS = st.sampled_from(
    ["10m", "0s", "1h", "500ms", "90", "10 m", "-1s", "1y", "99999999999999999999999w",
     "9" * 5000 + "s", '"' + "9" * 5000 + 's"', "1e400s", "10m\n"]
)  # fmt: skip
SIZES = st.sampled_from(
    ["1MiB", "64KiB", "65536", "0", "1 GiB", "16MiB", "16777217", "9" * 5000,
     '"' + "9" * 5000 + '"', '"\u0661\u0662\u0663\u0664\u0665\u0666"', "-1", "1.5MiB"]
)  # fmt: skip
CONFIG_VALUES = st.one_of(NAMES, DURATIONS, SIZES, YAML_VALUES)


def block(node: Any, indent: int = 0) -> list[str]:
    """A nested dict of YAML snippets as block YAML lines."""
    pad = " " * indent
    lines: list[str] = []
    for key, value in node.items():
        if isinstance(value, dict):
            lines.append(f"{pad}{key}:")
            lines.extend(block(value, indent + 2))
        elif isinstance(value, list):
            lines.append(f"{pad}{key}:")
            lines.extend(f"{pad}  - {item}" for item in value)
        else:
            lines.append(f"{pad}{key}: {value}")
    return lines


def maybe(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """A valid-looking value most of the time, a hostile one sometimes."""
    return st.one_of(strategy, strategy, strategy, CONFIG_VALUES)


@st.composite
def config_documents(draw: st.DrawFn) -> str:
    """factory.yaml shaped by its schema, with plausible and hostile values mixed."""
    steps = draw(
        st.dictionaries(
            NAMES,
            st.fixed_dictionaries(
                {},
                optional={
                    "role": maybe(NAMES), "gate": maybe(NAMES), "action": maybe(st.just("merge")),
                    "timeout": maybe(DURATIONS), "max_attempts": maybe(st.integers(-1, 10)),
                    "on_success": maybe(NAMES), "on_failure": maybe(NAMES),
                    "on_timeout": maybe(NAMES), "strategy": maybe(st.just("squash")),
                    "into": maybe(NAMES), "requires_change": maybe(st.booleans()),
                },
            ),
            max_size=4,
        )
    )  # fmt: skip
    doc: dict[str, Any] = {
        "protocol": draw(maybe(st.just('"0.3"'))),
        "name": draw(maybe(st.just("test"))),
    }
    sections = {
        "workflows": {draw(NAMES): {"start": draw(maybe(NAMES)), "steps": steps}},
        "mail": {"max_body": draw(SIZES), "ack_timeout": draw(DURATIONS)},
        "watch": draw(st.lists(maybe(st.just('"*"')), max_size=3)),
        "agents": {
            draw(NAMES): {"role": draw(maybe(NAMES)), "preset": draw(maybe(st.just("claude"))),
                          "env": {draw(NAMES): draw(CONFIG_VALUES)}}
        },
        "dispatch": {
            "max_concurrent": draw(maybe(st.integers(-1, 99))),
            "pool": draw(maybe(st.integers(-1, 9))),
            "default_timeout": draw(DURATIONS), "kill_grace": draw(DURATIONS),
            "max_per_role": {draw(NAMES): draw(maybe(st.integers(-1, 9)))},
            "setup": {"copy": draw(st.lists(CONFIG_VALUES, max_size=2))},
        },
        "gates": {
            draw(NAMES): {"type": draw(maybe(st.sampled_from(["command", "judge", "scenario"]))),
                          "command": draw(maybe(st.just("make test"))),
                          "timeout": draw(DURATIONS), "role": draw(maybe(NAMES)),
                          "threshold": draw(maybe(st.floats().map(repr)))}
        },
    }  # fmt: skip
    for name in draw(st.lists(st.sampled_from(list(sections)), unique=True)):
        doc[name] = sections[name]
    return "\n".join(block(doc))


CONFIG_BOMB = (
    factory_yaml.render("test").decode()
    + "\nx-bomb:\n"
    + "\n".join("  " + line for line in BOMB.split("\n"))
)
CONFIG_HEAD = 'protocol: "0.3"\nname: test\n'


@PROPERTY
@given(
    data=st.one_of(
        config_documents().map(str.encode),
        mutated(config_seeds()),
        st.builds(lambda a, b: a + b"\n" + b.encode(), st.sampled_from(config_seeds()), YAML_TEXTS),
        YAML_TEXTS.map(lambda t: t.encode("utf-8", "surrogatepass")),
        st.binary(max_size=300),
    )
)
@example(data=BOMB.encode())
@example(data=CONFIG_BOMB.encode())
@example(data=(CONFIG_HEAD + MERGE_BOMB).encode())
@example(data=(CONFIG_HEAD + DEEP_FLOW).encode())
@example(data=b"#" * (factory_yaml.MAX_BYTES + 1))
@example(data=b"\xff\xfe")
# Found: an impossible date, a too-long integer, a non-integer `!!int` (ValueError).
@example(data=(CONFIG_HEAD + "x: 2026-02-30").encode())
@example(data=(CONFIG_HEAD + "x: !!timestamp 2026-13-01").encode())
@example(data=(CONFIG_HEAD + "x: " + "9" * 5000).encode())
@example(data=(CONFIG_HEAD + "x: !!int abc").encode())
@example(data=(CONFIG_HEAD + "x: !!set").encode())  # AttributeError
# Found: a document that contains itself (allowed: the alias comes after its anchor
# starts) sends the schema check into endless recursion (RecursionError).
@example(data=b"&a [*a]")
@example(data=b"&m {protocol: '0.3', name: test, x: *m}")
# Found: over a second to refuse 2 KB of brackets (quadratic scanner lookahead).
@example(data=(CONFIG_HEAD + "x: " + deep_value(1000)).encode())
# Found: a quoted size or duration of 5,000 digits passes the schema's pattern, and
# int() refuses it (ValueError).
@example(data=(CONFIG_HEAD + f'mail:\n  max_body: "{"9" * 5000}"').encode())
@example(data=(CONFIG_HEAD + f'mail:\n  ack_timeout: "{"9" * 5000}s"').encode())
@example(data=(CONFIG_HEAD + f'dispatch:\n  default_timeout: "{"9" * 5000}s"').encode())
def test_factory_yaml_is_parsed_or_refused(data: bytes) -> None:
    """`config check --file`: a configuration and its warnings, or a ConfigError that
    names the file, never a crash."""
    config, _ = bounded(lambda: factory_yaml.parse(data, "new.yaml"), len(data))
    if config is not None:
        warned, _ = bounded(lambda: factory_yaml.warnings(config), len(data))
        assert warned is not None and all(isinstance(w, str) for w in warned)


# -- `log append --stdin` ----------------------------------------------------------------

STDIN_VALUES = {
    "kind": st.sampled_from(['"note"', '"build.failed"', '"task.done"', '"NOTE"', '""', '"a.b.c"']),
    "text": st.sampled_from(['"hello"', '""', "null", '"\\u0000"', '"\\ud800"', '"\\r\\n"']),
    "task": st.sampled_from(["null", json.dumps(TASK_SEED["id"]), '"x"']),
    "actor": st.sampled_from(['"human/ada"', '"coder/ada"', '"factory:qa/bob"', '"bad actor"',
                              '"factory/daemon"', "null", "[]", "0"]),
    "data": st.sampled_from(["{}", '{"a": [1]}', '{"a": 1e400}', "[]", '{"": null}']),
}  # fmt: skip


@st.composite
def stdin_lines(draw: st.DrawFn) -> str:
    """One line of `log append --stdin`: mostly an object of its fields."""
    shape = draw(st.integers(0, 9))
    if shape == 0:
        return draw(st.one_of(JSON_TEXTS, DEEP_JSON, st.text(max_size=80)))
    pairs = []
    for field in draw(st.lists(st.sampled_from([*STDIN_VALUES, "other"]), max_size=6)):
        values = STDIN_VALUES.get(field, JSON_TEXTS)
        pairs.append((field, draw(st.one_of(values, values, JSON_TEXTS, DEEP_JSON))))
    line = "{" + ", ".join(f'"{k}": {v}' for k, v in pairs) + "}"
    return line + draw(st.sampled_from(["", "\n", "\r\n", " "]))


@PROPERTY
@given(lines=st.lists(stdin_lines(), max_size=4))
@example(lines=['{"kind": "note"}', "", "   \n", '{"kind": "build.failed", "data": {"n": 1}}'])
@example(lines=["[" * 100_000])
@example(lines=['{"kind": "note", "data": {"a": NaN}}'])
# Found: accepted, then written as `Infinity` into an event that gitfactory itself
# reads back as invalid ("not valid JSON: Infinity is not a JSON number").
@example(lines=['{"kind": "note", "data": {"a": 1e400}}'])
# Found: accepted, then records.encode raises UnicodeEncodeError (surrogates not allowed):
# `log append --stdin` exits 70.
@example(lines=['{"kind": "note", "text": "\\ud800"}'])
# Found: nothing bounds the size of the event written: 2 KiB of nesting, indented, is
# 1.9 MiB, and a big `data` is written as is; both are over the 1 MiB record limit, so
# gitfactory commits events that its own readers list as invalid.
@example(lines=['{"kind": "note", "data": {"a": ' + deep_value(900) + "}}"])
@example(lines=['{"kind": "note", "data": {"a": "' + "x" * (records.MAX_RECORD_BYTES + 1) + '"}}'])
def test_log_append_stdin_is_read_or_refused(lines: list[str]) -> None:
    """`log append --stdin`: every line becomes an event that can be written and read
    back, or the whole input is refused with the line number."""
    size = sum(len(line.encode("utf-8", "surrogatepass")) for line in lines)
    events, _ = bounded(lambda: log.events_from_lines(lines, "human/tester"), size)
    for event in events or []:
        record = event.to_record()
        assert records.decode(EVENT, event.path, records.encode(record)) == record


# -- the seeds, and the bombs on their own -----------------------------------------------


@pytest.mark.parametrize("kind", KINDS, ids=[k.name for k in KINDS])
def test_the_seeds_are_valid_records(kind: RecordKind) -> None:
    """The mutations start from records that are valid, so they reach past the first check."""
    for data in seed_files(kind):
        assert records.decode(kind, kind.path(SEEDS[kind.name]["id"]), data)["id"]


def test_the_config_seeds_are_valid() -> None:
    for data in config_seeds():
        factory_yaml.parse(data)


def test_an_alias_bomb_is_refused_in_milliseconds() -> None:
    """9**9 values from ~500 bytes: refused from the parser's events, nothing built."""
    _, refused = bounded(lambda: frontmatter.parse(f"---\n{BOMB}\n---\n", FM_PATH), len(BOMB))
    assert refused is not None and "anchor &a0" in str(refused)
    _, refused = bounded(lambda: factory_yaml.parse(CONFIG_BOMB.encode()), len(CONFIG_BOMB))
    assert refused is not None and "more than 100,000 values" in str(refused)
