"""Plain git is a first-class client (DESIGN I7): records written with git alone."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from conftest import gf, gf_json, git

SCRIPT = Path(__file__).resolve().parents[2] / "protocol" / "examples" / "append-event.sh"


def test_shell_script_with_only_git_writes_an_event(factory_repo: Path) -> None:
    before = (factory_repo / ".git" / "index").read_bytes()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GITFACTORY")}
    # The script runs with a PATH where gitfactory's Python is irrelevant: only bash + git.
    proc = subprocess.run(["bash", str(SCRIPT), "deploy", 'shipped "v2" \\o/', "ops/shell"],
                          cwd=factory_repo, capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr
    record_id = proc.stdout.strip()
    events = gf_json(factory_repo, "log")
    assert events[-1]["id"] == record_id
    assert events[-1]["text"] == 'shipped "v2" \\o/' and events[-1]["actor"] == "ops/shell"
    assert "shipped" in gf(factory_repo, "log", "--kind", "deploy").stdout
    assert (factory_repo / ".git" / "index").read_bytes() == before
    assert gf_json(factory_repo, "status")["invalid"] == []


def test_a_commit_in_a_worktree_of_the_factory_branch_is_a_valid_write(
    factory_repo: Path, tmp_path: Path
) -> None:
    wt = tmp_path / "factory-wt"
    git(factory_repo, "worktree", "add", "-q", str(wt), "factory")
    record_id = "01m80000000000000000000000"
    path = wt / ".factory" / "log" / "01m8" / "0" / "0" / "0" / "0" / f"{record_id}.json"
    path.parent.mkdir(parents=True)
    path.write_text(
        '{"id": "01m80000000000000000000000", "kind": "note", "actor": "human/wt",\n'
        ' "time": "2026-11-22T10:00:00Z", "text": "by hand"}\n'
    )
    git(wt, "add", ".")
    git(wt, "commit", "-qm", "a note by hand")
    events = gf_json(factory_repo, "log", "--as", "human/wt")
    assert [(e["id"], e["text"], e["task"], e["data"]) for e in events] == [
        (record_id, "by hand", None, {})
    ]
    # gitfactory keeps writing on top of the hand-made commit.
    gf(factory_repo, "log", "append", "note", "after")
    assert git(wt, "log", "-1", "--format=%s", "factory").startswith("log: note")
