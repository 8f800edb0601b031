"""The command line: a thin click layer; each command calls the library and prints.

One module per command group; everything printed goes through ``output``. Exit
codes are documented in :mod:`gitfactory.errors` and README.md.

May import every floor (it is the top one, with ``gitfactory.mcp``,
``gitfactory.demo`` and ``gitfactory.create``); nothing below imports it.
"""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path

import click

from gitfactory import __version__
from gitfactory.cli import output
from gitfactory.errors import EXIT_INTERNAL, EXIT_INTERRUPTED, FactoryError, UsageError
from gitfactory.store.factory import Factory

_HELP = """gitfactory: the coordination base for a factory of coding agents, on plain git.

All factory state is committed under .factory/ on the `factory` branch of this
repository: an append-only execution log, the plan's tasks, mailboxes,
artifacts, living documents and QA scenarios. Any tool with git can read it
(`git log factory`), push it and pull it. A daemon reacts to commits and moves
each task along its workflow: agents in the task's own worktree, quality gates
(commands, judges, scenarios), and the merge into your branch.

\b
Start here:
  gitfactory init                       create the factory branch
  gitfactory doctor                     what is missing, and the command that fixes it
  gitfactory log append note "hello"    write an event to the execution log
  gitfactory log                        read the log (newest last)
  gitfactory status                     tasks, holders, questions, daemon
  gitfactory board                      the same, live, in your browser (`top`: terminal)
  gitfactory mail send coder/* -s "hi"  message every coder; `mail inbox` to read
  gitfactory config edit                agents, gates, workflows (factory.yaml)
  gitfactory workflow show              the steps tasks go through
  gitfactory daemon                     dispatch agents and gates on ready tasks
  gitfactory artifact list TASK         transcripts, gate reports and verdicts
  gitfactory verify                     every record still there, byte for byte
  gitfactory sync                       share the factory with other clones (a remote)
  gitfactory demo                       a complete run on a built-in sample

Every command takes --json for scripts. Exit codes: 0 ok, 1 refused, 2 usage or
input error, 3 no work, 4 invalid records, 5 busy, 6 remote unreachable (a claim is
tentative), 70 internal error, 130 interrupted.
"""


class Context:
    """Per-invocation state: where to look for the repository."""

    current: Context | None = None  # this invocation's, for what main() says at the end

    def __init__(self, directory: Path | None) -> None:
        self.directory = directory
        self._factory: Factory | None = None
        Context.current = self

    def notices(self) -> list[str]:
        return list(self._factory.notices) if self._factory is not None else []

    @property
    def factory(self) -> Factory:
        if self._factory is None:
            self._factory = Factory.discover(self.directory)
        return self._factory


# Subcommands are imported only when called: each CLI call is a new process, and
# loading every command module would cost every call.
_COMMANDS = {
    "init": "setup:init",
    "log": "log:log_group",
    "status": "status:status",
    "index": "status:index_group",
    "demo": "demo:demo_cmd",
    "task": "task:task_group",
    "ready": "task_view:ready_cmd",
    "next": "work:next_cmd",
    "step": "work:step_group",
    "workflow": "work:workflow_group",
    "mail": "mail:mail_group",
    "daemon": "daemon:daemon_group",
    "hooks": "daemon:hooks_group",
    "agents": "agents:agents_cmd",
    "gc": "agents:gc_cmd",
    "artifact": "artifact:artifact_group",
    "docs": "docs:docs_group",
    "scenario": "scenario:scenario_group",
    "config": "config:config_group",
    "mcp": "mcp:mcp_cmd",
    "verify": "verify:verify_cmd",
    "sync": "sync:sync_cmd",
    "peers": "peers:peers_group",
    "doctor": "doctor:doctor_cmd",
    "man": "manpage:man_cmd",
    "board": "board:board_cmd",
    "report": "report:report_cmd",
    "top": "top:top_cmd",
}


class Group(click.Group):
    """A command group that answers an unknown command with the close ones (a typo)."""

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        name = args[0] if args else ""
        typed = bool(name) and not name.startswith("-") and not ctx.resilient_parsing
        if typed and self.get_command(ctx, name) is None:
            raise click.UsageError(_no_such_command(name, self.list_commands(ctx)), ctx)
        return super().resolve_command(ctx, args)


def _no_such_command(name: str, known: list[str]) -> str:
    import difflib

    close = difflib.get_close_matches(name, known, n=3, cutoff=0.6)
    if not close:
        return f"No such command {name!r}."
    if len(close) == 1:
        return f"No such command {name!r}. Did you mean {close[0]!r}?"
    return f"No such command {name!r}. Did you mean one of: {', '.join(map(repr, close))}?"


class _LazyGroup(Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(_COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        spec = _COMMANDS.get(cmd_name)
        if spec is None:
            return None
        module, attr = spec.split(":")
        command: click.Command = getattr(importlib.import_module(f"gitfactory.cli.{module}"), attr)
        return command


@click.group(cls=_LazyGroup, help=_HELP, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="gitfactory", message="%(prog)s %(version)s")
@click.option(
    "-C",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    help="Run as if started in this directory (like git -C).",
)
@click.pass_context
def cli(ctx: click.Context, directory: Path | None) -> None:
    ctx.obj = Context(directory)


def _crash_log(exc: BaseException) -> Path:
    import tempfile
    import traceback
    from datetime import UTC, datetime

    try:
        directory = Factory.discover().paths.factory_dir
        directory.mkdir(exist_ok=True)
    except Exception:
        directory = Path(tempfile.gettempdir())
    path = directory / "crash.log"
    with path.open("a", encoding="utf-8", errors="backslashreplace") as fh:
        fh.write(f"--- {datetime.now(tz=UTC).isoformat()} gitfactory {__version__}\n")
        fh.write(f"argv: {sys.argv!r}\n")
        fh.write("".join(traceback.format_exception(exc)))
    return path


def _check_text(args: list[str]) -> None:
    """Arguments are text: bytes that are not UTF-8 (Python keeps them as surrogate
    escapes) could not be written into any record, so they are refused here, naming
    the argument, instead of failing deep inside a command."""
    for n, arg in enumerate(args, start=1):
        try:
            arg.encode("utf-8")
        except UnicodeEncodeError:
            shown = arg.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
            raise UsageError(
                f"argument {n} is not valid UTF-8: {shown[:80]}",
                hint="pass text in UTF-8 (check the terminal's or the script's encoding)",
            ) from None


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    as_json = "--json" in args
    try:
        _check_text(args)
        code = cli.main(args, prog_name="gitfactory", standalone_mode=False)
        for notice in Context.current.notices() if Context.current else ():
            output.progress(f"warning: {notice}")
    except FactoryError as exc:
        output.error(exc, as_json)
        code = exc.exit_code
    except click.ClickException as exc:
        exc.show()
        code = exc.exit_code
    except (KeyboardInterrupt, click.Abort):
        sys.stderr.write("interrupted\n")
        code = EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (`gitfactory log | head`): not an error.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        code = 0
    except Exception as exc:
        path = _crash_log(exc)
        said = str(exc).encode("utf-8", "backslashreplace").decode("utf-8")
        sys.stderr.write(
            f"internal error: {type(exc).__name__}: {output.sanitize(said)}\n"
            f"this is a bug in gitfactory; the traceback is in {path}\n"
        )
        code = EXIT_INTERNAL
    sys.exit(code if isinstance(code, int) else 0)
