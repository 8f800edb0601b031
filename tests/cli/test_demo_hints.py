"""The demo's "look around" commands work as pasted (issue 12): with gitfactory on
PATH they say `gitfactory`; from a virtualenv that is not activated they give the
full path of the entry point, and say how to activate it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import gf


def hints(out: str) -> list[str]:
    lines = out.split("look around:\n", 1)[1].splitlines()
    return [line.split("#")[0].strip() for line in lines if "#" in line]


def test_every_hint_runs_as_pasted_without_the_venv_on_path(tmp_path: Path) -> None:
    bare = {"PATH": os.pathsep.join(p for p in ("/usr/local/bin", "/usr/bin", "/bin")
                                    if Path(p).is_dir())}  # fmt: skip
    proc = gf(tmp_path, "demo", str(tmp_path / "demo"), env=bare)
    entry = Path(sys.executable).parent / "gitfactory"
    assert f"`source {entry.parent}/activate` puts it there" in proc.stdout
    commands = hints(proc.stdout)
    assert len(commands) == 7 and sum(c.startswith(str(entry)) for c in commands) == 5
    repo = tmp_path / "demo" / "stats"
    for command in commands:
        ran = subprocess.run(command, shell=True, cwd=repo, capture_output=True, text=True,
                             env={**os.environ, **bare}, check=False)  # fmt: skip
        assert ran.returncode == 0, f"{command}: {ran.stderr}"
        assert ran.stdout.strip(), command


def test_hints_say_gitfactory_when_path_finds_it(monkeypatch: pytest.MonkeyPatch) -> None:
    from gitfactory.cli.demo import _command

    venv = str(Path(sys.executable).parent)
    monkeypatch.setenv("PATH", os.pathsep.join([venv, os.environ.get("PATH", "")]))
    assert _command() == "gitfactory"
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    assert _command() == str(Path(venv) / "gitfactory")
