"""`gitfactory config`: factory.yaml changed in one checked commit, never left unreadable."""

from __future__ import annotations

import sys
from pathlib import Path

from conftest import gf, gf_json, git

CONFIG = ".factory/factory.yaml"
GOOD = """\
protocol: "0.3"
name: test
agents:
  ada:
    role: coder
    command: ./code.sh
gates:
  tests:
    command: make test
workflows:
  default:
    start: implement
    steps:
      implement: {role: coder, on_success: test}
      test: {gate: tests, on_success: review, on_failure: implement}
      review: {role: reviewer, on_success: lint}
      lint: {gate: lint, on_success: done}
"""


def editor(tmp_path: Path, body: str) -> dict[str, str]:
    """$EDITOR: a real program that rewrites the file it is given."""
    script = tmp_path / "editor.py"
    script.write_text(f"import subprocess, sys\npath = sys.argv[1]\n{body}\n")
    return {"EDITOR": f"{sys.executable} {script}"}


def test_edit_from_a_file_is_one_checked_commit(factory_repo: Path, tmp_path: Path) -> None:
    r = factory_repo
    assert gf(r, "config", "show").stdout == git(r, "show", f"factory:{CONFIG}")
    new = tmp_path / "factory.yaml"
    new.write_text(GOOD)
    tip = git(r, "rev-parse", "factory").strip()
    out = gf_json(r, "config", "edit", "--file", str(new), "--as", "human/lead")
    assert out["changed"] is True
    assert git(r, "rev-parse", "factory^").strip() == tip  # one commit
    assert git(r, "show", f"factory:{CONFIG}") == GOOD
    changed = gf_json(r, "log", "--kind", "config.changed")
    assert [(e["actor"], e["data"]["agents"]) for e in changed] == [("human/lead", ["ada"])]
    assert gf_json(r, "config", "edit", "--file", str(new))["changed"] is False

    # What is valid but probably not meant is said, with the workflow and step.
    text = gf(r, "config", "check").stdout
    assert "agents    coder/ada" in text
    assert "step 'review': no agent plays the role 'reviewer'" in text
    assert "step 'lint': gate 'lint' is not declared under gates:" in text
    assert "step 'test'" not in text and "step 'implement'" not in text


def test_a_bad_file_is_refused_with_its_line_and_nothing_changes(
    factory_repo: Path, tmp_path: Path
) -> None:
    r = factory_repo
    tip = git(r, "rev-parse", "factory")
    bad = tmp_path / "bad.yaml"
    bad.write_text(GOOD.replace("command: make test", "comand: make test"))
    proc = gf(r, "config", "edit", "--file", str(bad), code=2)
    assert f"{bad}:9:5: 'gates.tests.comand' is not a known field" in proc.stderr
    proc = gf(r, "config", "check", "--file", "-", input="name: [\n", code=2)
    assert "standard input" in proc.stderr
    assert git(r, "rev-parse", "factory") == tip


def test_editor_text_that_fails_is_kept_not_lost(factory_repo: Path, tmp_path: Path) -> None:
    r = factory_repo
    tip = git(r, "rev-parse", "factory")
    env = editor(tmp_path, "open(path, 'a').write('\\nbogus_key: 1\\n')")
    proc = gf(r, "config", "edit", env=env, code=2)
    assert "error: the edited factory.yaml:" in proc.stderr and "'bogus_key'" in proc.stderr
    draft = r / ".git" / "gitfactory" / "factory.yaml.draft"
    assert f"your text is kept in {draft}" in proc.stderr
    assert draft.read_text().endswith("\nbogus_key: 1\n")
    assert git(r, "rev-parse", "factory") == tip

    # An editor left unchanged commits nothing.
    assert "unchanged: nothing committed" in gf(r, "config", "edit", env=editor(tmp_path, "")).stdout
    assert git(r, "rev-parse", "factory") == tip

    # Bytes that are not UTF-8 are refused the same way, and kept the same way.
    env = editor(tmp_path, "open(path, 'ab').write(b'# caf\\xe9\\n')")
    proc = gf(r, "config", "edit", env=env, code=2)
    assert "not UTF-8 text" in proc.stderr and f"your text is kept in {draft}" in proc.stderr
    assert draft.read_bytes().endswith(b"# caf\xe9\n")
    assert git(r, "rev-parse", "factory") == tip


def test_saving_an_edit_unchanged_keeps_the_bytes_as_they_are(
    factory_repo: Path, tmp_path: Path
) -> None:
    r = factory_repo
    crlf = tmp_path / "crlf.yaml"
    crlf.write_bytes(b'protocol: "0.3"\r\nname: test')  # CRLF, and no final newline
    gf(r, "config", "edit", "--file", str(crlf))
    tip = git(r, "rev-parse", "factory")
    # An editor that rewrites the same bytes: nothing to commit.
    same = editor(tmp_path, "data = open(path, 'rb').read()\nopen(path, 'wb').write(data)")
    assert "unchanged: nothing committed" in gf(r, "config", "edit", env=same).stdout
    assert git(r, "rev-parse", "factory") == tip


def test_a_change_made_meanwhile_is_not_overwritten(factory_repo: Path, tmp_path: Path) -> None:
    r = factory_repo
    theirs = tmp_path / "theirs.yaml"
    theirs.write_text(GOOD)
    # While "we" edit, someone else commits another factory.yaml.
    body = (
        f"subprocess.run([sys.executable, '-m', 'gitfactory', 'config', 'edit', '--file', "
        f"{str(theirs)!r}], check=True)\n"
        "open(path, 'a').write('# ours\\n')"
    )
    proc = gf(r, "config", "edit", env=editor(tmp_path, body), code=1)
    assert "changed on factory while you edited it" in proc.stderr
    assert git(r, "show", f"factory:{CONFIG}") == GOOD  # theirs stands
    draft = r / ".git" / "gitfactory" / "factory.yaml.draft"
    assert draft.read_text().endswith("# ours\n")


def test_an_edit_warns_of_programs_that_are_not_there(factory_repo: Path, tmp_path: Path) -> None:
    new = tmp_path / "factory.yaml"
    new.write_text(GOOD.replace("make test", "no-such-test-runner"))
    out = gf(factory_repo, "config", "edit", "--file", str(new)).stdout
    # Committed all the same (a program may be installed later), but said at once.
    assert git(factory_repo, "show", f"factory:{CONFIG}") == new.read_text()
    assert "warning: gate tests: `no-such-test-runner` not found on PATH" in out
    assert "warning: agent coder/ada:" in out and "./code.sh" in out


def test_an_edit_that_drops_a_step_a_task_is_at_is_refused(
    factory_repo: Path, tmp_path: Path
) -> None:
    r = factory_repo
    tid = gf_json(r, "task", "add", "At review")["id"]
    gf(r, "step", "done", tid, "--override", "--reason", "go", "--as", "human/lead")  # -> test
    gf(r, "step", "done", tid, "--override", "--reason", "go", "--as", "human/lead")  # -> review
    assert gf_json(r, "task", "show", tid)["step"] == "review"
    current = gf(r, "config", "show").stdout
    renamed = current.replace("on_success: review", "on_success: review2").replace(
        "\n      review:\n", "\n      review2:\n")
    proc = gf(r, "config", "edit", "--file", "-", input=renamed, code=2)
    assert f"task {tid[:8]} is at step 'review'" in proc.stderr
    assert "task retry ID --from STEP" in proc.stderr
    assert gf(r, "config", "show").stdout == current  # nothing committed
    gf(r, "status")
    # Moved on first, the same edit goes through.
    gf(r, "task", "cancel", tid, "--as", "human/lead")
    gf(r, "config", "edit", "--file", "-", input=renamed)
    gf(r, "task", "retry", tid, "--from", "review2", "--as", "human/lead")
    assert gf_json(r, "task", "show", tid)["step"] == "review2"


def test_an_agent_cannot_be_given_a_persons_or_the_factorys_role(
    factory_repo: Path, tmp_path: Path
) -> None:
    for role in ("human", "factory"):
        text = GOOD.replace("    role: coder\n", f"    role: {role}\n", 1)
        proc = gf(factory_repo, "config", "check", "--file", "-", input=text, code=2)
        assert f"standard input:5:5: agent 'ada' cannot have the role '{role}'" in proc.stderr
        gf(factory_repo, "config", "edit", "--file", "-", input=text, code=2)
    fresh = tmp_path / "fresh"
    git(tmp_path, "init", "-q", str(fresh))
    git(fresh, "commit", "-q", "--allow-empty", "-m", "first")
    proc = gf(fresh, "init", "--agent", "human/bob=codex", code=2)
    assert "human/* are people" in proc.stderr
