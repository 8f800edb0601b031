"""Mailboxes through the real CLI: send, inbox, read, ack, reply, thread, search,
export, watch; limits and terminal safety."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from conftest import commit_on_factory, gf, gf_json, git


def send(repo: Path, *args: str, **kw: str) -> str:
    return str(gf_json(repo, "mail", "send", *args, **kw)["id"])


def inbox(repo: Path, agent: str, *args: str) -> list[dict[str, object]]:
    result: list[dict[str, object]] = gf_json(repo, "mail", "inbox", "--as", agent, *args)
    return result


def test_send_inbox_read_ack_reply_thread_round_trip(factory_repo: Path) -> None:
    r = factory_repo
    first = send(r, "coder/ada", "-s", "Fix the mean", "--body", "It is *off* by one.",
                 "--as", "human/lead", "--ack-required", "--priority", "high")
    [row] = inbox(r, "coder/ada")
    assert row["id"] == first and row["from"] == "human/lead" and row["to"] == ["coder/ada"]
    assert row["subject"] == "Fix the mean" and row["thread"] == first
    assert (row["read"], row["acked"], row["ack_required"]) == (False, False, True)
    assert inbox(r, "coder/bob") == [] and inbox(r, "human/lead") == []

    # Any 4+ trailing or leading characters of the id name the message.
    shown = gf(r, "mail", "read", first[-6:], "--as", "coder/ada").stdout
    assert "Subject:     Fix the mean" in shown and "It is *off* by one." in shown
    assert "acknowledged by nobody yet" in shown
    [row] = inbox(r, "coder/ada")
    assert (row["read"], row["acked"]) == (True, False)
    assert [m["id"] for m in inbox(r, "coder/ada", "--unacked")] == [first]
    assert inbox(r, "coder/ada", "--unread") == []

    assert gf_json(r, "mail", "ack", first[:12], "--as", "coder/ada")["already"] is False
    assert gf_json(r, "mail", "ack", first, "--as", "coder/ada")["already"] is True
    assert inbox(r, "coder/ada", "--unacked") == []

    answer = gf_json(r, "mail", "reply", first, "--as", "coder/ada", "--body", "On it.")
    [got] = inbox(r, "human/lead")
    assert got["id"] == answer["id"] and got["subject"] == "Re: Fix the mean"
    assert got["thread"] == first and got["from"] == "coder/ada"
    again = gf_json(r, "mail", "reply", answer["id"], "--as", "human/lead", "--body", "Thanks")
    assert inbox(r, "coder/ada")[0]["subject"] == "Re: Fix the mean"  # no "Re: Re:"

    thread = gf_json(r, "mail", "thread", first)
    assert [m["id"] for m in thread] == [first, answer["id"], again["id"]]
    assert [m["reply_to"] for m in thread] == [None, first, answer["id"]]
    assert thread[1]["body"] == "On it.\n"
    text = gf(r, "mail", "thread", answer["id"]).stdout  # any message names its thread
    assert text.index("It is *off*") < text.index("On it.") < text.index("Thanks")

    # Each state is its own record in the log, readable with plain git.
    kinds = [e["kind"] for e in gf_json(r, "log") if e["kind"].startswith("mail.")]
    assert kinds.count("mail.delivered") == 3
    assert kinds.count("mail.read") == 1 and kinds.count("mail.acked") == 1
    files = git(r, "ls-tree", "-r", "--name-only", "factory", ".factory/mail").split()
    assert sorted(f.rsplit("/", 1)[1] for f in files) == sorted(
        f"{i}.md" for i in (first, answer["id"], again["id"])
    )
    record = git(r, "show", f"factory:{files[0]}")
    assert record.startswith("---\n") and '\nfrom: "human/lead"\n' in record


def test_reading_twice_shows_the_message_twice_and_records_one_read(factory_repo: Path) -> None:
    r = factory_repo
    mid = send(r, "coder/ada", "-s", "Twice", "--body", "Same words.", "--as", "human/lead")
    for _ in range(2):
        assert "Same words." in gf(r, "mail", "read", mid, "--as", "coder/ada").stdout
    assert [m["id"] for m in inbox(r, "coder/ada")] == [mid]  # never consumed
    detail = gf_json(r, "mail", "read", mid, "--as", "coder/ada")
    assert detail["first_read"] is False and detail["body"] == "Same words.\n"
    reads = [x for x in detail["receipts"] if x["kind"] == "mail.read"]
    assert [x["actor"] for x in reads] == ["coder/ada"]


def test_role_broadcast_reaches_every_agent_of_the_role_with_its_own_state(
    factory_repo: Path,
) -> None:
    r = factory_repo
    mid = send(r, "reviewer/*", "-s", "Review fix-mean", "--as", "coder/ada",
               "--cc", "human/lead", "--ack-required")
    for agent in ("reviewer/ann", "reviewer/bo", "human/lead"):
        assert [m["id"] for m in inbox(r, agent)] == [mid]
    assert inbox(r, "coder/ada") == [] and inbox(r, "qa/reviewer") == []
    gf(r, "mail", "read", mid, "--as", "reviewer/ann")
    assert inbox(r, "reviewer/ann")[0]["read"] is True
    assert inbox(r, "reviewer/bo")[0]["read"] is False
    # Only a recipient may acknowledge; a cc recipient may, the sender may not.
    proc = gf(r, "mail", "ack", mid, "--as", "coder/ada", code=1)
    assert "not a recipient" in proc.stderr and "reviewer/*" in proc.stderr
    gf(r, "mail", "ack", mid, "--as", "reviewer/bo")
    assert inbox(r, "reviewer/bo")[0]["acked"] is True
    assert inbox(r, "reviewer/ann")[0]["acked"] is False


def test_filters_order_and_limit(factory_repo: Path) -> None:
    r = factory_repo
    ids = [send(r, "coder/ada", "-s", f"m{n}", "--as", "human/lead", "--thread", "plan")
           for n in range(3)]
    other = send(r, "coder/ada", "-s", "elsewhere", "--as", "human/lead")
    assert [m["id"] for m in inbox(r, "coder/ada")] == [other, *reversed(ids)]
    assert [m["id"] for m in inbox(r, "coder/ada", "--thread", "plan")] == ids[::-1]
    assert [m["id"] for m in inbox(r, "coder/ada", "--limit", "2")] == [other, ids[2]]
    assert [m["subject"] for m in gf_json(r, "mail", "thread", "plan")] == ["m0", "m1", "m2"]
    human = gf(r, "mail", "inbox", "--as", "coder/ada").stdout.splitlines()
    assert len(human) == 4 and human[0].startswith("*")
    shown = human[0].split()[1]  # the shortest unique prefix, which reads the message
    assert other.startswith(shown) and len(shown) >= 5
    assert gf_json(r, "mail", "read", shown, "--as", "coder/ada")["id"] == other


def test_body_from_stdin_and_file_and_refusals(factory_repo: Path, tmp_path: Path) -> None:
    r = factory_repo
    mid = send(r, "coder/ada", "-", "-s", "piped", "--as", "human/lead", input="from stdin\n")
    body_file = tmp_path / "body.md"
    body_file.write_text("# Title\n\nfrom a file\n")
    mid2 = send(r, "coder/ada", "-s", "filed", "--file", str(body_file), "--as", "human/lead")
    assert gf_json(r, "mail", "read", mid, "--as", "coder/ada")["body"] == "from stdin\n"
    assert "from a file" in gf_json(r, "mail", "read", mid2, "--as", "coder/ada")["body"]

    tip = git(r, "rev-parse", "factory")
    bad = [
        (["Coder/Ada", "-s", "x"], "is not an address"),
        (["coder/ada", "-s", "two\nlines"], "subject"),
        (["coder/ada", "-s", "x", "--thread", "../../etc"], "thread"),
        (["coder/ada", "-s", "x", "--as", "root"], "--as"),
        (["coder/ada", "-s", "x", "--task", "zzzz"], "no task"),
        (["coder/ada", "-s", "x", "--body", "a", "--file", str(body_file)], "body once"),
    ]
    for args, words in bad:
        proc = gf(r, "mail", "send", *args, code=2)
        assert words in proc.stderr, (args, proc.stderr)
    assert git(r, "rev-parse", "factory") == tip  # nothing written


def test_body_size_limit_is_configurable(factory_repo: Path) -> None:
    r = factory_repo
    big = "x" * 1024 * 1024 + "\n"
    proc = gf(r, "mail", "send", "coder/ada", "-", "-s", "big", input=big, code=2)
    assert "1,048,577 bytes" in proc.stderr and "mail.max_body" in proc.stderr
    config = git(r, "show", "factory:.factory/factory.yaml").replace(
        "max_body: 1MiB", "max_body: 2MiB"
    )
    commit_on_factory(r, {".factory/factory.yaml": config.encode()})
    mid = send(r, "coder/ada", "-", "-s", "big", input=big)
    assert len(gf_json(r, "mail", "read", mid, "--as", "coder/ada")["body"]) == len(big)  # byte for byte
    commit_on_factory(r, {".factory/factory.yaml": config.replace("2MiB", "1KiB").encode()})
    proc = gf(r, "mail", "send", "coder/ada", "-", "-s", "big", input=big, code=2)
    assert "mail.max_body" in proc.stderr and "between 64KiB and 16MiB" in proc.stderr


def test_mail_to_a_factory_that_is_not_a_peer_is_refused_with_the_way_to_add_it(
    factory_repo: Path,
) -> None:
    before = git(factory_repo, "rev-parse", "factory")
    proc = gf(factory_repo, "mail", "send", "billing:bot/x", "coder/ada", "-s", "Invoice format",
              "--as", "human/lead", code=2)
    assert "factory 'billing' is not a peer" in proc.stderr
    assert "peers:" in proc.stderr and "factory.yaml" in proc.stderr
    assert git(factory_repo, "rev-parse", "factory") == before  # nothing half-sent


def test_search_is_full_text_and_never_query_syntax(factory_repo: Path) -> None:
    r = factory_repo
    a = send(r, "coder/ada", "-s", "Parser crash", "--body", "stack trace in tokenize()")
    b = send(r, "coder/ada", "-s", "Release", "--body", "ship v2-beta on friday")
    assert [m["id"] for m in gf_json(r, "mail", "search", "tokenize")] == [a]
    assert [m["id"] for m in gf_json(r, "mail", "search", "token*")] == [a]
    assert [m["id"] for m in gf_json(r, "mail", "search", "v2-beta friday")] == [b]
    assert gf_json(r, "mail", "search", "parser friday") == []  # every word must match
    for odd in ('"unbalanced', "a AND OR", "NEAR(", "col:umn", "*"):
        gf(r, "mail", "search", odd)  # exit 0: user text is never query syntax


def test_terminal_control_characters_are_neutralised(factory_repo: Path) -> None:
    r = factory_repo
    mid = send(r, "coder/ada", "-s", "hi\x1b]0;pwned\x07", "--body", "red \x1b[31mtext\x1b[0m")
    shown = gf(r, "mail", "read", mid, "--as", "coder/ada").stdout
    assert "\x1b" not in shown and "\x07" not in shown and "\\x1b[31m" in shown
    assert "\x1b" not in gf(r, "mail", "inbox", "--as", "coder/ada").stdout
    # JSON keeps the exact text, escaped by the encoder.
    assert gf_json(r, "mail", "read", mid, "--as", "coder/ada")["subject"] == "hi\x1b]0;pwned\x07"


def test_export_writes_the_inbox_as_files_and_records_nothing(
    factory_repo: Path, tmp_path: Path
) -> None:
    r = factory_repo
    a = send(r, "coder/ada", "-s", "one", "--body", "first body", "--ack-required")
    b = send(r, "coder/*", "-s", "two | pipes", "--body", "second body")
    gf(r, "mail", "read", a, "--as", "coder/ada")
    outside = tmp_path / "outside.txt"
    outside.write_text("keep me\n")
    out = tmp_path / "inbox"
    out.mkdir()
    (out / f"{b}.md").symlink_to(outside)  # planted: must be replaced, never followed
    events = len(gf_json(r, "log"))
    result = gf_json(r, "mail", "export", "--as", "coder/ada", str(out))
    assert (result["messages"], result["written"], result["unchanged"]) == (2, 2, 0)
    assert outside.read_text() == "keep me\n"
    assert not (out / f"{b}.md").is_symlink()
    assert "second body" in (out / f"{b}.md").read_text()
    assert (out / f"{a}.md").read_text() == git(
        r, "show", f"factory:.factory/mail/{a[:4]}/{a[4]}/{a[5]}/{a[6]}/{a[7]}/{a}.md"
    )
    page = (out / "INBOX.md").read_text()
    assert page.index(b) < page.index(a)  # newest first
    assert "| new |" in page and "| read, ack needed |" in page and "two \\| pipes" in page
    assert sorted(p.name for p in out.iterdir()) == sorted(["INBOX.md", f"{a}.md", f"{b}.md"])
    assert len(gf_json(r, "log")) == events  # exporting is not reading
    again = gf_json(r, "mail", "export", "--as", "coder/ada", str(out))
    assert (again["written"], again["unchanged"]) == (0, 2)


def test_watch_sees_a_message_committed_by_another_process(factory_repo: Path) -> None:
    r = factory_repo
    watcher = subprocess.Popen(
        [sys.executable, "-m", "gitfactory", "mail", "watch", "--as", "coder/ada", "--count", "2",
         "--json", "--timeout", "60s"],
        cwd=r, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert watcher.stderr is not None and watcher.stdout is not None
        assert "watching the inbox of coder/ada" in watcher.stderr.readline()
        send(r, "coder/bob", "-s", "not for ada")
        first = send(r, "coder/ada", "-s", "wake up")
        sent_at = time.monotonic()
        line = watcher.stdout.readline()
        waited = time.monotonic() - sent_at
        assert json.loads(line)["id"] == first
        second = send(r, "coder/*", "-s", "everyone")
        assert json.loads(watcher.stdout.readline())["id"] == second
        assert watcher.wait(timeout=30) == 0
        # It polls the ref every 0.1 s; a loaded machine may still take a while.
        assert waited < 30, f"watch took {waited:.2f}s to see the commit"
    finally:
        watcher.kill()


def test_watch_times_out_with_no_work_exit_code(factory_repo: Path) -> None:
    proc = gf(factory_repo, "mail", "watch", "--as", "coder/ada", "--timeout", "1s", code=3)
    assert "no new message for coder/ada" in proc.stderr


def test_the_index_is_derived_inbox_survives_a_rebuild(factory_repo: Path) -> None:
    r = factory_repo
    mid = send(r, "coder/*", "-s", "persist", "--ack-required")
    gf(r, "mail", "read", mid, "--as", "coder/ada")
    gf(r, "mail", "ack", mid, "--as", "coder/ada")
    before = inbox(r, "coder/ada")
    (r / ".git" / "gitfactory" / "index.sqlite").unlink()
    assert inbox(r, "coder/ada") == before
    gf(r, "index", "rebuild")
    assert inbox(r, "coder/ada") == before and before[0]["read"] and before[0]["acked"]
    assert [m["id"] for m in gf_json(r, "mail", "search", "persist")] == [mid]


def test_watch_unread_hands_out_waiting_mail_first_oldest_first(factory_repo: Path) -> None:
    r = factory_repo
    old = send(r, "coder/ada", "-s", "old")
    newer = send(r, "coder/*", "-s", "newer")
    gf(r, "mail", "read", old, "--as", "coder/ada")
    out = gf(r, "mail", "watch", "--as", "coder/ada", "--unread", "--count", "1", "--json")
    assert json.loads(out.stdout)["id"] == newer  # the read one is skipped
    gf(r, "mail", "read", newer, "--as", "coder/ada")
    gf(r, "mail", "watch", "--as", "coder/ada", "--unread", "--timeout", "1s", code=3)
