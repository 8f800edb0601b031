"""gitfactory doctor"""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from gitfactory.cli import Context, output

if TYPE_CHECKING:
    from gitfactory.run.doctor import Check

_WORDS = {"ok": "ok", "problem": "PROBLEM", "note": "note"}


@click.command("doctor")
@click.option("--json", "as_json", is_flag=True, help="Print {ok, checks: [...]} as JSON.")
@click.pass_obj
def doctor_cmd(obj: Context, as_json: bool) -> int:
    """Check that this factory can run, and say the command that fixes each problem.

    One line per check: git and its version; a commit on the branch task branches
    start from; the factory branch and its factory.yaml; every record intact; the
    hook; the daemon (a note: it need not run); each agent's and gate's program
    (found on PATH, or executable in the base branch) and the agent's version; roles
    workflow steps need that no agent plays; the worktree root; the index. A problem
    is followed by the one command that fixes it. Exit 0: no problems; 1: problems.

    \b
    Examples:
      gitfactory doctor
      gitfactory doctor --json | jq '.checks[] | select(.ok | not)'
    """
    from gitfactory.run import doctor

    checks = doctor.run(obj.factory)
    healthy = all(c.ok for c in checks)
    if as_json:
        output.emit_json({"ok": healthy, "checks": [c.to_json() for c in checks]})
    else:
        show(checks)
        problems = sum(not c.ok for c in checks)
        output.echo("no problems" if healthy else f"{problems} problem{'s' * (problems != 1)}")
    return 0 if healthy else 1


def show(checks: list[Check]) -> None:
    """One line per check; under a problem the command that fixes it (under a note,
    the command it suggests)."""
    width = max((len(c.name) for c in checks), default=0)
    for check in checks:
        output.echo(f"{_WORDS[check.level]:<8} {check.name:<{width}}  {check.detail}")
        if check.fix:
            said = "fix:" if check.level == "problem" else "run:"
            output.echo(f"{'':<8} {'':<{width}}  {said} {check.fix}")
