"""The merge step: integrate a task's branch into its target branch.

The merge is computed in memory with libgit2 (no working tree, no index), then the
target is moved with a compare-and-swap, so a target that moved meanwhile is merged
again, never overwritten. Strategies (the step's ``strategy:``):

``ff``      fast-forward only: the target must be an ancestor of the task branch;
            if it moved on, the task goes back to its agent to bring it in.
``merge``   a merge commit (always, even when a fast-forward was possible).
``squash``  one new commit on the target with the branch's changes.

Protocol files never ride along: the result's ``.factory/`` is the target's own
(task branches may carry messages or records committed with plain git; the
postmaster ingests those, and they stay out of code). A fast-forward whose branch
changes ``.factory/`` is done as a merge commit instead, and the result says so.

If the target is checked out in a worktree, the move goes through that worktree
(``git merge --ff-only``, which updates its files and refuses to overwrite local
changes), and only when it has no uncommitted changes to tracked files: a dirty
checkout is never moved; the step waits and says why.

A conflict ends the step with failure and a report (the conflicting files, the
conflicting hunks, the target's new commits and how to resolve) kept as an artifact,
which the agent finds in its next prompt.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from gitfactory.errors import FactoryError
from gitfactory.records import FACTORY_DIR

if TYPE_CHECKING:
    import pygit2

    from gitfactory.factory import Factory
    from gitfactory.tasks import Task

STRATEGIES = ("ff", "merge", "squash")
TRAILER = "Factory-Merge-Of"  # on every commit the merge step writes: the branch tip merged
_SCAN = 500  # first-parent commits of the target searched for an earlier squash
_HUNK_BUDGET = 3000  # characters of conflicting text per file in the report


@dataclass
class Merged:
    status: str  # merged, already (nothing to do), conflict, refused (cannot be done)
    strategy: str
    target: str
    branch: str
    done_as: str = ""  # how it was done: ff, merge, squash
    before: str | None = None  # the target's tip before
    commit: str | None = None  # the target's tip after
    conflicts: list[str] = field(default_factory=list)
    why: str = ""
    report: str = ""  # markdown, for a conflict or a refusal

    @property
    def passed(self) -> bool:
        return self.status in ("merged", "already")


def checkouts(factory: Factory, branch: str) -> list[Path]:
    """The worktrees that have ``branch`` checked out."""
    from gitfactory.git import run_git
    from gitfactory.worktrees import main_top

    out = run_git(["worktree", "list", "--porcelain"], main_top(factory.paths)).stdout.decode()
    found, path = [], None
    for line in out.splitlines():
        if line.startswith("worktree "):
            path = Path(line[len("worktree ") :])
        elif line == f"branch refs/heads/{branch}" and path is not None:
            found.append(path)
    return found


def blocked(factory: Factory, target: str) -> str | None:
    """Why the target cannot be moved now (a checkout of it has uncommitted changes)."""
    from gitfactory.git import run_git

    for path in checkouts(factory, target):
        status = run_git(["status", "--porcelain", "--untracked-files=no"], path, check=False)
        changed = status.stdout.decode("utf-8", "replace").splitlines()
        if status.returncode != 0 or changed:
            files = ", ".join(line[3:] for line in changed[:5])
            files += ", ..." if len(changed) > 5 else ""
            return (
                f"{target} is checked out in {path} with uncommitted changes ({files}); "
                "the merge waits until they are committed or stashed"
            )
    return None


def integrate(factory: Factory, task: Task, branch: str, target: str, strategy: str) -> Merged:
    """Merge ``branch`` into ``target`` with ``strategy``; see the module's docstring."""
    import pygit2

    repo = factory.store.repo
    result = Merged("refused", strategy, target, branch)
    tip, base = _ref(repo, f"refs/heads/{branch}"), _ref(repo, f"refs/heads/{target}")
    if tip is None or base is None:
        missing = branch if tip is None else target
        result.why = f"there is no branch {missing!r} to merge"
        result.report = f"# Merge refused\n\n{result.why}.\n"
        return result
    result.before = str(base)
    if tip == base or repo.descendant_of(base, tip) or _squashed(repo, base, tip):
        result.status, result.commit, result.why = "already", str(base), "already merged"
        return result
    done_as = strategy
    if strategy == "ff":
        if not repo.descendant_of(tip, base):
            result.why = f"{target} moved on since {branch} started: it cannot be fast-forwarded"
            result.report = _moved_report(repo, result, tip, base)
            return result
        if _subtree(repo, tip) == _subtree(repo, base):
            return _move(factory, result, str(tip), "ff")
        done_as = "merge"  # a fast-forward would bring the branch's protocol files along
    merged = repo.merge_commits(base, tip)
    conflicts = _conflicts(merged)
    if conflicts:
        result.status, result.conflicts = "conflict", conflicts
        result.why = f"merging {branch} into {target} conflicts in {', '.join(conflicts)}"
        result.report = _conflict_report(repo, result, merged, tip, base)
        return result
    tree = _without_protocol_files(repo, merged.write_tree(repo), base)
    if tree == repo[base].peel(pygit2.Tree).id and done_as == "squash":
        result.status, result.commit, result.why = "already", str(base), "no changes to merge"
        return result
    commit = _commit(repo, task, branch, target, tip, base, tree, done_as)
    return _move(factory, result, str(commit), done_as)


def _ref(repo: pygit2.Repository, name: str) -> pygit2.Oid | None:
    try:
        return repo.references[name].peel().id
    except (KeyError, ValueError):
        return None


def _subtree(repo: pygit2.Repository, commit: pygit2.Oid) -> str | None:
    import pygit2

    tree = repo[commit].peel(pygit2.Tree)
    return str(tree[FACTORY_DIR].id) if FACTORY_DIR in tree else None


def _squashed(repo: pygit2.Repository, base: pygit2.Oid, tip: pygit2.Oid) -> bool:
    """Whether a commit on the target already says it merged this very branch tip."""
    import pygit2

    needle = f"{TRAILER}: {tip}"
    walker = repo.walk(base, pygit2.enums.SortMode.TOPOLOGICAL)
    walker.simplify_first_parent()
    for n, commit in enumerate(walker):
        if n >= _SCAN:
            return False
        if needle in commit.message:
            return True
    return False


def _conflicts(index: pygit2.Index) -> list[str]:
    """Conflicting paths outside .factory/ (those inside are dropped with it)."""
    if index.conflicts is None:
        return []
    paths = set()
    for entries in list(index.conflicts):
        path = next(e.path for e in entries if e is not None)
        if path == FACTORY_DIR or path.startswith(f"{FACTORY_DIR}/"):
            del index.conflicts[path]
        else:
            paths.add(path)
    return sorted(paths)


def _without_protocol_files(
    repo: pygit2.Repository, tree: pygit2.Oid, base: pygit2.Oid
) -> pygit2.Oid:
    """``tree`` with the target's own .factory/ (or none, if the target has none)."""
    import pygit2

    builder = repo.TreeBuilder(repo[tree].peel(pygit2.Tree))
    if builder.get(FACTORY_DIR) is not None:
        builder.remove(FACTORY_DIR)
    ours = repo[base].peel(pygit2.Tree)
    if FACTORY_DIR in ours:
        entry = ours[FACTORY_DIR]
        builder.insert(FACTORY_DIR, entry.id, entry.filemode)
    return builder.write()


def _commit(
    repo: pygit2.Repository, task: Task, branch: str, target: str,
    tip: pygit2.Oid, base: pygit2.Oid, tree: pygit2.Oid, done_as: str,
) -> pygit2.Oid:  # fmt: skip
    import pygit2

    try:
        committer = repo.default_signature
    except (KeyError, pygit2.GitError):
        committer = pygit2.Signature("gitfactory", "gitfactory@localhost")
    trailers = f"\n\nFactory-Task: {task.id}\n{TRAILER}: {tip}\n"
    if done_as == "squash":
        count = sum(1 for _ in _between(repo, base, tip))
        message = f"{task.title}\n\nSquashed {count} commit(s) of {branch}.{trailers}"
        author = repo[tip].peel(pygit2.Commit).author
        return repo.create_commit(None, author, committer, message, tree, [base])
    message = f"Merge {branch} into {target}: {task.title}{trailers}"
    return repo.create_commit(None, committer, committer, message, tree, [base, tip])


def _between(repo: pygit2.Repository, base: pygit2.Oid, tip: pygit2.Oid) -> list[pygit2.Commit]:
    """The commits of ``tip`` that ``base`` does not have, newest first."""
    import pygit2

    walker = repo.walk(tip, pygit2.enums.SortMode.TOPOLOGICAL)
    walker.hide(base)
    return [c.peel(pygit2.Commit) for c in walker]


def _move(factory: Factory, result: Merged, new: str, done_as: str) -> Merged:
    """Move the target to ``new`` if it is still at ``result.before``: through the
    worktree that has it checked out (clean: see ``blocked``), else by a CAS on the ref."""
    from gitfactory.git import run_git

    assert result.before is not None
    result.done_as = done_as
    places = checkouts(factory, result.target)
    if places:
        why = blocked(factory, result.target)
        if why is None:
            proc = run_git(["merge", "--ff-only", "-q", new], places[0], check=False)
            why = None if proc.returncode == 0 else proc.stderr.decode("utf-8", "replace").strip()
        if why is not None:
            raise MergeWaits(why)
    else:
        ref = f"refs/heads/{result.target}"
        proc = run_git(["update-ref", "-m", f"gitfactory merge: {result.branch}", ref, new,
                        result.before], factory.paths.common_dir, check=False)  # fmt: skip
        if proc.returncode != 0:
            raise MergeWaits(f"{result.target} moved while merging; trying again")
    result.status, result.commit = "merged", new
    result.why = f"{result.branch} merged into {result.target} ({done_as})"
    return result


class MergeWaits(FactoryError):
    """The target cannot be moved right now; nothing was changed. Try again later."""


def _moved_report(
    repo: pygit2.Repository, result: Merged, tip: pygit2.Oid, base: pygit2.Oid
) -> str:
    lines = [f"# Merge refused: {result.why}", "", _new_on_target(repo, result, tip, base), "",
             "To go on: in your worktree, bring the target in (`git merge "
             f"{result.target}` or `git rebase {result.target}`), run the tests, commit, "
             "and end your step."]  # fmt: skip
    return "\n".join(lines) + "\n"


def _new_on_target(
    repo: pygit2.Repository, result: Merged, tip: pygit2.Oid, base: pygit2.Oid
) -> str:
    new = _between(repo, tip, base)
    shown = [f"- {str(c.id)[:10]} {c.message.splitlines()[0] if c.message else ''}"
             for c in new[:20]]  # fmt: skip
    more = [f"- ... and {len(new) - 20} more"] if len(new) > 20 else []
    return "\n".join([f"{result.target} has {len(new)} commit(s) your branch lacks:",
                      *shown, *more])  # fmt: skip


def _conflict_report(
    repo: pygit2.Repository, result: Merged, index: pygit2.Index,
    tip: pygit2.Oid, base: pygit2.Oid,
) -> str:  # fmt: skip
    import pygit2

    lines = [f"# Merge conflict: {result.branch} into {result.target}", "",
             f"Conflicting files: {', '.join(result.conflicts)}", "",
             _new_on_target(repo, result, tip, base), ""]  # fmt: skip
    assert index.conflicts is not None
    for entries in index.conflicts:
        ancestor, ours, theirs = entries
        path = next(e.path for e in entries if e is not None)
        try:
            found = repo.merge_file_from_index(ancestor, ours, theirs)
            text = found if isinstance(found, str) else found.contents  # by pygit2 version
        except (pygit2.GitError, ValueError, TypeError):
            text = "(binary, or deleted on one side)"
        if len(text) > _HUNK_BUDGET:
            text = text[:_HUNK_BUDGET] + "\n[...]"
        lines += [f"## {path}", "", f"ours = {result.target}, theirs = {result.branch}", "",
                  "```", text.rstrip(), "```", ""]  # fmt: skip
    lines.append(
        f"To resolve: in your worktree, run `git merge {result.target}`, fix the conflicts "
        "the same way, run the tests, commit, and end your step."
    )
    return "\n".join(lines) + "\n"
