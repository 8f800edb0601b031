"""gitfactory board: the live board in a browser."""

from __future__ import annotations

import sys

import click

from gitfactory.cli import Context, output

DEFAULT_PORT = 8640


@click.command("board")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=DEFAULT_PORT,
    show_default=True,
    help="The port to listen on (0: any free port).",
)
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="The address to listen on. Anything but loopback lets other machines "
    "reach the board (the token still guards it): a warning says so.",
)
@click.option("--open", "open_browser", is_flag=True, help="Open the board in a browser.")
@click.option(
    "--new-token", is_flag=True, help="Make a new token: addresses printed before stop working."
)
@click.option(
    "--as",
    "actor",
    metavar="ACTOR",
    help="Who the board's actions are recorded as (default: you, human/NAME).",
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print {url, host, port, token} as one JSON line once it listens.",
)
@click.pass_obj
def board_cmd(obj: Context, port: int, host: str, open_browser: bool, actor: str | None,
              new_token: bool, as_json: bool) -> None:  # fmt: skip
    """Serve a live board of the factory in your browser, until Ctrl-C.

    \b
    Pages: the board (columns by state, filters by label, role and text), the
    dependency graph, each task (its steps as a timeline, gate verdicts and
    reports, its mail and artifacts, its question with an answer box), the
    agents at work, and the log. A commit on the factory branch shows in every
    open page within a second. Actions (answer, retry, cancel, priority) write
    the same records as the CLI.

    \b
    It listens on 127.0.0.1 only, and every request needs the board's token,
    which the printed address carries once (your browser keeps it in a cookie).
    The token is kept in .git/gitfactory/ (readable by you only), so a restarted
    board takes open pages back; --new-token makes a new one.
      gitfactory board                   then open the address it prints
      gitfactory board --open --port 0   any free port, in your browser
    """
    from gitfactory.board import serve

    factory = obj.factory
    factory.require_tip()
    if host.strip("[]") not in ("127.0.0.1", "localhost", "::1"):
        output.progress(
            f"warning: listening on {host}: other machines can reach this board; anyone "
            "with its address (it carries the token) can act on the factory"
        )
    bound = serve.bind(host, port, serve.token(factory.paths.factory_dir, new_token))

    def ready() -> None:
        if as_json:
            output.emit_json({"url": bound.url, "host": bound.host, "port": bound.port,
                              "token": bound.token}, lines=True)  # fmt: skip
        else:
            output.echo(f"board: {bound.url}")
            output.echo("(the address carries the board's token; Ctrl-C stops the board)")
            sys.stdout.flush()
        if open_browser:
            import webbrowser

            if not webbrowser.open(bound.url):
                output.progress("no browser could be opened here: open the address above")

    serve.serve(bound, obj.directory, actor, ready)
