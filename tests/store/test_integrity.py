"""Append-only, enforced and verified (issue 11): the hook refuses a commit that would
lose records, `verify` finds one made with the hooks bypassed, `--repair` restores the
records byte for byte, and a shared bare remote refuses such a push."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from conftest import commit_on_factory, gf, gf_json, git

NO_HOOKS = ("-c", "core.hooksPath=/dev/null")


def records(repo: Path, rev: str = "factory") -> dict[str, str]:
    """Every file under .factory/log of ``rev``, path to blob."""
    out = git(repo, "ls-tree", "-r", rev, "--", ".factory/log")
    return {line.split("\t")[1]: line.split()[2] for line in out.splitlines()}


def stale_worktree(repo: Path, n: int = 6) -> Path:
    """The recipe the issue found: a worktree of the factory branch, then records
    written by gitfactory meanwhile, which that worktree's index does not have."""
    wt = repo.parent / "fc"
    git(repo, "worktree", "add", "-q", str(wt), "factory")
    for i in range(n):
        gf(repo, "log", "append", "note", f"written meanwhile {i}")
    with (wt / ".factory" / "factory.yaml").open("a") as fh:
        fh.write("# edited in a worktree\n")
    return wt


def run_git(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=False)


def test_the_hook_refuses_a_commit_that_would_lose_records(factory_repo: Path) -> None:
    r = factory_repo
    gf(r, "hooks", "install")
    wt = stale_worktree(r)
    before = records(r)
    proc = run_git(wt, "commit", "-qam", "edit config")
    assert proc.returncode != 0
    assert "deletes or changes" in proc.stderr and "6 record(s)" in proc.stderr
    assert "gitfactory config edit" in proc.stderr
    assert all(path in proc.stderr for path in list(before)[-6:])
    assert records(r) == before  # nothing lost
    # gitfactory's own writes never trip it, and a commit that only changes
    # human-edited files on the current tip is fine.
    gf(r, "log", "append", "note", "after")
    git(wt, "reset", "-q", "--hard", "factory")  # a checkout brought up to date
    (wt / ".factory" / "factory.yaml").write_text(
        git(r, "show", "factory:.factory/factory.yaml") + "# fine\n")
    assert run_git(wt, "commit", "-qam", "edit on the tip").returncode == 0
    assert gf_json(r, "verify", "--json")["ok"] is True
    # Moving the branch back names no old value to the hook: refused all the same.
    git(r, "worktree", "remove", "--force", str(wt))
    before = records(r)
    for argv in (["branch", "-f", "factory", "factory~3"],
                 ["update-ref", "refs/heads/factory", "factory~2"],
                 ["branch", "-D", "factory"]):
        proc = run_git(r, *argv)
        assert proc.returncode != 0 and "refusing to" in proc.stderr, argv
    assert records(r) == before


def test_verify_finds_a_deletion_and_repair_restores_it_byte_for_byte(
    factory_repo: Path,
) -> None:
    r = factory_repo
    wt = stale_worktree(r)
    written = records(r)
    proc = run_git(wt, *NO_HOOKS, "commit", "-qam", "edit config")
    assert proc.returncode == 0, proc.stderr
    culprit = git(r, "rev-parse", "factory").strip()
    lost = {p: b for p, b in written.items() if p not in records(r)}
    assert len(lost) == 6
    report = gf_json(r, "verify", "--json", code=1)
    assert report["ok"] is False
    assert {v["path"] for v in report["violations"]} == set(lost)
    assert {(v["how"], v["commit"]) for v in report["violations"]} == {("deleted", culprit)}
    text = gf(r, "verify", code=1).stdout
    assert "6 records deleted or changed" in text and culprit[:10] in text
    assert "verify --repair" in text
    status = gf(r, "status").stdout
    assert "integrity 6 records deleted or changed" in status
    repaired = gf_json(r, "verify", "--repair", "--json")
    assert repaired["ok"] is True and repaired["repaired"]["count"] == 6
    now = records(r)
    assert {p: now[p] for p in lost} == lost  # the same blobs: byte for byte
    [event] = gf_json(r, "log", "--kind", "factory.repaired")
    assert event["data"]["count"] == 6
    assert {x["path"] for x in event["data"]["records"]} == set(lost)
    assert gf_json(r, "verify", "--json")["ok"] is True
    assert gf_json(r, "verify", "--full", "--json")["ok"] is True
    assert "integrity every record intact" in gf(r, "status").stdout
    # The notes are readable again through gitfactory.
    texts = [e["text"] for e in gf_json(r, "log", "--kind", "note")]
    assert [t for t in texts if t.startswith("written meanwhile")] == [
        f"written meanwhile {i}" for i in range(6)]


def test_a_changed_record_is_found_and_restored(factory_repo: Path) -> None:
    r = factory_repo
    gf(r, "log", "append", "note", "the original")
    [path] = [p for p in records(r) if p not in records(r, "factory~1")]
    original = git(r, "show", f"factory:{path}")
    commit_on_factory(r, {path: original.replace("the original", "rewritten").encode()},
                      message="rewrite history")
    [v] = gf_json(r, "verify", "--json", code=1)["violations"]
    assert v["path"] == path and v["how"] == "changed" and v["subject"] == "rewrite history"
    gf(r, "verify", "--repair")
    assert git(r, "show", f"factory:{path}") == original


def test_moving_the_branch_back_is_found(factory_repo: Path) -> None:
    r = factory_repo
    gf(r, "verify")  # checked up to here
    for i in range(3):
        gf(r, "log", "append", "note", f"n{i}")
    gf(r, "verify")
    git(r, *NO_HOOKS, "update-ref", "refs/heads/factory", "factory~3")
    report = gf_json(r, "verify", "--json", code=1)
    assert len(report["violations"]) == 3
    assert all(v["commit"] is None and "moved" in v["subject"] for v in report["violations"])
    # A walk from scratch (--full, or the state file lost) still sees the move: the
    # branch's reflog remembers it.
    again = gf_json(r, "verify", "--full", "--json", code=1)
    assert {v["path"] for v in again["violations"]} == {v["path"] for v in report["violations"]}
    (r / ".git" / "gitfactory" / "verify.json").write_text('{"version": 1, "tip": "zz"}')
    assert len(gf_json(r, "verify", "--json", code=1)["violations"]) == 3
    gf(r, "verify", "--repair")
    notes = [e["text"] for e in gf_json(r, "log", "--kind", "note")]
    assert notes == ["n0", "n1", "n2"]


def test_verify_is_incremental(factory_repo: Path) -> None:
    r = factory_repo
    first = gf_json(r, "verify", "--json")
    assert first["full"] is True and first["commits_read"] >= 1
    assert gf_json(r, "verify", "--json")["commits_read"] == 0
    gf(r, "log", "append", "note", "one more")
    again = gf_json(r, "verify", "--json")
    assert again["commits_read"] == 1 and again["full"] is False
    # The remembered state is derived: deleting it means one full walk again.
    (r / ".git" / "gitfactory" / "verify.json").write_text("{not json")
    assert gf_json(r, "verify", "--json")["full"] is True


def test_a_shared_remote_refuses_a_push_that_loses_records(
    factory_repo: Path, tmp_path: Path
) -> None:
    r = factory_repo
    remote = tmp_path / "shared.git"
    git(tmp_path, "init", "-q", "--bare", str(remote))
    git(r, "push", "-q", str(remote), "factory")
    out = gf_json(remote, "hooks", "install", "--server", "--json")
    assert out["installed"] is True and out["path"].endswith("pre-receive")
    stale = git(r, "rev-parse", "factory").strip()
    for i in range(3):
        gf(r, "log", "append", "note", f"n{i}")
    git(r, "push", "-q", str(remote), "factory")  # a fast-forward with new records: fine
    # Someone pushes a commit made on the old tip, dropping the three records.
    tree = git(r, "rev-parse", f"{stale}^{{tree}}").strip()
    bad = git(r, "commit-tree", tree, "-p", "factory", "-m", "drop them").strip()
    proc = run_git(r, "push", str(remote), f"{bad}:refs/heads/factory")
    assert proc.returncode != 0 and "deletes or changes" in proc.stderr
    assert git(remote, "rev-parse", "factory") == git(r, "rev-parse", "factory")
    forced = run_git(r, "push", "-f", str(remote), f"{stale}:refs/heads/factory")
    assert forced.returncode != 0  # moving it back loses them too
    state = json.loads(gf(remote, "hooks", "status", "--server", "--json").stdout)
    assert state["installed"] is True
