from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

from conftest import gf, gf_json, git


def snapshot_checkout(repo: Path) -> dict[str, str]:
    """Every file of the working tree and the user's git state, hashed byte for byte."""
    state = {}
    for path in sorted(repo.rglob("*")):
        rel = path.relative_to(repo).as_posix()
        if path.is_file() and not rel.startswith(".git/"):
            state[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    for name in ("HEAD", "index"):
        p = repo / ".git" / name
        state[f".git/{name}"] = hashlib.sha256(p.read_bytes()).hexdigest() if p.exists() else "-"
    state["status"] = git(repo, "status", "--porcelain=v2", "--branch")
    return state


def test_init_in_empty_repo_creates_orphan_branch_and_leaves_head_unborn(empty_repo: Path) -> None:
    before = snapshot_checkout(empty_repo)
    out = gf_json(empty_repo, "init", "--name", "alpha")
    assert out["created"] is True and out["name"] == "alpha" and out["branch"] == "factory"
    assert snapshot_checkout(empty_repo) == before
    files = git(empty_repo, "ls-tree", "-r", "--name-only", "factory").splitlines()
    # factory.yaml, the living documents and the factory.init event.
    assert files[:4] == [".factory/docs/best-practices.md", ".factory/docs/history.md",
                         ".factory/docs/start-sequence.md", ".factory/factory.yaml"]
    assert len(files) == 5 and files[4].startswith(".factory/log/")
    # HEAD is still unborn: the user's first commit is theirs to make.
    assert git(empty_repo, "symbolic-ref", "HEAD").strip() == "refs/heads/main"
    unborn = subprocess.run(["git", "rev-parse", "--verify", "-q", "HEAD"], cwd=empty_repo)
    assert unborn.returncode != 0
    assert git(empty_repo, "rev-list", "--count", "factory").strip() == "1"


def test_init_in_repo_with_history_touches_nothing_of_the_user(repo: Path) -> None:
    before = snapshot_checkout(repo)
    head = git(repo, "rev-parse", "HEAD")
    gf(repo, "init")
    gf(repo, "log", "append", "note", "hello")
    assert snapshot_checkout(repo) == before
    assert git(repo, "rev-parse", "HEAD") == head
    assert gf_json(repo, "status")["factory"] == "project"  # default name: the directory's


def test_factory_branch_is_an_orphan(repo: Path) -> None:
    gf(repo, "init")
    proc = subprocess.run(["git", "merge-base", "HEAD", "factory"], cwd=repo,
                          capture_output=True, text=True)
    assert proc.returncode == 1 and proc.stdout == ""


def test_init_is_idempotent(repo: Path) -> None:
    first = gf_json(repo, "init", "--name", "beta")
    second = gf_json(repo, "init", "--name", "beta")
    third = gf_json(repo, "init")
    assert first["created"] and not second["created"] and not third["created"]
    assert first["tip"] == second["tip"] == third["tip"]
    assert "already initialised" in gf(repo, "init").stdout


def test_init_refuses_to_rename(repo: Path) -> None:
    gf(repo, "init", "--name", "beta")
    proc = gf(repo, "init", "--name", "gamma", code=1)
    assert "already initialised with the name 'beta'" in proc.stderr
    assert "factory.yaml" in proc.stderr


def test_init_rejects_a_bad_name(repo: Path) -> None:
    proc = gf(repo, "init", "--name", "Bad Name!", code=2)
    assert "invalid factory name" in proc.stderr and "'bad-name'" in proc.stderr
    assert git(repo, "branch", "--list", "factory") == ""


def test_init_outside_a_repository_exits_2(tmp_path: Path) -> None:
    outside = tmp_path / "nowhere"
    outside.mkdir()
    proc = gf(outside, "init", code=2)
    assert "not a git repository" in proc.stderr
    assert "git init" in proc.stderr
    proc = gf(outside, "log", "--json", code=2)
    assert '"NotARepositoryError"' in proc.stderr


def test_init_refuses_a_foreign_factory_branch(repo: Path) -> None:
    git(repo, "branch", "factory")
    proc = gf(repo, "init", code=1)
    assert "not a factory branch" in proc.stderr and "git branch -m" in proc.stderr


def test_factory_yaml_is_commented_for_every_key(repo: Path) -> None:
    gf(repo, "init", "--name", "docs")
    text = git(repo, "show", "factory:.factory/factory.yaml")
    lines = text.splitlines()
    keys = [i for i, line in enumerate(lines) if line and not line.startswith((" ", "#"))]
    assert [lines[i].split(":")[0] for i in keys] == ["protocol", "name", "mail", "watch", "agents", "dispatch", "gates", "workflows"]
    for i in keys:
        assert lines[i - 1].startswith("#"), f"key on line {i + 1} has no comment above it"
    assert "name: docs" in text


def test_commands_need_init_first(repo: Path) -> None:
    proc = gf(repo, "log", code=2)
    assert "gitfactory init" in proc.stderr
    proc = gf(repo, "log", "append", "note", "x", code=2)
    assert "gitfactory init" in proc.stderr


def test_works_from_a_linked_worktree_and_subdirectory(factory_repo: Path, tmp_path: Path) -> None:
    wt = tmp_path / "wt"
    git(factory_repo, "worktree", "add", "-q", str(wt), "-b", "feature")
    (wt / "sub").mkdir()
    gf(wt / "sub", "log", "append", "note", "from the worktree")
    out = gf_json(factory_repo, "log")
    assert [e["text"] for e in out][-1] == "from the worktree"
    out = gf_json(factory_repo, "-C", str(wt), "log", "--limit", "1")
    assert out[0]["text"] == "from the worktree"


def test_init_refuses_a_factory_branch_that_is_checked_out(tmp_path: Path) -> None:
    repo = tmp_path / "r"
    git(tmp_path, "init", "-q", "-b", "factory", str(repo))
    proc = gf(repo, "init", code=1)
    assert "is checked out in" in proc.stderr and "git switch" in proc.stderr
    assert git(repo, "status", "--porcelain") == ""
