"""Scenario files through the CLI: added from a file, stdin or $EDITOR, listed with their
titles, removed; bad input refused with nothing committed; plain git sees them; and the
gates play exactly the files the commands list (symlinks and odd entries are neither)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from conftest import commit_on_factory, gf, gf_json, git

from gitfactory.config.gates import SCENARIO, Gate
from gitfactory.qa import gates, scenarios
from gitfactory.store.factory import Factory

SC = ".factory/scenarios"
LOGIN = "# Log in\n\nGoal: the user reaches their dashboard.\n\n1. Open /login.\n2. Sign in.\n"


def tip(repo: Path) -> str:
    return git(repo, "rev-parse", "factory").strip()


def test_add_from_a_file_and_stdin_then_list_and_show(factory_repo: Path, tmp_path: Path) -> None:
    r = factory_repo
    assert "no scenarios yet" in gf(r, "scenario").stdout
    source = tmp_path / "login.md"
    source.write_text(LOGIN)
    out = gf_json(r, "scenario", "edit", "login", "--file", str(source), "--as", "human/lead")
    assert out == {"name": "login", "path": f"{SC}/login.md", "changed": True,
                   "commit": tip(r)}  # fmt: skip
    assert git(r, "show", f"factory:{SC}/login.md") == LOGIN  # plain git sees it
    assert git(r, "log", "-1", "--format=%s", "factory") == "scenarios: add login by human/lead\n"
    # From stdin; names may have capitals (as the gates always allowed), .md is dropped.
    gf(r, "scenario", "edit", "Checkout-Guest.md", "--file", "-", input="## Pay as a guest ##\n")
    assert git(r, "show", f"factory:{SC}/Checkout-Guest.md") == "## Pay as a guest ##\n"

    listed = gf_json(r, "scenario", "list")
    assert listed == [
        {"name": "Checkout-Guest", "path": f"{SC}/Checkout-Guest.md", "size": 21,
         "title": "Pay as a guest"},
        {"name": "login", "path": f"{SC}/login.md", "size": len(LOGIN), "title": "Log in"},
    ]  # fmt: skip
    human = gf(r, "scenario").stdout.splitlines()
    assert human[1].split() == ["login", str(len(LOGIN)), "bytes", "Log", "in"]
    assert gf(r, "scenario", "show", "login").stdout == LOGIN
    shown = gf_json(r, "scenario", "show", "login.md")
    assert shown["title"] == "Log in" and shown["text"] == LOGIN


def test_edit_unchanged_commits_nothing_and_a_new_one_starts_from_a_template(
    factory_repo: Path, tmp_path: Path
) -> None:
    r = factory_repo
    source = tmp_path / "login.md"
    source.write_text(LOGIN)
    gf(r, "scenario", "edit", "login", "--file", str(source))
    before = tip(r)
    assert (
        "login unchanged: nothing committed"
        in gf(r, "scenario", "edit", "login", "--file", str(source)).stdout
    )
    assert gf(r, "scenario", "edit", "login", env={"EDITOR": "true"}).stdout.startswith(
        "login unchanged"
    )
    assert gf(r, "scenario", "edit", "signup", env={"EDITOR": "true"}).stdout.startswith(
        "signup unchanged"  # the template saved as it was is not a scenario yet
    )
    assert tip(r) == before

    editor = tmp_path / "editor.py"
    editor.write_text("import sys\nopen(sys.argv[1], 'a').write('- A welcome email.\\n')\n")
    gf(r, "scenario", "edit", "signup", env={"EDITOR": f"{sys.executable} {editor}"})
    text = git(r, "show", f"factory:{SC}/signup.md")
    assert text.startswith("# Signup\n\nGoal: ") and "## Steps\n\n1. " in text
    assert "## The user must see" in text and text.endswith("- A welcome email.\n")
    assert git(r, "log", "-1", "--format=%s", "factory").startswith("scenarios: add signup by ")


def test_bad_input_is_refused_and_nothing_is_committed(factory_repo: Path, tmp_path: Path) -> None:
    r = factory_repo
    gf(r, "scenario", "edit", "login", "--file", "-", input=LOGIN)
    before = tip(r)
    for bad in ("../x", "a/b", ".hidden", "x" * 101):
        proc = gf(r, "scenario", "edit", bad, "--file", "-", input=LOGIN, code=2)
        assert f"{bad!r} is not a scenario name" in proc.stderr and "never a path" in proc.stderr
    assert "is not a scenario name" in gf(r, "scenario", "show", "a b", code=2).stderr
    binary = tmp_path / "binary.md"
    binary.write_bytes(b"# Bin\n\xff\xfe\x00")
    proc = gf(r, "scenario", "edit", "bin", "--file", str(binary), code=2)
    assert "bin: not UTF-8 text" in proc.stderr
    big = "# Big\n" + "x" * scenarios.MAX_BYTES
    assert (
        "over the scenario limit"
        in gf(r, "scenario", "edit", "big", "--file", "-", input=big, code=2).stderr
    )
    assert (
        "the scenario is empty"
        in gf(r, "scenario", "edit", "login", "--file", "-", input=" \n", code=2).stderr
    )
    assert (
        "cannot read"
        in gf(r, "scenario", "edit", "x", "--file", str(tmp_path / "absent.md"), code=2).stderr
    )
    proc = gf(r, "scenario", "show", "nope", code=2)
    assert "no scenario 'nope'" in proc.stderr and "(scenarios: login)" in proc.stderr
    assert "gitfactory scenario edit nope" in proc.stderr
    assert "no scenario 'nope'" in gf(r, "scenario", "rm", "nope", code=2).stderr
    assert tip(r) == before
    assert git(r, "show", f"factory:{SC}/login.md") == LOGIN


def test_symlinks_and_odd_entries_are_neither_listed_nor_played(
    factory_repo: Path,
) -> None:
    r = factory_repo
    commit_on_factory(
        r,
        {f"{SC}/real.md": b"# Real\n", f"{SC}/notes.txt": b"not a scenario\n",
         f"{SC}/sub/inner.md": b"# Inner\n", f"{SC}/-dash.md": b"# Dash\n"},
        symlinks={f"{SC}/link.md": "real.md", f"{SC}/passwd.md": "/etc/passwd"},
    )  # fmt: skip
    assert [s["name"] for s in gf_json(r, "scenario", "list")] == ["real"]
    f = Factory.discover(r)
    gate = Gate("journeys", type=SCENARIO, role="qa")
    assert [s.name for s in gates.scenarios(f.store.snapshot(), gate)] == ["real.md"]
    assert "no scenario 'link'" in gf(r, "scenario", "show", "link", code=2).stderr
    assert "no scenario 'link'" in gf(r, "scenario", "rm", "link", code=2).stderr
    # Writing over a symlink makes it a regular file, even with the link's own bytes.
    gf(r, "scenario", "edit", "link", "--file", "-", input="real.md")
    assert git(r, "ls-tree", "factory", f"{SC}/link.md").startswith("100644 blob ")
    assert [s.name for s in gates.scenarios(f.store.snapshot(), gate)] == ["link.md", "real.md"]


def test_rm_removes_one_in_a_commit_and_git_keeps_it(factory_repo: Path) -> None:
    r = factory_repo
    gf(r, "scenario", "edit", "login", "--file", "-", input=LOGIN)
    gf(r, "scenario", "edit", "logout", "--file", "-", input="# Log out\n")
    out = gf_json(r, "scenario", "rm", "login.md", "--as", "qa/quinn")
    assert out == {"name": "login", "path": f"{SC}/login.md", "commit": tip(r)}
    assert git(r, "log", "-1", "--format=%s", "factory") == "scenarios: remove login by qa/quinn\n"
    assert [s["name"] for s in gf_json(r, "scenario", "list")] == ["logout"]
    shown = subprocess.run(["git", "show", f"factory:{SC}/login.md"], cwd=r, capture_output=True)
    assert shown.returncode != 0
    assert git(r, "show", f"factory~1:{SC}/login.md") == LOGIN  # history keeps it
    # The last one goes with its folder; the factory's other files stay.
    gf(r, "scenario", "rm", "logout")
    assert git(r, "ls-tree", "--name-only", "factory", ".factory/").split() == [
        ".factory/docs", ".factory/factory.yaml", ".factory/log",
    ]  # fmt: skip
    assert "no scenarios yet" in gf(r, "scenario").stdout
