"""The manual page, git-factory(1), made from the click command tree.

`git factory --help` is git's: it runs `man git-factory`. The page is generated
from the commands' own help (so it cannot drift from them: a test regenerates it
and compares), checked in as man/git-factory.1 and installed into
<prefix>/share/man/man1, where man finds it through PATH (<prefix>/bin is on it).
`gitfactory man` shows it wherever it is installed, as plain text when there is
no `man` program.

Regenerate after changing a command's help:  gitfactory man --roff > man/git-factory.1
"""

from __future__ import annotations

import inspect

import click

PAGE = "git-factory.1"
_TITLE = (
    ".\\\" Generated from the commands' help: gitfactory man --roff > man/git-factory.1\n"
    '.TH GIT\\-FACTORY 1 "" "gitfactory" "gitfactory manual"'
)
_SYNOPSIS = (
    ".SH SYNOPSIS",
    ".B gitfactory",
    "[\\fB\\-C\\fR \\fIDIR\\fR] \\fICOMMAND\\fR [\\fIARGS\\fR]...",
    ".br",
    ".B git factory",
    "\\fICOMMAND\\fR [\\fIARGS\\fR]...",
)
_TAIL = (
    ".SH ENVIRONMENT",
    ".TP",
    ".B GITFACTORY_AGENT",
    "Who acts when no \\fB\\-\\-as\\fR is given (role/name). The daemon sets it for",
    "every agent it starts, and such a process acts only as itself.",
    ".SH FILES",
    ".TP",
    ".I .factory/",
    "on the \\fBfactory\\fR branch: the records, factory.yaml and the documents.",
    ".TP",
    ".I .git/gitfactory/",
    "machine-local state: the derived index, the run book, the daemon's status.",
    ".SH SEE ALSO",
    "\\fBgit\\fR(1); protocol/SPEC.md (the file protocol) and README.md of gitfactory.",
)


def roff(root: click.Group) -> str:
    """The whole page: every command and subcommand with its help and options."""
    ctx = click.Context(root, info_name="gitfactory", **root.context_settings)
    short = _help(root).split("\n", 1)[0].split(":", 1)[-1].strip()
    lines = [_TITLE, ".SH NAME", f"git\\-factory, gitfactory \\- {_escape(short)}", *_SYNOPSIS]
    lines += [".SH DESCRIPTION", *_paragraphs(_help(root).split("\n", 1)[-1])]
    lines += [".SH OPTIONS", *_options(root, ctx, with_help=True)]
    lines += [".SH COMMANDS"]
    for name, command, sub in _walk(root, ctx):
        lines += _command(name, command, sub)
    return "\n".join([*lines, *_TAIL]) + "\n"


def text(root: click.Group) -> str:
    """The same manual as plain text: each command's --help, one after the other."""
    ctx = click.Context(root, info_name="gitfactory", max_content_width=80,
                        **root.context_settings)  # fmt: skip
    parts = [root.get_help(ctx)]
    for _, command, sub in _walk(root, ctx):
        parts.append(command.get_help(sub))
    return "\n\n".join(parts) + "\n"


def _walk(
    group: click.Group, parent: click.Context
) -> list[tuple[str, click.Command, click.Context]]:
    """Every command under ``group``, depth first, with its full name and context."""
    found = []
    for name in group.list_commands(parent):
        command = group.get_command(parent, name)
        if command is None or command.hidden:
            continue
        ctx = click.Context(command, info_name=name, parent=parent, max_content_width=80,
                            **command.context_settings)  # fmt: skip
        found.append((ctx.command_path, command, ctx))
        if isinstance(command, click.Group):
            found += _walk(command, ctx)
    return found


def _command(name: str, command: click.Command, ctx: click.Context) -> list[str]:
    usage = " ".join(command.collect_usage_pieces(ctx))
    lines = [f'.SS "{_escape(name)} {_escape(usage)}"', *_paragraphs(_help(command))]
    return [*lines, *_options(command, ctx)]


def _options(command: click.Command, ctx: click.Context, with_help: bool = False) -> list[str]:
    """The options as a tagged list (--help only once, at the top)."""
    lines = []
    for param in command.get_params(ctx):
        record = param.get_help_record(ctx)
        if record is None or isinstance(param, click.Argument):
            continue  # arguments are named in the usage line
        if param is command.get_help_option(ctx) and not with_help:
            continue
        names, help_text = record
        lines += [".TP", f"\\fB{_escape(names)}\\fR", _escape(help_text) or "\\&"]
    return lines


def _help(command: click.Command) -> str:
    """The help text as click shows it: dedented, cut at a form feed."""
    raw = command.help or command.short_help or ""
    return inspect.cleandoc(raw).split("\f", 1)[0].strip()


def _paragraphs(text: str) -> list[str]:
    """Help text as roff: paragraphs filled, click's \\b blocks kept line for line."""
    lines: list[str] = []
    for block in text.split("\n\n"):
        block = block.strip("\n")
        if not block.strip():
            continue
        if block.startswith("\b"):
            body = block[1:].strip("\n").splitlines()
            lines += [".PP", ".nf", *(_escape(line) for line in body), ".fi"]
        else:
            lines += [".PP", _escape(" ".join(block.split()))]
    return lines


def _escape(text: str) -> str:
    """Text roff prints as it is: backslashes and hyphens escaped, and no line that
    starts with a control character."""
    out = text.replace("\\", "\\e").replace("-", "\\-")
    return "\\&" + out if out.startswith((".", "'")) else out


def installed() -> str | None:
    """Where an install put the page (<prefix>/share/man/man1), if it did."""
    import sysconfig
    from pathlib import Path

    path = Path(sysconfig.get_path("data")) / "share" / "man" / "man1" / PAGE
    return str(path) if path.is_file() else None


@click.command("man")
@click.option("--roff", "as_roff", is_flag=True, help="Print the page's roff source.")
@click.option("--text", "as_text", is_flag=True, help="Print it as plain text, without man.")
@click.option("--json", "as_json", is_flag=True, help="Print {page, installed, roff}.")
def man_cmd(as_roff: bool, as_text: bool, as_json: bool) -> int:
    """Show the manual, git-factory(1): every command with its help and options.

    `git factory --help` is answered by git, which runs `man git-factory`. An
    install puts the page in <prefix>/share/man/man1, where man looks when
    <prefix>/bin is on PATH (an activated virtualenv); otherwise add that folder's
    parent to MANPATH. Where there is no man program, this prints the manual as
    plain text, and `git factory -h` (or any COMMAND -h) prints a command's help.
    """
    import shutil
    import subprocess
    import sys
    import tempfile

    from gitfactory.cli import cli, output

    if as_json:
        output.emit_json({"page": PAGE, "installed": installed(), "roff": roff(cli)})
        return 0
    if as_roff:
        sys.stdout.write(roff(cli))
        return 0
    man = shutil.which("man")
    if as_text or man is None:
        sys.stdout.write(text(cli))
        return 0
    with tempfile.TemporaryDirectory() as tmp:  # the page of this very code, installed or not
        page = f"{tmp}/{PAGE}"
        with open(page, "w", encoding="utf-8") as fh:
            fh.write(roff(cli))
        sys.stdout.flush()
        return subprocess.run([man, "-l", page], check=False).returncode
