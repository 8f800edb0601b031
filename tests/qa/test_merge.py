"""The merge step: task branches integrated into their target by fast-forward, merge
commit or squash, protocol files kept out of code, conflicts handed back to the agent,
and a user's dirty checkout of the target never moved."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest
from conftest import checkout_state, commit_on_factory, gf, gf_json, git

# A scripted coder: commits a file named after its task; "protocol" in the title also
# commits a file under .factory/, "shared" writes shared.txt. Sent back after a merge
# conflict, it merges the target in, resolves, and commits.
CODER = r'''
import os, subprocess, sys
from pathlib import Path

def git(*args):
    subprocess.run(["git", *args], check=True)

task = os.environ["GITFACTORY_TASK"]
prompt = Path(os.environ["GITFACTORY_PROMPT_FILE"]).read_text()
title = prompt.splitlines()[0].split(": ", 1)[1]
if "Merge conflict" in prompt:
    subprocess.run(["git", "merge", "-q", "release"], capture_output=True)
    Path("shared.txt").write_text("both sides, resolved\n")
    git("add", "shared.txt")
    git("commit", "-qm", "bring release in, resolve shared.txt")
    sys.exit(0)
Path(f"{task[:8]}.txt").write_text(title + "\n")
git("add", f"{task[:8]}.txt")
if "protocol" in title:
    Path(".factory/notes").mkdir(parents=True)
    Path(".factory/notes/n.md").write_text("a note committed on the task branch\n")
    git("add", ".factory")
if "shared" in title:
    Path("shared.txt").write_text("from the task\n")
    git("add", "shared.txt")
git("commit", "-qm", f"work: {title}")
'''


def configure(repo: Path, tmp: Path, workflows: dict[str, str]) -> None:
    (tmp / "coder.py").write_text(CODER)
    text = "".join(
        f"  {name}:\n    steps:\n      implement:\n        role: coder\n        max_attempts: 2\n"
        f"        on_success: merge\n      merge:\n        action: merge\n{merge}"
        "        on_failure: implement\n"
        for name, merge in workflows.items()
    )
    config = (f'protocol: "0.3"\nname: test\ndispatch:\n  worktrees: ../worktrees\n'
              f"agents:\n  ada:\n    role: coder\n    command: {sys.executable} {tmp / 'coder.py'}\n"
              f"workflows:\n{text}")
    commit_on_factory(repo, {".factory/factory.yaml": config.encode()})


def results(repo: Path) -> dict[str, list[dict[str, object]]]:
    out: dict[str, list[dict[str, object]]] = {}
    for e in gf_json(repo, "log", "--kind", "merge.result"):
        out.setdefault(e["task"], []).append(e["data"])
    return out


def tree(repo: Path, rev: str) -> list[str]:
    return git(repo, "ls-tree", "-r", "--name-only", rev).split()


def test_fast_forward_merge_commit_and_squash_keep_protocol_files_out(
    factory_repo: Path, tmp_path: Path
) -> None:
    r = factory_repo
    for name in ("rel-ff", "rel-ff2", "rel-merge", "rel-squash"):
        git(r, "branch", name)
    configure(r, tmp_path, {
        "ff": "        strategy: ff\n        into: rel-ff\n",
        "ff2": "        strategy: ff\n        into: rel-ff2\n",
        "merge": "        strategy: merge\n        into: rel-merge\n",
        "squash": "        strategy: squash\n        into: rel-squash\n",
    })  # fmt: skip
    before = checkout_state(r)
    start = git(r, "rev-parse", "HEAD").strip()
    ids = {w: gf_json(r, "task", "add", title, "--workflow", w)["id"] for w, title in [
        ("ff", "Plain change"), ("ff2", "Change with protocol notes"),
        ("merge", "Merged change"), ("squash", "Squashed protocol change")]}
    out = gf(r, "daemon", "--burst").stdout
    assert "into rel-squash" in out

    assert {w: gf_json(r, "task", "show", t)["state"] for w, t in ids.items()} == dict.fromkeys(
        ids, "completed")
    merged = {w: results(r)[t][-1] for w, t in ids.items()}
    branch = {w: str(m["branch"]) for w, m in merged.items()}
    # ff: the target is now exactly the task branch.
    assert merged["ff"]["done_as"] == "ff"
    assert git(r, "rev-parse", "rel-ff") == git(r, "rev-parse", branch["ff"])
    # ff of a branch carrying .factory/ files: done as a merge commit without them.
    assert merged["ff2"]["done_as"] == "merge"
    assert ".factory/notes/n.md" in tree(r, branch["ff2"])
    assert not [p for p in tree(r, "rel-ff2") if p.startswith(".factory")]
    # merge: a merge commit with both parents.
    parents = git(r, "log", "-1", "--format=%P", "rel-merge").split()
    assert parents == [start, git(r, "rev-parse", branch["merge"]).strip()]
    # squash: one new commit on the target, the task's file in, protocol files out.
    squash = git(r, "log", "-1", "--format=%P%n%B", "rel-squash").splitlines()
    assert squash[0] == start and squash[1] == "Squashed protocol change"
    assert f"Factory-Task: {ids['squash']}" in squash
    files = tree(r, "rel-squash")
    assert f"{ids['squash'][:8]}.txt" in files and not [p for p in files if ".factory" in p]
    for w, m in merged.items():
        assert m["commit"] == git(r, "rev-parse", str(m["target"])).strip(), w
    # The user's checkout and its branch were never touched; finished worktrees are gone.
    assert checkout_state(r) == before
    assert not [p for p in (r.parent / "worktrees").iterdir() if not p.name.startswith(".")]


def test_a_conflict_goes_back_to_the_agent_with_the_report(
    factory_repo: Path, tmp_path: Path
) -> None:
    r = factory_repo
    git(r, "branch", "release")
    configure(r, tmp_path, {"default": "        into: release\n"})
    # The target moves on with a shared.txt of its own: the task's will conflict.
    commit_on_factory(r, {"shared.txt": b"from release\n"}, ref="refs/heads/release",
                      message="release adds shared.txt")  # fmt: skip
    task = gf_json(r, "task", "add", "Write shared file")["id"]
    gf(r, "daemon", "--burst")

    assert gf_json(r, "task", "show", task)["state"] == "completed"
    first, second = results(r)[task]
    assert first["status"] == "conflict" and first["conflicts"] == ["shared.txt"]
    assert second["status"] == "merged"
    report = gf(r, "artifact", "get", str(first["report"])).stdout
    assert "Conflicting files: shared.txt" in report and "release adds shared.txt" in report
    assert "<<<<<<<" in report and "from the task" in report
    # The agent's second prompt carried the report, and it resolved the conflict.
    starts = [e["data"] for e in gf_json(r, "log", "--kind", "dispatch.started")]
    assert [(s["step"], s["attempt"]) for s in starts] == [("implement", 1), ("implement", 2)]
    prompt = (r / ".git/gitfactory/runs" / starts[1]["run"] / "prompt.md").read_text()
    assert "The merge failed" in prompt and "Conflicting files: shared.txt" in prompt
    assert git(r, "show", "release:shared.txt") == "both sides, resolved\n"


def test_a_dirty_checkout_of_the_target_is_never_moved(factory_repo: Path, tmp_path: Path) -> None:
    r = factory_repo  # its checkout has a modified app.py, a staged file, an untracked file
    configure(r, tmp_path, {"default": ""})
    before = checkout_state(r)
    task = gf_json(r, "task", "add", "Change while the user works")["id"]
    proc = gf(r, "daemon", "--burst", code=4)  # only the blocked merge is left
    assert "uncommitted changes (app.py, staged.txt)" in proc.stdout

    state = gf_json(r, "task", "show", task)
    assert state["state"] == "submitted" and state["step"] == "merge"
    (waiting,) = [e for e in gf_json(r, "log", "--kind", "dispatch.waiting") if e["task"] == task]
    assert "uncommitted changes (app.py, staged.txt)" in waiting["text"]
    assert checkout_state(r) == before  # files, index, HEAD: byte for byte
    assert task not in results(r)

    git(r, "commit", "-qam", "the user's own work")  # the user commits; untracked stays
    mine = git(r, "rev-parse", "HEAD").strip()
    gf(r, "daemon", "--burst")
    assert gf_json(r, "task", "show", task)["state"] == "completed"
    (merged,) = results(r)[task]
    assert merged["done_as"] == "merge" and merged["before"] == mine
    # Moved through the checkout: its files show the task's work, nothing is lost.
    assert (r / f"{task[:8]}.txt").read_text() == "Change while the user works\n"
    assert git(r, "status", "--porcelain") == "?? untracked.txt\n"
    assert git(r, "log", "-1", "--format=%P", "HEAD").split()[0] == mine


def test_a_merge_repeated_after_a_crash_writes_nothing_twice(factory_repo: Path) -> None:
    from gitfactory.plan import decisions
    from gitfactory.qa import merge
    from gitfactory.store.factory import Factory
    from gitfactory.store.git import discover

    r = factory_repo
    for name in ("rel-squash", "rel-merge", "task/x"):
        git(r, "branch", name)
    commit_on_factory(r, {"feature.txt": b"new\n"}, ref="refs/heads/task/x", message="feature")
    factory = Factory(discover(r))
    task = decisions.add(factory, title="Feature", requester="human/t")
    for strategy in ("squash", "merge"):
        target = f"rel-{strategy}"
        first = merge.integrate(factory, task, "task/x", target, strategy)
        tip = git(r, "rev-parse", target).strip()
        again = merge.integrate(factory, task, "task/x", target, strategy)
        assert (first.status, again.status) == ("merged", "already"), strategy
        assert git(r, "rev-parse", target).strip() == tip == first.commit
        assert git(r, "show", f"{target}:feature.txt") == "new\n"
    missing = merge.integrate(factory, task, "task/nope", "rel-merge", "merge")
    assert missing.status == "refused" and "no branch 'task/nope'" in missing.why


def test_conflicts_of_every_kind_are_described_not_crashed_on(factory_repo: Path) -> None:
    from gitfactory.plan import decisions
    from gitfactory.qa import merge
    from gitfactory.store.factory import Factory
    from gitfactory.store.git import discover

    r = factory_repo
    git(r, "branch", "rel")
    commit_on_factory(r, {"bin.dat": b"\x00\xffbase", "gone.txt": b"base\n"},
                      ref="refs/heads/rel", message="base")
    git(r, "branch", "task/b", "rel")
    commit_on_factory(r, {"bin.dat": b"\x00\xfftheirs"}, remove=["gone.txt"],
                      ref="refs/heads/task/b", message="task side")
    commit_on_factory(r, {"bin.dat": b"\x00\xffours", "gone.txt": b"changed\n"},
                      ref="refs/heads/rel", message="target side")
    factory = Factory(discover(r))
    task = decisions.add(factory, title="Binary", requester="human/t")
    before = git(r, "rev-parse", "rel")
    result = merge.integrate(factory, task, "task/b", "rel", "merge")
    assert result.status == "conflict" and result.conflicts == ["bin.dat", "gone.txt"]
    assert "A binary file changed on both sides" in result.report
    assert "Deleted on task/b, changed on rel" in result.report
    assert git(r, "rev-parse", "rel") == before


def test_what_is_the_users_is_never_moved_or_overwritten(factory_repo: Path, tmp_path: Path) -> None:
    from gitfactory.plan import decisions
    from gitfactory.qa import merge
    from gitfactory.store.factory import Factory
    from gitfactory.store.git import discover

    r = factory_repo
    git(r, "stash", "-q", "--include-untracked")  # the checkout of main: clean
    (r / ".gitignore").write_text("secret.env\n")
    git(r, "add", ".gitignore")
    git(r, "commit", "-qm", "ignore secret.env")
    (r / "secret.env").write_text("the user's own\n")
    git(r, "branch", "task/s")
    commit_on_factory(r, {"secret.env": b"from the task\n"}, ref="refs/heads/task/s",
                      message="adds secret.env")
    factory = Factory(discover(r))
    task = decisions.add(factory, title="Secret", requester="human/t")
    head = git(r, "rev-parse", "main")
    with pytest.raises(merge.MergeWaits, match="refused"):
        merge.integrate(factory, task, "task/s", "main", "ff")
    assert (r / "secret.env").read_text() == "the user's own\n"
    assert git(r, "rev-parse", "main") == head

    # A bisect has main: git will move it back itself, so the merge waits.
    git(r, "bisect", "start", "main")
    assert "in the middle of a bisect" in str(merge.blocked(factory, "main"))
    git(r, "bisect", "reset")
    assert merge.blocked(factory, "main") is None
    # Checked out twice: which checkout would be moved? Neither.
    git(r, "worktree", "add", "-q", "-f", str(tmp_path / "second"), "main")
    assert "checked out in 2 worktrees" in str(merge.blocked(factory, "main"))
    # A worktree whose directory was deleted is not a checkout.
    shutil.rmtree(tmp_path / "second")
    assert merge.blocked(factory, "main") is None

    # A branch that changes only protocol files brings nothing to fast-forward.
    git(r, "branch", "task/p", "main")
    commit_on_factory(r, {".factory/notes/n.md": b"x\n"}, ref="refs/heads/task/p", message="p")
    only = merge.integrate(factory, task, "task/p", "main", "ff")
    assert (only.status, only.why) == ("already", "no changes to merge")
    assert git(r, "rev-parse", "main") == head


def test_a_merge_that_waits_is_not_claimed_again_and_again(
    factory_repo: Path, tmp_path: Path
) -> None:
    r = factory_repo
    git(r, "stash", "-q", "--include-untracked")
    configure(r, tmp_path, {"default": "        strategy: ff\n        into: main\n"})
    task = gf_json(r, "task", "add", "Notes")["id"]
    # The user has an untracked file the task's branch will add: git refuses to merge.
    (r / f"{task[:8]}.txt").write_text("the user's draft\n")
    gf(r, "daemon", "--burst", code=4)
    claims = [e for e in gf_json(r, "log", "--kind", "task.claimed", "--task", task)
              if e["actor"] == "factory/merge"]
    assert len(claims) == 1
    [waiting] = gf_json(r, "log", "--kind", "dispatch.waiting", "--task", task)
    assert "untracked working tree files would be overwritten" in waiting["data"]["why"]
    assert (r / f"{task[:8]}.txt").read_text() == "the user's draft\n"
