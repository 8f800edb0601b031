"""Files anyone with push access can commit: each is refused or listed with a reason,
and no reader, ingestion or plan command crashes or loses a record because of it."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from conftest import event_bytes, event_path, gf, gf_json, git


def plumb(repo: Path, entries: list[tuple[str, bytes | str, str]], *,
          ref: str = "refs/heads/factory", remove: tuple[str, ...] = ()) -> str:
    """Commit (mode, content or object id, path) entries on ``ref`` with git plumbing:
    any mode, any name, gitlinks included."""
    env = {**os.environ, "GIT_INDEX_FILE": str(repo / ".git" / "hostile-index")}

    def run(*args: str, data: bytes | None = None) -> str:
        proc = subprocess.run(["git", *args], cwd=repo, env=env, input=data,
                              capture_output=True, check=True)
        return proc.stdout.decode().strip()

    parent = subprocess.run(["git", "rev-parse", "--verify", "-q", ref], cwd=repo,
                            capture_output=True, text=True).stdout.strip()
    Path(env["GIT_INDEX_FILE"]).unlink(missing_ok=True)
    if parent:
        run("read-tree", parent)
    for path in remove:
        run("update-index", "--force-remove", path)
    for mode, content, path in entries:
        oid = content if isinstance(content, str) else run("hash-object", "-w", "--stdin",
                                                           data=content)
        run("update-index", "--add", "--cacheinfo", f"{mode},{oid},{path}")
    commit = run("commit-tree", run("write-tree"), *(["-p", parent] if parent else []),
                 "-m", "by hand")
    run("update-ref", ref, commit)
    return commit


NOT_UTF8 = b".factory/log/\xff\xfe.json".decode("utf-8", "surrogateescape")


def mail_path(mid: str) -> str:
    return f".factory/mail/{mid[:4]}/{'/'.join(mid[4:8])}/{mid}.md"


def message(mid: str, body: str = "hi\n") -> bytes:
    return (f'---\nid: "{mid}"\nfrom: human/plain\nto: ["coder/ada"]\nsubject: by hand\n'
            f"created: 2026-11-22T10:00:00Z\n---\n\n{body}").encode()


def ingest(repo: Path) -> dict[str, list[object]]:
    out: dict[str, list[object]] = gf_json(repo, "mail", "ingest")
    return out


def test_odd_tree_entries_are_quarantined_or_listed(factory_repo: Path) -> None:
    r = factory_repo
    m1, m2, m4 = (f"01m8000000000000000000000{n}" for n in (1, 2, 4))
    m3 = "01m80001000000000000000003"  # its shard folder is .factory/mail/01m8/0/0/0/1
    # A submodule entry where a message should be, on an agent's branch.
    plumb(r, [("160000", "1" * 40, mail_path(m1))], ref="refs/heads/agent/x")
    # A folder where a message should be, on the factory branch; the same message on
    # a branch. A file where a message's shard folder must be.
    plumb(r, [("100644", b"x\n", mail_path(m2) + "/x"),
              ("100644", b"kept\n", ".factory/mail/01m8/0/0/0/1")])
    plumb(r, [("100644", message(m2), mail_path(m2))], ref="refs/heads/agent/y")
    plumb(r, [("100644", message(m3), mail_path(m3))], ref="refs/heads/agent/z")
    # A file name that is not UTF-8; a message that can still be delivered.
    plumb(r, [("100644", b"{}", NOT_UTF8),
              ("100644", message(m4), mail_path(m4))], ref="refs/heads/agent/w")
    report = ingest(r)
    assert report["delivered"] == [m4]
    reasons = {q["path"]: q["reason"] for q in report["quarantined"]}  # type: ignore[index]
    assert "not a regular file" in reasons[mail_path(m1)]
    assert reasons[mail_path(m2)] == "a folder is at this path on the factory branch"
    assert "where its folder must be" in reasons[mail_path(m3)]
    assert git(r, "show", "factory:.factory/mail/01m8/0/0/0/1") == "kept\n"  # not deleted

    # A name that is not UTF-8 on the factory branch is an invalid record for every
    # reader, not a crash of every reader.
    plumb(r, [("100644", b"{}", NOT_UTF8)])
    status = gf_json(r, "status", code=4)
    assert any("\\xff\\xfe" in e["path"] for e in status["invalid"])
    assert not (r / ".git" / "gitfactory" / "crash.log").exists()


def test_the_same_message_id_twice_and_a_rewound_branch(factory_repo: Path) -> None:
    r = factory_repo
    mid = "01m80000000000000000000005"
    plumb(r, [("100644", message(mid, "first\n"), mail_path(mid))], ref="refs/heads/agent/a")
    plumb(r, [("100644", message(mid, "second\n"), mail_path(mid))], ref="refs/heads/agent/b")
    report = ingest(r)
    assert report["delivered"] == [mid]
    [refused] = report["quarantined"]
    assert refused["reason"] == "another message with this id came from another branch"  # type: ignore[index]

    # The factory branch is rewound past the delivery (a force-push): delivered again,
    # as a rebuilt index would.
    before = git(r, "rev-parse", "factory~1").strip()
    git(r, "update-ref", "refs/heads/factory", before)
    assert gf_json(r, "mail", "inbox", "--as", "coder/ada") == []
    assert ingest(r)["delivered"] == [mid]
    assert [m["id"] for m in gf_json(r, "mail", "inbox", "--as", "coder/ada")] == [mid]


def test_a_mode_change_alone_is_seen(factory_repo: Path) -> None:
    r = factory_repo
    eid = "01m80000000000000000000011"
    data = event_bytes(eid, text="fine")
    plumb(r, [("120000", data, event_path(eid))])
    assert "symlinks are refused" in gf(r, "log", code=4).stderr
    plumb(r, [("100644", data, event_path(eid))])
    assert "fine" in [e["text"] for e in gf_json(r, "log")]  # exit 0: it is valid now


def test_malformed_plan_events_are_ignored_not_fatal(factory_repo: Path) -> None:
    r = factory_repo
    task = gf_json(r, "task", "add", "T")["id"]
    e1, e2, e3 = (f"01m800000000000000000000{n}" for n in (21, 22, 23))
    plumb(r, [
        ("100644", event_bytes(e1, kind="task.edited", task=task,
                               data={"add_labels": 5, "title": "x\ny"}), event_path(e1)),
        ("100644", event_bytes(e2, kind="task.edited", task=task,
                               data={"add_labels": "abc", "remove_labels": 3}), event_path(e2)),
        ("100644", event_bytes(e3, kind="task.claimed", actor="coder/ada", task=task,
                               data={"seq": 0, "lease_until": 10**17}), event_path(e3)),
    ])
    shown = gf_json(r, "task", "show", task)
    assert (shown["title"], shown["labels"], shown["state"]) == ("T", [], "submitted")


def test_plan_edits_are_checked_like_task_add(factory_repo: Path) -> None:
    r = factory_repo
    a = gf_json(r, "task", "add", "A")["id"]
    tip = git(r, "rev-parse", "factory")
    assert "title" in gf(r, "task", "edit", a, "--title", "x" * 300, code=2).stderr
    assert "labels" in gf(r, "task", "edit", a, "--add-label", "BAD LABEL", code=2).stderr
    gf(r, "task", "split", a, "--into", "child one", "--into", "", code=2)
    assert git(r, "rev-parse", "factory") == tip  # nothing half done
    # A successor that waits for the task it replaces could never replace it.
    c = gf_json(r, "task", "add", "C", "--depends-on", a)["id"]
    proc = gf(r, "task", "supersede", a, "--by", c, code=1)
    assert "waits for" in proc.stderr
    d = gf_json(r, "task", "add", "D")["id"]
    gf(r, "task", "cancel", d)
    assert "canceled" in gf(r, "task", "supersede", a, "--by", d, code=1).stderr
    assert json.loads(gf(r, "task", "show", a, "--json").stdout)["state"] == "submitted"
