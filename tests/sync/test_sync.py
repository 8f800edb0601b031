"""`gitfactory sync`: three clones and one bare remote, over file:// and git://."""

from __future__ import annotations

import json
import os
from pathlib import Path

from tests.conftest import commit_on_factory, event_bytes, event_path, gf, gf_json, git
from tests.sync.conftest import bare_remote, make_clones, records


def note(clone: Path, text: str) -> None:
    gf(clone, "log", "append", "note", text)


def test_records_written_anywhere_reach_every_clone(
    tmp_path: Path, shared_remote: tuple[str, Path]
) -> None:
    url, bare = shared_remote
    a, b, c = make_clones(tmp_path, url)
    for n in range(3):
        for clone in (a, b, c):
            note(clone, f"{clone.name} {n}")  # unpushed, on three diverging clones
    for clone in (a, b, c, a, b):
        gf(clone, "sync")
    assert records(a) == records(b) == records(c) == records(bare)
    assert all(git(x, "config", "branch.factory.remote").strip() == "origin" for x in (a, b, c))
    texts = [e["text"] for e in gf_json(c, "log", "--json", "--kind", "note")]
    assert sorted(texts) == sorted(f"{x} {n}" for x in "abc" for n in range(3))


def test_unpushed_records_survive_every_path(tmp_path: Path) -> None:
    bare = bare_remote(tmp_path)
    a, b = make_clones(tmp_path, bare.as_uri(), ("a", "b"))
    note(a, "a only")
    mine = records(a)
    # --no-push takes in without sending; the remote never saw a's note
    note(b, "b only")
    gf(b, "sync")
    report = gf_json(a, "sync", "--no-push", "--json")
    assert report["received"] == {"event": 1} and not report["pushed"]
    assert mine <= records(a) and not mine <= records(bare)
    # a plain `git fetch` moved the tracking ref; the next sync merges and pushes
    gf(b, "sync")
    git(a, "fetch", "-q", "origin")
    gf(a, "sync")
    assert mine <= records(bare) and records(a) == records(bare)


def test_a_fresh_clone_joins_with_one_command(tmp_path: Path) -> None:
    bare = bare_remote(tmp_path)
    (a,) = make_clones(tmp_path, bare.as_uri(), ("a",))
    tid = gf(a, "task", "add", "ship it").stdout.strip()
    note(a, "history")
    gf(a, "sync")
    git(tmp_path, "clone", "-q", bare.as_uri(), str(tmp_path / "new"))
    new = tmp_path / "new"
    shown = gf_json(new, "task", "show", tid[:8], "--json")
    assert shown["title"] == "ship it"
    assert records(new) == records(a)
    assert git(new, "config", "branch.factory.remote").strip() == "origin"
    # init there says so instead of creating an unrelated factory
    git(tmp_path, "clone", "-q", bare.as_uri(), str(tmp_path / "new2"))
    out = gf(tmp_path / "new2", "init").stdout
    assert "joined factory 'shared'" in out and "nothing was created" in out
    assert git(tmp_path / "new2", "rev-parse", "factory") == git(a, "rev-parse", "factory")


def test_init_fetches_first_and_joins_rather_than_create_a_second_root(tmp_path: Path) -> None:
    bare = bare_remote(tmp_path)
    (a,) = make_clones(tmp_path, bare.as_uri(), ("a",))
    late = tmp_path / "late"
    git(tmp_path, "init", "-q", str(late))
    git(late, "remote", "add", "origin", bare.as_uri())  # never fetched
    result = gf_json(late, "init", "--json")
    assert result["joined"] == "origin" and not result["created"]
    assert git(late, "rev-parse", "factory") == git(a, "rev-parse", "factory")


def test_a_force_push_back_is_healed_and_recorded(
    tmp_path: Path, shared_remote: tuple[str, Path]
) -> None:
    url, bare = shared_remote
    a, b, _ = make_clones(tmp_path, url)
    old = git(a, "rev-parse", "factory").strip()
    for n in range(4):
        note(a, f"kept {n}")
    gf(a, "sync")
    gf(b, "sync")
    # someone rewinds the remote's factory branch
    git(a, "push", "-q", "--force", url, f"{old}:refs/heads/factory")
    assert not records(a) <= records(bare)
    report = gf_json(b, "sync", "--json")
    assert report["rewound"] and report["restored"] == 4 and report["pushed"]
    assert records(a) <= records(bare)
    rewound = gf_json(b, "log", "--json", "--kind", "sync.rewound")
    assert len(rewound) == 1 and rewound[0]["data"]["count"] == 4
    # the clone that wrote them syncs too: nothing lost, nothing twice
    gf(a, "sync")
    assert records(a) == records(b) == records(bare)
    verified = gf_json(a, "verify", "--json")  # the clone that wrote them reads what happened
    assert verified["ok"] and [r["count"] for r in verified["remote_rewinds"]] == [4]
    assert "dropping 4 records" in gf(a, "verify").stdout


def test_a_remote_of_another_factory_is_refused(tmp_path: Path) -> None:
    bare = bare_remote(tmp_path)
    (a,) = make_clones(tmp_path, bare.as_uri(), ("a",))
    other = tmp_path / "other"
    git(tmp_path, "init", "-q", str(other))
    gf(other, "init", "--name", "other")
    git(other, "push", "-q", "--force", bare.as_uri(), "factory:factory")
    before = git(a, "rev-parse", "factory")
    proc = gf(a, "sync", code=1)
    assert "shares no history" in proc.stderr and "another factory" in proc.stderr
    assert git(a, "rev-parse", "factory") == before
    theirs = git(other, "rev-parse", "factory").strip()
    assert git(a, "rev-parse", f"refs/gitfactory/quarantine/origin/{theirs}").strip() == theirs


def test_files_outside_the_protocol_are_refused_and_quarantined(tmp_path: Path) -> None:
    bare = bare_remote(tmp_path)
    a, b = make_clones(tmp_path, bare.as_uri(), ("a", "b"))
    good = "01m8000000000000000000abcd"
    huge = "01m8000000000000000000abce"
    bad = commit_on_factory(b, {
        ".factory/notes.txt": b"not a protocol file\n",
        event_path(good): event_bytes(good, text="fine"),
        event_path(huge): event_bytes(huge, text="x" * (1024 * 1024 + 10)),
    })
    git(b, "push", "-q", "origin", "factory")
    before = git(a, "rev-parse", "factory")
    proc = gf(a, "sync", "--json", code=1)
    error = json.loads(proc.stderr)
    reasons = {p["path"]: p["reason"] for p in error["problems"]}
    assert set(reasons) == {".factory/notes.txt", event_path(huge)}
    assert "not a file of the factory protocol" in reasons[".factory/notes.txt"]
    assert "over the limit" in reasons[event_path(huge)]
    assert git(a, "rev-parse", "factory") == before  # untouched: not even the good record
    assert git(a, "rev-parse", f"refs/gitfactory/quarantine/origin/{bad}").strip() == bad


def test_human_edited_files_merge_three_way(tmp_path: Path) -> None:
    bare = bare_remote(tmp_path)
    a, b = make_clones(tmp_path, bare.as_uri(), ("a", "b"))
    base = "# Rules\n\nline one\n\nline two\n\nline three\n"
    gf(a, "docs", "edit", "rules", "--file", "-", input=base)
    gf(a, "sync")
    gf(b, "sync")
    gf(a, "docs", "edit", "rules", "--file", "-", input=base.replace("one", "ONE"))
    gf(b, "docs", "edit", "rules", "--file", "-", input=base.replace("three", "THREE"))
    gf(a, "sync")
    report = gf_json(b, "sync", "--json")
    assert report["merged"] == [".factory/docs/rules.md"]
    merged = git(b, "show", "factory:.factory/docs/rules.md")
    assert "ONE" in merged and "THREE" in merged
    # both change the same line: refused with both texts, nothing merged
    gf(a, "sync")
    gf(a, "docs", "edit", "rules", "--file", "-", input=merged.replace("line two", "two (a)"))
    gf(b, "docs", "edit", "rules", "--file", "-", input=merged.replace("line two", "two (b)"))
    gf(a, "sync")
    before = git(b, "rev-parse", "factory")
    proc = gf(b, "sync", code=1)
    assert "two (a)" in proc.stderr and "two (b)" in proc.stderr
    assert "--resolve .factory/docs/rules.md=ours|theirs|FILE" in proc.stderr
    assert git(b, "rev-parse", "factory") == before
    typo = gf(b, "sync", "--resolve", "rules=theirs", code=2)
    assert "not a human-edited file of the factory" in typo.stderr
    settled = tmp_path / "settled.md"
    settled.write_text(merged.replace("line two", "two (a and b)"))
    gf(b, "sync", "--resolve", f".factory/docs/rules.md={settled}")
    gf(a, "sync")
    assert "two (a and b)" in git(a, "show", "factory:.factory/docs/rules.md")


def test_a_merged_factory_yaml_that_does_not_parse_is_refused(tmp_path: Path) -> None:
    bare = bare_remote(tmp_path)
    a, b = make_clones(tmp_path, bare.as_uri(), ("a", "b"))
    text = git(a, "show", "factory:.factory/factory.yaml")
    commit_on_factory(b, {".factory/factory.yaml": (text + "\nnot: [valid\n").encode()})
    git(b, "push", "-q", "origin", "factory")
    before = git(a, "rev-parse", "factory")
    proc = gf(a, "sync", code=1)
    assert ".factory/factory.yaml: merged, it cannot be used" in proc.stderr
    assert git(a, "rev-parse", "factory") == before


def test_an_unreachable_remote_changes_nothing(tmp_path: Path) -> None:
    bare = bare_remote(tmp_path)
    (a,) = make_clones(tmp_path, bare.as_uri(), ("a",))
    note(a, "offline")
    before = git(a, "rev-parse", "factory")
    bare.rename(tmp_path / "gone.git")
    proc = gf(a, "sync", code=6)
    assert "could not fetch from origin" in proc.stderr
    assert git(a, "rev-parse", "factory") == before
    (tmp_path / "gone.git").rename(bare)
    gf(a, "sync")
    assert records(a) == records(bare)


def test_what_would_stop_every_clone_is_refused(tmp_path: Path) -> None:
    bare = bare_remote(tmp_path)
    a, b = make_clones(tmp_path, bare.as_uri(), ("a", "b"))
    before = git(a, "rev-parse", "factory")
    # a peer deletes factory.yaml
    commit_on_factory(b, {}, remove=[".factory/factory.yaml"])
    git(b, "push", "-q", "origin", "factory")
    proc = gf(a, "sync", code=1)
    assert "a factory cannot run without its factory.yaml" in proc.stderr
    assert git(a, "rev-parse", "factory") == before
    gf(a, "status")  # still works
    # the remote's branch is made to point at a tree: refused, not a crash
    tree = git(a, "rev-parse", "factory^{tree}").strip()
    git(a, "push", "-q", "--force", bare.as_uri(), f"{before.strip()}:refs/heads/factory")
    (bare / "refs" / "heads" / "factory").write_text(tree + "\n")  # git itself refuses this
    proc = gf(a, "sync", code=1)
    assert "points at a tree" in proc.stderr
    assert git(a, "rev-parse", "factory") == before
    assert "not a commit" in gf(a, "status").stdout


def test_a_fresh_clone_does_not_join_a_remote_that_breaks_the_protocol(tmp_path: Path) -> None:
    bare = bare_remote(tmp_path)
    a, b = make_clones(tmp_path, bare.as_uri(), ("a", "b"))
    bad = commit_on_factory(b, {"README.evil": b"outside\n"},
                            symlinks={".factory/docs/link.md": "/etc/passwd"})
    git(b, "push", "-q", "origin", "factory")
    git(tmp_path, "clone", "-q", bare.as_uri(), str(tmp_path / "new"))
    new = tmp_path / "new"
    proc = gf(new, "sync", code=1)
    assert "README.evil" in proc.stderr and ".factory/docs/link.md: a symlink" in proc.stderr
    assert git(new, "branch", "--list", "factory") == ""  # not joined
    assert git(new, "rev-parse", f"refs/gitfactory/quarantine/origin/{bad}").strip() == bad
    gf(new, "status", code=2)  # no factory here, and no crash


def test_a_record_changed_on_the_remote_converges_to_its_first_bytes(tmp_path: Path) -> None:
    bare = bare_remote(tmp_path)
    a, b = make_clones(tmp_path, bare.as_uri(), ("a", "b"))
    tid = gf(a, "task", "add", "victim").stdout.strip()
    gf(a, "sync")
    gf(b, "sync")
    path = git(b, "ls-tree", "-r", "--name-only", "factory", ".factory/tasks").split()[0]
    hacked = git(b, "show", f"factory:{path}").replace("victim", "HACKED")
    commit_on_factory(b, {path: hacked.encode()})
    git(b, "push", "-q", "origin", "factory")
    git(tmp_path, "clone", "-q", bare.as_uri(), str(tmp_path / "e"))
    e = tmp_path / "e"
    gf(e, "status")  # joins the tampered branch as it is (verify tells)
    for clone in (a, e, a, e):
        gf(clone, "sync")
    titles = {c.name: gf_json(c, "task", "show", tid, "--json")["title"] for c in (a, e)}
    assert titles == {"a": "victim", "e": "victim"}
    tips = [git(c, "rev-parse", "factory") for c in (a, e)]
    gf(a, "sync")
    gf(e, "sync")
    assert [git(c, "rev-parse", "factory") for c in (a, e)] == tips  # no endless merges


def test_a_resolution_that_cannot_be_used_is_the_users_error(tmp_path: Path) -> None:
    bare = bare_remote(tmp_path)
    a, b = make_clones(tmp_path, bare.as_uri(), ("a", "b"))
    text = git(a, "show", "factory:.factory/factory.yaml")
    gf(a, "config", "edit", "--file", "-", input=text.replace("max_body: 1MiB", "max_body: 2MiB"))
    gf(b, "config", "edit", "--file", "-", input=text.replace("max_body: 1MiB", "max_body: 3MiB"))
    gf(a, "sync")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [\n")
    proc = gf(b, "sync", "--resolve", f".factory/factory.yaml={bad}", code=2)
    assert "--resolve .factory/factory.yaml=FILE: that text cannot be used" in proc.stderr
    assert git(b, "for-each-ref", "refs/gitfactory/quarantine") == ""
    big = tmp_path / "big.md"
    big.write_bytes(b"x" * (1024 * 1024 + 1))
    proc = gf(b, "sync", "--resolve", f".factory/factory.yaml={big}", code=2)
    assert "over the limit" in proc.stderr
    proc = gf(b, "sync", "--resolve", ".factory/factory.yaml=theirs")
    assert "max_body: 2MiB" in git(b, "show", "factory:.factory/factory.yaml")
    assert "factory.yaml changed" in proc.stdout and "came in changed from origin" in proc.stderr
    changed = gf_json(b, "log", "--json", "--kind", "config.changed")[-1]
    assert changed["actor"] == "factory/sync" and changed["data"]["remote"] == "origin"


def test_a_deleted_remote_branch_is_recorded_once(tmp_path: Path) -> None:
    bare = bare_remote(tmp_path)
    (a,) = make_clones(tmp_path, bare.as_uri(), ("a",))
    gf(a, "log", "append", "note", "kept")
    gf(a, "sync")
    git(bare, "branch", "-D", "factory")
    for _ in range(3):
        gf(a, "sync", "--no-push")
    assert len(gf_json(a, "log", "--json", "--kind", "sync.rewound")) == 1
    gf(a, "sync")
    assert records(a) == records(bare)


def test_a_backdated_rewrite_of_a_record_does_not_win(tmp_path: Path) -> None:
    bare = bare_remote(tmp_path)
    a, b = make_clones(tmp_path, bare.as_uri(), ("a", "b"))
    note_id = gf(a, "log", "append", "note", "original text").stdout.strip()
    gf(a, "sync")
    gf(b, "sync")
    path = event_path(note_id)
    original = git(b, "show", f"factory:{path}")
    # delete it, then add it again with other bytes, both commits dated 1970
    old = {**os.environ, "GIT_COMMITTER_DATE": "@100000 +0000", "GIT_AUTHOR_DATE": "@100000 +0000"}
    os.environ.update({k: old[k] for k in ("GIT_COMMITTER_DATE", "GIT_AUTHOR_DATE")})
    try:
        commit_on_factory(b, {}, remove=[path], message="del")
        commit_on_factory(b, {path: original.replace("original", "EVIL").encode()}, message="re")
    finally:
        for k in ("GIT_COMMITTER_DATE", "GIT_AUTHOR_DATE"):
            os.environ.pop(k, None)
    git(b, "push", "-q", "origin", "factory")
    out = gf(a, "sync").stdout
    assert "changed after being written" in out
    gf(b, "sync")
    for clone in (a, b):
        assert "original text" in git(clone, "show", f"factory:{path}")
    assert "original text" in git(bare, "show", f"factory:{path}")


def test_init_does_not_make_a_second_factory_beside_a_refused_one(tmp_path: Path) -> None:
    bare = bare_remote(tmp_path)
    a, b = make_clones(tmp_path, bare.as_uri(), ("a", "b"))
    commit_on_factory(b, {"README.evil": b"outside\n"})
    git(b, "push", "-q", "origin", "factory")
    git(tmp_path, "clone", "-q", bare.as_uri(), str(tmp_path / "new"))
    proc = gf(tmp_path / "new", "init", code=1)
    assert "did not join it" in proc.stderr and "gitfactory sync origin" in proc.stderr
    assert git(tmp_path / "new", "branch", "--list", "factory") == ""
