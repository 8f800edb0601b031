"""The built-in demo: a sample project, a factory, and the daemon running it to the end.

Everything is real and offline: a git repository, the factory branch, the daemon
dispatching scripted agents (real programs, no LLM) into their own worktrees, a
tests gate that fails the coder's first attempt and sends its report back, a judge,
two scenarios played by a QA agent, a review by mail, the merge into main, and the
log, artifacts and living documents of all of it.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from gitfactory.errors import FactoryError, UsageError
from gitfactory.resources import template_file
from gitfactory.store.factory import Factory
from gitfactory.store.git import discover, run_git

CONFIG = """\
# The demo's factory: four scripted agents, three kinds of gate, and the default
# workflow from implement to merge. Worktrees live next to the repository.
protocol: "0.3"
name: demo
dispatch:
  worktrees: ../worktrees
  base: main
agents:
  ada:
    role: coder
    description: scripted coder (templates/demo/agents/coder.py)
    command: "{python} {agents}/coder.py"
  rex:
    role: reviewer
    description: scripted reviewer (templates/demo/agents/reviewer.py)
    command: "{python} {agents}/reviewer.py"
  quinn:
    role: qa
    description: scripted QA agent that plays the scenarios (templates/demo/agents/qa.py)
    command: "{python} {agents}/qa.py"
gates:
  tests:
    command: "{python} -m unittest -q"
    timeout: 5m
  judge:
    type: judge
    command: "{python} {agents}/judge.py"
    criteria: The change does what the task asks, touches only what it names, and is small.
    threshold: 0.7
  scenarios:
    type: scenario
    role: qa
workflows:
  default:
    description: Implement, test, judge, play the scenarios, review, merge.
    steps:
      implement:
        role: coder
        instructions: Make the change the task asks for and commit it on your branch.
        timeout: 5m
        requires_change: true
        on_success: test
      test:
        gate: tests
        on_success: judge
        on_failure: implement
      judge:
        gate: judge
        on_success: qa
        on_failure: implement
      qa:
        gate: scenarios
        timeout: 5m
        on_success: review
        on_failure: implement
      review:
        role: reviewer
        instructions: Review the branch; approve it or send it back.
        timeout: 5m
        on_success: merge
        on_failure: implement
      merge:
        action: merge
        strategy: merge
        into: main
        on_success: done
        on_failure: implement
"""


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
    run_git(["config", "user.name", "Demo User"], repo)
    run_git(["config", "user.email", "demo@example.com"], repo)
    run_git(["add", "."], repo)
    run_git(["commit", "-qm", "stats: mean and spread"], repo)


def configure(factory: Factory) -> None:
    from gitfactory.config.factory_yaml import CONFIG_PATH
    from gitfactory.qa.scenarios import SCENARIOS_DIR
    from gitfactory.store.branch import Change

    text = CONFIG.format(python=sys.executable, agents=template_file("demo", "agents"))
    files = {CONFIG_PATH: text.encode()}
    for scenario in sorted(template_file("demo", "scenarios").iterdir()):
        files[f"{SCENARIOS_DIR}/{scenario.name}"] = scenario.read_bytes()
    factory.store.write(
        Change(files, "factory: the demo's agents, gates, scenarios and workflow",
               replace=frozenset(files))
    )  # fmt: skip


def run(directory: Path | None, say: Callable[[str], None]) -> Factory:
    from gitfactory import create
    from gitfactory.plan import decisions
    from gitfactory.run import hooks
    from gitfactory.run.daemon import Daemon
    from gitfactory.run.ticks import TickReport

    root = prepare(directory)
    repo = root / "stats"
    say(f"building the sample project in {repo}")
    make_project(repo)
    factory = Factory(discover(repo))
    create.init(factory, "demo", actor="human/demo-user")
    configure(factory)
    try:
        hooks.install(factory.paths)
    except FactoryError as exc:  # a global core.hooksPath, say: the daemon works without it
        say(f"no reference-transaction hook ({exc.message}); the daemon watches the refs")
    say(
        "factory 'demo': agents coder/ada, reviewer/rex, qa/quinn; workflow implement -> test"
        " -> judge -> qa (2 scenarios) -> review -> merge into main"
    )
    fix = decisions.add(
        factory,
        title="Fix the off-by-one in stats.mean",
        requester="human/demo-user",
        body="mean([1, 2, 3, 4]) returns 2 instead of 2.5.",
        priority=1,
    )
    docs = decisions.add(factory, title="Document mean and spread in the README",
                    requester="human/demo-user", depends_on=[fix.id])  # fmt: skip
    short = factory.index.short_ids("tasks", [fix.id, docs.id])
    say(f"tasks: {short[fix.id]} {fix.title}; {short[docs.id]} {docs.title} "
        f"(after {short[fix.id]})")  # fmt: skip
    say("running the daemon until there is nothing left to do")

    def report(tick: TickReport) -> None:
        for r in tick.finished:
            result = r["outcome"] or "ended its step"
            say(f"  finished {r['agent']:<13} {r['step']:<9} {short[r['task']]}: {result}")
        for r in tick.merged:
            say(f"  merged   {'factory/merge':<13} {'merge':<9} {short[r['task']]}: {r['why']}")
        for r in tick.started:
            say(f"  started  {r['agent']:<13} {r['step']:<9} {short[r['task']]}")

    Daemon(factory, burst=True, report=report).run()
    return factory
