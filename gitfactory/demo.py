"""The built-in demo: a sample project, a factory, and two scripted agents at work.

Everything is real and offline: git repositories and worktrees, agent programs that
run as their own processes and talk to the factory only through the CLI and git.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from gitfactory.errors import UsageError
from gitfactory.factory import Factory
from gitfactory.git import discover, run_git
from gitfactory.resources import template_file

AGENTS = (("coder/ada", "coder.py"), ("reviewer/rex", "reviewer.py"))


def prepare(directory: Path | None) -> Path:
    """The demo's root directory: a new temp dir, or DIR if it is missing or empty."""
    if directory is None:
        return Path(tempfile.mkdtemp(prefix="gitfactory-demo-"))
    if directory.exists() and any(directory.iterdir()):
        raise UsageError(
            f"{directory} is not empty; the demo builds its repository in a new directory",
            hint="give a new directory, or none for a fresh temporary one",
        )
    directory.mkdir(parents=True, exist_ok=True)
    return directory.resolve()


def make_project(repo: Path) -> None:
    shutil.copytree(template_file("demo", "project"), repo)
    run_git(["init", "-q", "-b", "main"], repo)
    run_git(["add", "."], repo)
    env = {
        "GIT_AUTHOR_NAME": "Demo User", "GIT_AUTHOR_EMAIL": "demo@example.com",
        "GIT_COMMITTER_NAME": "Demo User", "GIT_COMMITTER_EMAIL": "demo@example.com",
    }  # fmt: skip
    run_git(["commit", "-qm", "stats: mean and spread"], repo, env=env)
    run_git(["config", "user.name", "Demo User"], repo)
    run_git(["config", "user.email", "demo@example.com"], repo)


def run_agents(repo: Path) -> None:
    """Start both agents at once as separate processes and wait for them."""
    procs = []
    for agent, script in AGENTS:
        env = {**os.environ, "GITFACTORY_AGENT": agent}
        env.pop("GIT_DIR", None)
        procs.append(
            (agent, subprocess.Popen(
                [sys.executable, str(template_file("demo", "agents", script)), str(repo)],
                cwd=repo, env=env,
            ))
        )  # fmt: skip
    for agent, proc in procs:
        if proc.wait(timeout=120) != 0:
            raise UsageError(f"demo agent {agent} failed with exit code {proc.returncode}")


def run(directory: Path | None, say: Callable[[str], None]) -> Factory:
    root = prepare(directory)
    repo = root / "stats"
    say(f"building the sample project in {repo}")
    make_project(repo)
    factory = Factory(discover(repo))
    result = factory.init("demo", actor="human/demo-user")
    say(f"factory {result.name!r} initialised on branch {result.branch}")
    say("starting two scripted agents: coder/ada fixes the bug, reviewer/rex reviews it")
    run_agents(repo)
    return factory
