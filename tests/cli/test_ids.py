"""One id rule everywhere: any unique prefix of an id names it, and listings show each
id as its shortest unique prefix (at least 5 characters), so what is shown can be
typed back. An ambiguous prefix names its candidates; an unknown one says so."""

from __future__ import annotations

import random
from pathlib import Path

from conftest import commit_on_factory, gf, gf_json

from gitfactory.store import ids

# Three tasks added with plain git, with ids chosen so that two share 5 characters.
A = "4jrc7a" + "0" * 20
B = "4jrc7b" + "0" * 20
C = "6xyz0" + "1" * 21


def _task(tid: str, title: str) -> tuple[str, bytes]:
    record = (f"---\nid: {tid}\ntitle: {title}\nrequester: human/shell\n"
              "created: 2026-11-22T09:00:00Z\n---\n")  # fmt: skip
    return f".factory/tasks/{tid[0]}/{tid[1]}/{tid}.md", record.encode()


def _plan(r: Path) -> None:
    commit_on_factory(r, dict(_task(t, title) for t, title in
                              ((A, "Parse the config"), (B, "Print the report"),
                               (C, "Write the docs"))))  # fmt: skip


def test_task_listings_show_the_shortest_unique_prefix(factory_repo: Path) -> None:
    r = factory_repo
    _plan(r)
    listed = [line.split()[0] for line in gf(r, "task", "list").stdout.splitlines()]
    assert listed == ["4jrc7a", "4jrc7b", "6xyz0"]  # 5 characters unless more are needed
    assert [line.split()[0] for line in gf(r, "ready").stdout.splitlines()] == listed
    assert gf(r, "task", "claim", "4jrc7a", "--as", "coder/ada").stdout.startswith(
        "claimed 4jrc7a for coder/ada")
    assert gf(r, "task", "depend", "4JRC7B", "--on", "6x").stdout.strip() == (
        "4jrc7b now waits for 6xyz0")  # any case, any unique prefix
    assert "depends on 6xyz0" in gf(r, "task", "show", "4jrc7b").stdout
    status = gf(r, "status").stdout
    assert "working 4jrc7a  coder/ada" in status


def test_an_ambiguous_prefix_names_its_candidates_and_an_unknown_one_says_so(
    factory_repo: Path,
) -> None:
    r = factory_repo
    _plan(r)
    candidates = "4jrc7a (Parse the config); 4jrc7b (Print the report)"
    for command in (["task", "show"], ["task", "claim"], ["log", "--task"], ["artifact", "list"],
                    ["mail", "send", "coder/ada", "-s", "x", "--task"]):  # fmt: skip
        proc = gf(r, *command, "4jrc7", code=2)
        said = f"task id '4jrc7' is ambiguous; it could be {candidates}"
        assert said in proc.stderr, (command, proc.stderr)
        assert "hint: type more characters of the id" in proc.stderr
        proc = gf(r, *command, "5zz", code=2)
        assert "error: no task id starts with '5zz'" in proc.stderr, (command, proc.stderr)
        assert "hint: `gitfactory task list` shows them" in proc.stderr


def test_log_task_takes_any_unique_prefix(factory_repo: Path) -> None:
    r = factory_repo
    _plan(r)
    gf(r, "log", "append", "note", "about the docs", "--task", "6xyz")
    gf(r, "log", "append", "note", "about parsing", "--task", A)
    [event] = gf_json(r, "log", "--task", "6xy")
    assert (event["task"], event["text"]) == (C, "about the docs")  # stored whole
    human = gf(r, "log", "--task", "6xyz0").stdout.splitlines()
    assert len(human) == 1 and "[6xyz0] about the docs" in human[0]
    # A whole id is taken as it is: events may be about a task this factory lacks.
    elsewhere = "7" * 26
    gf(r, "log", "append", "note", "from another factory", "--task", elsewhere)
    assert [e["text"] for e in gf_json(r, "log", "--task", elsewhere)] == ["from another factory"]


def test_messages_of_one_millisecond_are_told_apart_by_their_shown_prefix(
    factory_repo: Path,
) -> None:
    r = factory_repo
    same_ms = {"GITFACTORY_NOW": "2021-06-01T10:00:00Z"}
    first, second = (gf_json(r, "mail", "send", "coder/ada", "-s", subject, "--body", subject,
                             env=same_ms)["id"] for subject in ("first", "second"))  # fmt: skip
    assert first[:10] == second[:10]  # the time part: only the random part tells them apart
    rows = gf(r, "mail", "inbox", "--as", "coder/ada").stdout.splitlines()
    shown = {row.split()[-1]: row.split()[1] for row in rows}  # subject -> shown id
    for subject, full in (("first", first), ("second", second)):
        assert full.startswith(shown[subject]) and len(shown[subject]) > 10
        read = gf(r, "mail", "read", shown[subject], "--as", "coder/ada").stdout
        assert f"Message:     {full}" in read and f"Subject:     {subject}" in read
        # older listings showed the last 8 characters: those still name it
        assert gf_json(r, "mail", "read", full[-8:], "--as", "coder/ada")["id"] == full
    proc = gf(r, "mail", "read", first[:10], "--as", "coder/ada", code=2)
    assert f"message id '{first[:10]}' is ambiguous; it could be " in proc.stderr
    assert f"{shown['first']} (human/test-user: first)" in proc.stderr
    assert f"{shown['second']} (human/test-user: second)" in proc.stderr
    proc = gf(r, "mail", "read", "zzzzzz", "--as", "coder/ada", code=2)
    assert "no message id starts or ends with 'zzzzzz'" in proc.stderr
    # a thread is named by its first message: its shown prefix will do
    reply = gf_json(r, "mail", "reply", shown["first"], "--body", "ok", "--as", "coder/ada")
    thread = gf_json(r, "mail", "thread", shown["first"])
    assert [m["id"] for m in thread] == [first, reply["id"]]
    inbox = gf_json(r, "mail", "inbox", "--as", "human/test-user", "--thread", shown["first"])
    assert [m["id"] for m in inbox] == [reply["id"]]
    assert f"Reply-To:    {shown['first']}" in gf(r, "mail", "read", reply["id"][:14],
                                                   "--as", "human/test-user").stdout  # fmt: skip


def test_artifact_listing_ids_read_back(factory_repo: Path) -> None:
    r = factory_repo
    _plan(r)
    same_ms = {"GITFACTORY_NOW": "2021-06-01T10:00:00Z"}
    for n in range(2):
        gf(r, "artifact", "put", "6xyz", "-", "--name", f"n{n}.txt", input=f"{n}\n", env=same_ms)
    for row in gf(r, "artifact", "list").stdout.splitlines():
        short, owner, name = row.split()[0], row.split()[1], row.split()[-2]
        assert owner == "6xyz0" and len(short) > 10
        assert gf(r, "artifact", "get", short).stdout == f"{name[1]}\n"


def test_shortest_unique_prefixes_of_many_ids() -> None:
    rng = random.Random(12)
    every = [ids.random_id() for _ in range(3000)]
    every += [ids.new_id(1_790_000_000_000 + rng.randrange(50)) for _ in range(300)]
    short = ids.shortest_unique_prefixes(every)
    by_prefix: dict[str, int] = {}
    for record_id in every:
        for n in range(1, 27):
            by_prefix[record_id[:n]] = by_prefix.get(record_id[:n], 0) + 1
    for record_id, shown in short.items():
        assert record_id.startswith(shown) and len(shown) >= 5
        assert by_prefix[shown] == 1  # unique ...
        assert len(shown) == 5 or by_prefix[shown[:-1]] > 1  # ... and none shorter is
