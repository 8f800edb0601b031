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
from gitfactory.store.records import FACTORY_DIR

if TYPE_CHECKING:
    import pygit2

    from gitfactory.plan.tasks import Task
    from gitfactory.store.factory import Factory

STRATEGIES = ("ff", "merge", "squash")
TRAILER = "Factory-Merge-Of"  # on every commit the merge step writes: the branch tip merged
_SCAN = 500  # first-parent commits of the target searched for an earlier squash
_HUNK_BUDGET = 3000  # characters of conflicting text per file in the report


@dataclass
class Merged:
    status: str  # merged, already (nothing to do), conflict, refused (cannot be done),
    # empty (the branch changed nothing since it started)
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
    """The worktrees that have ``branch`` checked out (a worktree whose directory is
    gone is not one: git lists it as prunable until `git worktree prune`)."""
    from gitfactory.store.git import main_top, run_git

    out = run_git(["worktree", "list", "--porcelain"], main_top(factory.paths)).stdout.decode()
    found = []
    for block in out.split("\n\n"):
        lines = block.splitlines()
        path = next((Path(x[len("worktree ") :]) for x in lines if x.startswith("worktree ")), None)
        if path is None or f"branch refs/heads/{branch}" not in lines:
            continue
        if any(x.startswith("prunable") for x in lines) or not path.is_dir():
            continue
        found.append(path)
    return found


def busy(factory: Factory, branch: str) -> str | None:
    """Whether a worktree is rebasing or bisecting ``branch``: git then has it
    detached, but will move the branch itself when it is done."""
    common = factory.paths.common_dir
    for gitdir in [common, *sorted((common / "worktrees").glob("*"))]:
        for marker, doing in (("rebase-merge/head-name", "a rebase"),
                              ("rebase-apply/head-name", "a rebase"),
                              ("BISECT_START", "a bisect")):  # fmt: skip
            try:
                named = (gitdir / marker).read_text(encoding="utf-8", errors="replace").strip()
            except OSError:
                continue
            if named in (branch, f"refs/heads/{branch}"):
                where = gitdir if gitdir == common else _worktree_of(gitdir)
                return (f"{branch} is in the middle of {doing} in {where}; the merge waits "
                        "until it is finished or aborted")  # fmt: skip
    return None


def _worktree_of(gitdir: Path) -> Path:
    try:
        return Path((gitdir / "gitdir").read_text().strip()).parent
    except OSError:
        return gitdir


def blocked(factory: Factory, target: str) -> str | None:
    """Why the target cannot be moved now: a checkout of it has uncommitted changes
    (or cannot be read), it is checked out twice, or a rebase or bisect has it."""
    from gitfactory.store.git import run_git

    places = checkouts(factory, target)
    if len(places) > 1:
        where = ", ".join(map(str, places))
        return (f"{target} is checked out in {len(places)} worktrees ({where}); "
                "the merge waits until only one has it")  # fmt: skip
    for path in places:
        status = run_git(["status", "--porcelain", "--untracked-files=no"], path, check=False)
        if status.returncode != 0:
            said = status.stderr.decode("utf-8", "replace").strip().splitlines()
            error = said[-1] if said else f"exit {status.returncode}"
            return (f"{target} is checked out in {path}, where `git status` fails "
                    f"({error}); the merge waits")  # fmt: skip
        changed = status.stdout.decode("utf-8", "replace").splitlines()
        if changed:
            files = ", ".join(line[3:] for line in changed[:5])
            files += ", ..." if len(changed) > 5 else ""
            return (
                f"{target} is checked out in {path} with uncommitted changes ({files}); "
                "the merge waits until they are committed or stashed"
            )
    return busy(factory, target)


def integrate(
    factory: Factory, task: Task, branch: str, target: str, strategy: str, start: str | None = None
) -> Merged:
    """Merge ``branch`` into ``target`` with ``strategy``; see the module's docstring.

    ``start`` is the commit the branch started from, when known: a branch that has
    changed nothing since is never "already merged" but refused (status ``empty``).
    """
    import pygit2

    from gitfactory.store.trees import advances

    repo = factory.store.repo
    result = Merged("refused", strategy, target, branch)
    tip, base = _ref(repo, f"refs/heads/{branch}"), _ref(repo, f"refs/heads/{target}")
    if base is None:
        raise MergeWaits(f"there is no branch {target!r} to merge into")
    if tip is None:
        result.why = f"there is no branch {branch!r} to merge (was it deleted?)"
        result.report = f"# Merge refused\n\n{result.why}.\n"
        return result
    result.before = str(base)
    if start is not None and start in repo and not advances(repo, start, str(tip)):
        result.status = "empty"
        result.why = (f"{branch} has no change of its own: no commit since it started "
                      f"at {start[:10]} changes a file outside .factory/")  # fmt: skip
        result.report = f"# Nothing to merge\n\n{result.why}.\n"
        return result
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
    if tree == repo[base].peel(pygit2.Tree).id and strategy != "merge":
        # (A merge commit records that the branch was merged even when it brings no
        # change; a squash or a fast-forward of protocol files alone would be empty.)
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
    # No topological sort: it would read the whole history before the first commit.
    walker = repo.walk(base, pygit2.enums.SortMode.NONE)
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
    from gitfactory.store.git import run_git

    assert result.before is not None
    result.done_as = done_as
    places = checkouts(factory, result.target)
    why = blocked(factory, result.target)
    if why is not None:
        raise MergeWaits(why)
    if places:
        place = places[0]
        if _head(place) != result.before:
            raise MergeWaits(f"{result.target} moved while merging; trying again")
        # --no-overwrite-ignore: an ignored file of the user's (a .env, say) that the
        # branch adds is never replaced; git refuses and the merge waits.
        proc = run_git(["merge", "--ff-only", "--no-overwrite-ignore", "-q", new], place,
                       check=False)  # fmt: skip
        if proc.returncode != 0:
            said = proc.stderr.decode("utf-8", "replace").strip()
            raise MergeWaits(f"git merge in {place} refused: {said}")
        if _head(place) != new:  # it did not move there (a race with the user)
            raise MergeWaits(f"{result.target} moved while merging; trying again")
    else:
        ref = f"refs/heads/{result.target}"
        proc = run_git(["update-ref", "-m", f"gitfactory merge: {result.branch}", ref, new,
                        result.before], factory.paths.common_dir, check=False)  # fmt: skip
        if proc.returncode != 0:
            raise MergeWaits(f"{result.target} moved while merging; trying again")
    result.status, result.commit = "merged", new
    result.why = f"{result.branch} merged into {result.target} ({done_as})"
    return result


def _head(worktree: Path) -> str | None:
    from gitfactory.store.git import run_git

    proc = run_git(["rev-parse", "--verify", "-q", "HEAD"], worktree, check=False)
    return proc.stdout.decode().strip() or None


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
    lines = [f"# Merge conflict: {result.branch} into {result.target}", "",
             f"Conflicting files: {', '.join(result.conflicts)}", "",
             _new_on_target(repo, result, tip, base), ""]  # fmt: skip
    assert index.conflicts is not None
    for entries in index.conflicts:
        path = next(e.path for e in entries if e is not None)
        kind, text = _conflict_kind(repo, result, *entries)
        lines += [f"## {path}", "", kind, ""]
        if text:
            if len(text) > _HUNK_BUDGET:
                text = text[:_HUNK_BUDGET] + "\n[...]"
            lines += [f"ours = {result.target}, theirs = {result.branch}", "",
                      "```", text.rstrip(), "```", ""]  # fmt: skip
    lines.append(
        f"To resolve: in your worktree, run `git merge {result.target}`, fix the conflicts "
        "the same way, run the tests, commit, and end your step."
    )
    return "\n".join(lines) + "\n"


def _conflict_kind(
    repo: pygit2.Repository, result: Merged, ancestor: pygit2.IndexEntry | None,
    ours: pygit2.IndexEntry | None, theirs: pygit2.IndexEntry | None,
) -> tuple[str, str]:  # fmt: skip
    """What kind of conflict a path has, in words, and its conflicting text if it is a
    text conflict (libgit2 cannot merge a binary file or a missing side)."""
    import pygit2

    target, branch = result.target, result.branch
    if ours is None or theirs is None:
        gone, kept = (target, branch) if ours is None else (branch, target)
        return f"Deleted on {gone}, changed on {kept}: keep it or delete it.", ""
    if ours.path != theirs.path:
        return (f"Renamed differently: to {ours.path} on {target}, to {theirs.path} on "
                f"{branch}.", "")  # fmt: skip
    if any(repo[e.id].peel(pygit2.Blob).is_binary for e in (ancestor, ours, theirs) if e):
        return "A binary file changed on both sides: choose one version.", ""
    what = "Added on both sides, differently." if ancestor is None else "Changed on both sides."
    try:
        found = repo.merge_file_from_index(ancestor, ours, theirs)
        text = found if isinstance(found, str) else found.contents  # by pygit2 version
    except Exception:  # libgit2 gives up on some inputs (text it cannot decode, say)
        return f"{what} (gitfactory could not show the conflicting text.)", ""
    return what, text
