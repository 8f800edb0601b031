"""gitfactory top: a live dashboard in the terminal."""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import click

from gitfactory.cli import Context, output
from gitfactory.store import clock


@click.command("top")
@click.option(
    "--interval",
    default="1s",
    show_default=True,
    metavar="DURATION",
    help="How often the screen is drawn again (it also follows every commit).",
)
@click.option("--once", is_flag=True, help="Print one frame and exit (what a pipe gets).")
@click.option("--json", "as_json", is_flag=True, help="Print one frame as JSON and exit.")
@click.pass_obj
def top_cmd(obj: Context, interval: str, once: bool, as_json: bool) -> None:
    """Watch the factory at work in the terminal, until Ctrl-C.

    \b
    Running steps with their elapsed time and how much of their time limit they
    used, the ready queue, what blocks work (with the command that unblocks it),
    questions waiting for an answer, and the newest events. For a browser:
    `gitfactory board`. In a pipe, or with --once, one frame is printed.
    """
    from gitfactory.board import dashboard

    factory = obj.factory
    factory.require_tip()
    every = clock.parse_duration(interval, "--interval") / 1000
    if as_json:
        output.emit_json(dashboard.frame(factory))
        return
    from rich.console import Console

    console = Console(highlight=False)
    if once or not sys.stdout.isatty():
        console.print(_screen(dashboard.frame(factory)))
        return
    from rich.live import Live

    with _keys() as pressed, Live(_screen(dashboard.frame(factory)), console=console,
                                   screen=True, auto_refresh=False) as live:  # fmt: skip
        tip, drawn = factory.tip(), time.monotonic()
        try:
            while "q" not in pressed(0.1):
                now_tip = factory.tip()
                if now_tip == tip and time.monotonic() - drawn < every:
                    continue
                tip, drawn = now_tip, time.monotonic()
                live.update(_screen(dashboard.frame(factory)), refresh=True)
        except KeyboardInterrupt:
            return


@contextlib.contextmanager
def _keys() -> Iterator[Callable[[float], str]]:
    """Keys pressed on the terminal (q quits), read without waiting for Enter; waits
    up to the given seconds for one. Nothing where stdin is not a terminal."""
    import select

    if not sys.stdin.isatty():

        def waited(wait: float) -> str:
            time.sleep(wait)
            return ""

        yield waited
        return
    import termios
    import tty

    fd = sys.stdin.fileno()
    saved = termios.tcgetattr(fd)
    tty.setcbreak(fd)

    def pressed(wait: float) -> str:
        ready, _, _ = select.select([fd], [], [], wait)
        return os.read(fd, 32).decode("utf-8", "replace").lower() if ready else ""

    try:
        yield pressed
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def _screen(f: dict[str, Any]) -> Any:
    from rich.console import Group
    from rich.progress_bar import ProgressBar
    from rich.table import Table
    from rich.text import Text

    from gitfactory.board.pages import seconds

    counts = f["counts"]
    daemon = ("daemon running", "green") if f["daemon"] else ("daemon not running", "yellow")
    head = Text.assemble((output.sanitize(f["factory"]), "bold"),
                         f"  at {(f['tip'] or '')[:10]}  ", daemon)  # fmt: skip
    shown = (("ready", "ready", "blue"), ("working", "working", "yellow"),
             ("input_required", "asking", "magenta"), ("waiting", "waiting", "dim"),
             ("failed", "failed", "red"), ("completed", "done", "green"))  # fmt: skip
    tally = Text("  ·  ").join(Text.assemble(f"{name} ", (str(counts.get(key, 0)), style))
                               for key, name, style in shown)  # fmt: skip
    parts: list[Any] = [head, tally]
    running = Table(title="running", title_justify="left", expand=True, show_edge=False)
    # The title gives way first: who, where, how long and how much of its limit stay.
    running.add_column("agent", overflow="ellipsis", no_wrap=True, width=14)
    running.add_column("task", overflow="ellipsis", no_wrap=True, ratio=1, min_width=8)
    running.add_column("step", overflow="ellipsis", no_wrap=True, width=13)
    running.add_column("elapsed", no_wrap=True, width=8)
    running.add_column("limit", width=18, no_wrap=True)
    for r in f["running"]:
        used = r["progress"] or 0.0
        bar = Table.grid(padding=(0, 1))
        bar.add_row(ProgressBar(total=1.0, completed=used, width=12), f"{used:>4.0%}")
        step = _t(f"{r['step']} #{r['attempt']}")
        running.add_row(_t(r["agent"]), _t(_task(r["short"], r["title"])), step,
                        seconds(r["elapsed_s"]), bar)  # fmt: skip
    parts.append(running if running.row_count else Text("running   nothing here", style="dim"))
    held = Table(title="held (no run of this daemon)", title_justify="left", expand=True,
                 show_edge=False, show_header=False)  # fmt: skip
    for column, width in (("holder", 14), ("task", 20), ("step", 14), ("how", 8)):
        held.add_column(column, overflow="ellipsis", no_wrap=True, min_width=width)
    for c in f["held"]:
        held.add_row(_t(c["holder"] or "-"), _t(_task(c["short"], c["title"])),
                     _t(c["step"] or ""), "asking" if c["column"] == "input_required"
                     else "held")  # fmt: skip
    if held.row_count:
        parts.append(held)
    if f["questions"]:
        asks = Table(title="questions waiting", title_justify="left", expand=True,
                     show_edge=False, show_header=False)  # fmt: skip
        asks.add_column("task", no_wrap=True)
        asks.add_column("question", overflow="fold")
        for c in f["questions"]:
            asks.add_row(_t(_task(c["short"], c["title"])), _t(c["question"] or ""))
        parts.append(asks)
        which = f["questions"][0]["short"] if len(f["questions"]) == 1 else "ID"
        parts.append(Text(f"  answer: gitfactory task answer {which} TEXT", style="dim"))
    for b in f["blockers"]:
        parts.append(Text.assemble(("blocked  ", "red"), _t(b["what"])))
        parts.append(Text(f"         fix: {output.sanitize(b['fix'])}", style="dim"))
    ready = Table(title=f"ready ({f['ready_total']})", title_justify="left", expand=True,
                  show_edge=False, show_header=False)  # fmt: skip
    ready.add_column("task", no_wrap=True, overflow="ellipsis")
    for c in f["ready"]:
        ready.add_row(_t(f"P{c['priority']} " + _task(c["short"], c["title"])))
    parts.append(ready if ready.row_count else Text("ready     nothing", style="dim"))
    recent = Table(title="recent", title_justify="left", expand=True, show_edge=False,
                   show_header=False)  # fmt: skip
    for column, width in (("time", 8), ("kind", 17), ("actor", 14)):
        recent.add_column(column, no_wrap=True, overflow="ellipsis", min_width=width)
    recent.add_column("text", no_wrap=True, overflow="ellipsis", ratio=1)
    for e in f["events"]:
        recent.add_row(output.local_time(e["time"])[11:], _t(e["kind"]), _t(e["actor"]),
                       _t(e["text"]))  # fmt: skip
    parts.append(recent)
    return Group(*parts)


def _task(short: str, title: str) -> str:
    return f"{short} {title}"


def _t(value: str) -> Any:
    """What an agent wrote, as plain text: never rich markup (`[link=...]`), never a
    terminal control sequence."""
    from rich.text import Text

    return Text(output.sanitize(str(value)))
