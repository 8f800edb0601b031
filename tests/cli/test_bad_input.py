"""Bad input from the command line, standard input or a file is a usage error (exit 2)
that says what is wrong, and nothing is committed; never an internal error (exit 70)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from conftest import commit_on_factory, gf, gf_json, git


def raw(repo: Path, *args: str | bytes, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    """The CLI with arguments as bytes (what a shell passes when the text is not UTF-8)."""
    return subprocess.run(
        [sys.executable, "-m", "gitfactory", *args], cwd=repo, input=stdin,
        capture_output=True, timeout=120, env=os.environ,
    )  # fmt: skip


def refused(repo: Path, *args: str | bytes, stdin: bytes = b"", says: str) -> None:
    tip = git(repo, "rev-parse", "factory")
    proc = raw(repo, *args, stdin=stdin)
    err = proc.stderr.decode("utf-8", "replace")
    assert proc.returncode == 2, (args, proc.returncode, err)
    assert says in err and "internal error" not in err, (args, err)
    assert git(repo, "rev-parse", "factory") == tip, f"{args} committed something"


def test_arguments_that_are_not_utf8_are_refused(factory_repo: Path) -> None:
    r = factory_repo
    bad = b"caf\xe9"  # Latin-1, as an old terminal sends it
    refused(r, "log", "append", "note", bad, says="argument 4 is not valid UTF-8: caf\\xe9")
    refused(r, "task", "add", bad, says="is not valid UTF-8")
    refused(r, "mail", "send", "coder/ada", "-s", bad, "--body", "hi", says="not valid UTF-8")
    proc = raw(r, "task", "add", bad, "--json")
    assert json.loads(proc.stderr)["exit_code"] == 2


def test_text_files_and_standard_input_must_be_text(factory_repo: Path, tmp_path: Path) -> None:
    r = factory_repo
    latin = tmp_path / "latin.txt"
    latin.write_bytes(b"caf\xe9\n")
    nul = tmp_path / "nul.txt"
    nul.write_bytes(b"before\0after\n")
    refused(r, "mail", "send", "coder/ada", "-s", "hi", "--file", str(latin),
            says="not UTF-8 text")  # fmt: skip
    refused(r, "mail", "send", "coder/ada", "-s", "hi", "-", stdin=b"caf\xe9",
            says="standard input: not UTF-8 text")  # fmt: skip
    refused(r, "mail", "send", "coder/ada", "-s", "hi", "--file", str(nul),
            says="body: contains a NUL character")  # fmt: skip
    refused(r, "docs", "edit", "notes", "--file", str(nul), says="holds a NUL byte")
    refused(r, "scenario", "edit", "journey", "--file", str(nul), says="holds a NUL byte")
    refused(r, "log", "append", "--stdin", stdin=b'{"kind": "note", "text": "a\\u0000b"}\n',
            says="text: contains a NUL character")  # fmt: skip


def test_an_artifact_name_that_is_a_path_is_refused_not_renamed(
    factory_repo: Path, tmp_path: Path
) -> None:
    r = factory_repo
    task = gf_json(r, "task", "add", "Keep a report")["id"]
    report = tmp_path / "report.txt"
    report.write_text("all good\n")
    refused(r, "artifact", "put", task, str(report), "--name", "../../x", says="use --name x")
    put = gf_json(r, "artifact", "put", task, str(report), "--name", "report-1.txt")
    assert put["name"] == "report-1.txt"
    # A path given as the file (not as --name) is named after its last part, as before.
    assert gf_json(r, "artifact", "put", task, str(report))["name"] == "report.txt"


def test_a_record_with_a_nul_is_invalid_and_breaks_nothing(factory_repo: Path) -> None:
    r = factory_repo
    tid = "4" * 26
    record = json.dumps({"id": tid, "title": "a\u0000b", "requester": "human/plain",
                         "created": "2026-11-22T10:00:00.000Z"})  # fmt: skip
    front = "".join(f"{k}: {json.dumps(v)}\n" for k, v in json.loads(record).items())
    commit_on_factory(r, {f".factory/tasks/{tid[0]}/{tid[1]}/{tid}.md": f"---\n{front}---\n".encode()})
    status = json.loads(gf(r, "status", "--json", code=4).stdout)
    assert [(i["field"], i["reason"]) for i in status["invalid"]] == [
        ("title", "contains a NUL character")
    ]
    assert gf_json(r, "task", "list") == []
    gf(r, "docs", "regenerate")


def test_daemon_options_that_make_no_sense_are_refused(factory_repo: Path) -> None:
    proc = gf(factory_repo, "daemon", "--burst", "--idle-wake", "0s", code=2)
    assert "--idle-wake" in proc.stderr and "1s or more" in proc.stderr
    proc = gf(factory_repo, "daemon", "--burst", "--idle-wake", "99999999d", code=2)
    assert "longer than a day" in proc.stderr
    proc = gf(factory_repo, "daemon", "--burst", "--idle-wake", "soon", code=2)
    assert "cannot read 'soon' as a duration" in proc.stderr
    assert gf_json(factory_repo, "log", "--kind", "daemon.started") == []  # nothing ran


def test_an_empty_git_user_name_falls_back_to_the_login(factory_repo: Path) -> None:
    git(factory_repo, "config", "user.name", "")
    tid = gf_json(factory_repo, "task", "add", "Anyone")["id"]
    [created] = [e for e in gf_json(factory_repo, "log", "--kind", "task.created")
                 if e["task"] == tid]
    assert created["actor"].startswith("human/") and created["actor"] != "human/"


def test_a_task_for_a_workflow_that_does_not_exist_is_refused(factory_repo: Path) -> None:
    proc = gf(factory_repo, "task", "add", "Lost", "--workflow", "nosuch", code=2)
    assert "no workflow 'nosuch'" in proc.stderr and "defined: default" in proc.stderr
    assert gf_json(factory_repo, "task", "list") == []
    gf(factory_repo, "status")  # and nothing was written that stops the readers
