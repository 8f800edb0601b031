"""Papercuts of a new user's first hour (issue 12): the manual behind `git factory
--help`, "no work" said plainly and who it took you for, the attempt a held step is
on, "did you mean" for a typo'd command, and commit subjects cut between words."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from conftest import gf, gf_json, git

from gitfactory.plan import decisions
from gitfactory.store.factory import Factory

SOURCE = Path(__file__).resolve().parents[2]
PAGE = SOURCE / "man" / "git-factory.1"


def top_level_commands(cwd: Path) -> list[str]:
    """The commands `gitfactory --help` lists."""
    listing = gf(cwd, "--help").stdout.split("Commands:\n", 1)[1]
    return [line.split()[0] for line in listing.splitlines() if line.startswith("  ")]


# -- the manual -------------------------------------------------------------------------


def test_the_man_page_is_generated_from_the_cli_and_up_to_date(tmp_path: Path) -> None:
    roff = gf(tmp_path, "man", "--roff").stdout
    assert PAGE.read_text(encoding="utf-8") == roff, (
        "man/git-factory.1 is stale: regenerate it with "
        "`gitfactory man --roff > man/git-factory.1`"
    )
    commands = top_level_commands(tmp_path)
    assert len(commands) > 15 and "man" in commands
    for name in commands:
        assert f'.SS "gitfactory {name} ' in roff, f"the man page does not name {name}"
    assert '.SS "gitfactory task claim [OPTIONS] ID"' in roff
    assert "\n.TH GIT\\-FACTORY 1 " in roff


def test_the_install_puts_the_page_where_man_looks() -> None:
    project = tomllib.loads((SOURCE / "pyproject.toml").read_text())
    shared = project["tool"]["hatch"]["build"]["targets"]["wheel"]["shared-data"]
    assert shared["man/git-factory.1"] == "share/man/man1/git-factory.1"
    assert (SOURCE / "man" / "gitfactory.1").read_text() == ".so man1/git-factory.1\n"


def test_git_factory_help_shows_the_manual(tmp_path: Path) -> None:
    # An install's layout: <prefix>/bin/git-factory and <prefix>/share/man/man1. With
    # <prefix>/bin on PATH, `git factory --help` (git runs `man git-factory`) finds it.
    prefix = tmp_path / "prefix"
    (prefix / "bin").mkdir(parents=True)
    (prefix / "share" / "man" / "man1").mkdir(parents=True)
    shutil.copy(PAGE, prefix / "share" / "man" / "man1" / "git-factory.1")
    shim = prefix / "bin" / "git-factory"
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m gitfactory "$@"\n')
    shim.chmod(0o755)
    env = {**os.environ, "PATH": f"{prefix / 'bin'}{os.pathsep}{os.environ['PATH']}",
           "MANPAGER": "cat", "PAGER": "cat", "MANWIDTH": "100"}  # fmt: skip
    env.pop("MANPATH", None)
    proc = subprocess.run(["git", "factory", "--help"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, check=False)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "GIT-FACTORY(1)" in proc.stdout and "gitfactory task claim" in proc.stdout
    assert "No manual entry" not in proc.stderr


def test_without_man_gitfactory_man_prints_the_manual_as_text(tmp_path: Path) -> None:
    bare = tmp_path / "bin"  # a PATH with no man program on it
    bare.mkdir()
    out = gf(tmp_path, "man", env={"PATH": str(bare)}).stdout
    assert out.startswith("Usage: gitfactory [OPTIONS] COMMAND [ARGS]...")
    for name in top_level_commands(tmp_path):
        assert f"Usage: gitfactory {name}" in out
    assert "Usage: gitfactory task claim [OPTIONS] ID" in out
    info = gf_json(tmp_path, "man")
    assert info["page"] == "git-factory.1" and info["roff"] == PAGE.read_text()


# -- no work, said plainly --------------------------------------------------------------


def test_no_work_and_a_watch_timeout_are_not_errors(factory_repo: Path) -> None:
    r = factory_repo
    proc = gf(r, "next", "--as", "coder/ada", code=3)
    assert proc.stderr.startswith("no work for coder/ada (role 'coder') right now\n")
    assert "error" not in proc.stderr.replace("not an error", "")
    assert proc.stdout == ""
    proc = gf(r, "mail", "watch", "--as", "coder/ada", "--timeout", "1s", code=3)
    assert "no new message for coder/ada within 1s\n" in proc.stderr
    assert "error:" not in proc.stderr
    # Scripts keep the JSON they had, on stderr.
    said = json.loads(gf(r, "next", "--as", "coder/ada", "--json", code=3).stderr)
    assert (said["error"], said["exit_code"]) == ("NoWorkError", 3)


def test_next_says_who_it_took_you_for_and_how_to_choose(factory_repo: Path) -> None:
    r = factory_repo
    proc = gf(r, "next", code=3)
    first = proc.stderr.splitlines()[0]
    assert first.startswith("no work for human/test-user (role 'human') right now")
    assert "with no --as you are human/test-user (your git user.name)" in first
    assert "--as ROLE/NAME or $GITFACTORY_AGENT=ROLE/NAME" in first
    # With a step ready for coders, the hint says who would get it.
    gf(r, "task", "add", "Fix the parser")
    hint = gf(r, "next", code=3).stderr.splitlines()[1]
    assert hint.startswith("hint: ready steps wait for other roles (1 for role coder)")
    assert "--as coder/NAME or $GITFACTORY_AGENT=coder/NAME" in hint
    # An agent named by its environment is not told to pick another name.
    proc = gf(r, "next", code=3, env={"GITFACTORY_AGENT": "reviewer/rex"})
    assert "with no --as" not in proc.stderr and "reviewer/rex" in proc.stderr


# -- the attempt a held step is on ------------------------------------------------------


def test_a_claimed_step_is_attempt_one_however_it_was_claimed(factory_repo: Path) -> None:
    r = factory_repo
    tid = gf_json(r, "task", "add", "By the CLI")["id"]
    gf(r, "task", "claim", tid, "--as", "coder/ada")
    assert "attempt 1 of 3" in gf(r, "next", "--as", "coder/ada").stdout
    # A claim that names no step (the protocol allows it: a plain-git client's, or
    # the library's claim without a step) is an attempt of the step the task is at.
    f = Factory.discover(r)
    other = decisions.add(f, title="By a client", requester="human/lead")
    decisions.claim(f, other.id, "coder/bob")
    assert "attempt 1 of 3" in gf(r, "next", "--as", "coder/bob").stdout
    assert gf_json(r, "next", "--as", "coder/bob")["step"]["attempt"] == 1


# -- did you mean -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "meant"),
    [(["taks"], "'task'"), (["stauts"], "'status'"), (["task", "lsit"], "'list'"),
     (["daemon", "stauts"], "'status'"), (["mail", "inbx"], "'inbox'")],
)  # fmt: skip
def test_a_typo_gets_the_close_commands(factory_repo: Path, argv: list[str], meant: str) -> None:
    proc = gf(factory_repo, *argv, code=2)
    said = proc.stderr.strip().splitlines()[-1]
    assert said.startswith(f"Error: No such command '{argv[-1]}'. Did you mean")
    assert meant in said.split("Did you mean", 1)[1]


def test_a_word_that_is_no_command_gets_no_guess(factory_repo: Path) -> None:
    proc = gf(factory_repo, "xyzzy", code=2)
    assert proc.stderr.strip().splitlines()[-1] == "Error: No such command 'xyzzy'."


# -- commit subjects ----------------------------------------------------------------------


def subject(r: Path) -> str:
    return git(r, "log", "-1", "--format=%s", "factory").rstrip("\n")


def cut_between_words(shown: str, full: str) -> None:
    assert shown.endswith("…"), shown
    kept = shown[:-1]
    assert full.startswith(kept) and full[len(kept)] == " ", (shown, full)


def test_commit_subjects_are_cut_between_words(factory_repo: Path) -> None:
    r = factory_repo
    title = ("Implement the frobnicator interface for the widget subsystem so that "
             "every caller can frobnicate safely")  # fmt: skip
    tid = gf_json(r, "task", "add", title)["id"]
    shown = subject(r).split(f"task: add {tid[:6]} ", 1)[1]
    assert len(shown) <= 60
    cut_between_words(shown, title)
    text = "the parser now keeps every comment it reads, including the ones at the end"
    gf(r, "log", "append", "note", text)
    cut_between_words(subject(r).split("by human/test-user: ", 1)[1], text)
    words = "Ready for review: the parser keeps comments, blank lines and trailing spaces"
    gf(r, "mail", "send", "reviewer/rex", "-s", words, "--body", "see the branch")
    cut_between_words(subject(r).split("to reviewer/rex: ", 1)[1], words)
    gf(r, "log", "append", "note", "short enough")
    assert subject(r).endswith(": short enough")
