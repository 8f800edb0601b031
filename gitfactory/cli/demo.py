"""gitfactory demo."""

from __future__ import annotations

from pathlib import Path

import click

from gitfactory import demo
from gitfactory.cli import output
from gitfactory.store import log
from gitfactory.store.factory import Factory
from gitfactory.store.log import EventQuery


@click.command("demo")
@click.argument("directory", required=False, type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--federation",
    is_flag=True,
    help="The two-factory demo instead: a web factory asks an api factory for work.",
)
@click.option("--json", "as_json", is_flag=True, help="Print {repo, events} as JSON at the end.")
def demo_cmd(directory: Path | None, federation: bool, as_json: bool) -> None:
    """Run a complete factory on a built-in sample project, offline, in seconds.

    Builds a small Python project with a real bug in DIRECTORY (default: a new
    temporary directory), initialises a factory with three scripted agents (real
    programs, no LLM): a coder, a QA agent and a reviewer, adds two tasks (the
    second waits for the first), and runs the daemon until nothing is left to do.

    Each task gets its own worktree and branch and goes implement -> tests gate ->
    judge -> two scenarios -> review -> merge into main. The coder's first fix
    fails the tests gate; the gate's report goes into its next prompt and the
    second attempt passes. The agents talk by mail. At the end the demo prints the
    timeline, the artifacts, the failed gate's report and the regenerated history
    document, and leaves the repository for you to inspect.

    With --federation: two repositories, web and api, served by `git daemon` on
    127.0.0.1, each with its factory and its daemon. web asks api for an endpoint
    (a task request, pushed to api's inbox ref); api's agent does it and merges;
    the news flows back, web's page task (which depends on it) becomes ready and
    its agent builds the page against the commit where api's work landed. Both
    timelines are printed. Offline; a few seconds.
    """
    if federation:
        return _federation(directory, as_json)
    factory = demo.run(directory, output.progress if as_json else output.echo)
    rows, _ = log.query(factory, EventQuery())
    repo = factory.paths.work_tree
    if as_json:
        output.emit_json({"repo": str(repo), "events": [e.to_record() for _, e in rows]})
        return
    output.echo("")
    output.echo("timeline (gitfactory log):")
    for _, event in rows:
        if event.kind == "session.summary":
            continue  # shown as the history below
        output.echo(
            f"  {output.local_time(event.time)}  {event.actor:<14} {event.kind:<17} {event.text}"
        )
    _evidence(factory)
    output.echo("")
    output.echo(f"the demo repository is {repo}; look around:")
    output.echo(f"  cd {repo}")
    output.echo("  git log --graph --oneline main         # the tasks, merged into main")
    output.echo("  git log --oneline factory              # one commit per record written")
    gf = _command()
    if gf != "gitfactory":
        output.echo(f"  (gitfactory is not on your PATH: `source {Path(gf).parent}/activate` "
                    "puts it there; until then, the full path works)")  # fmt: skip
    output.echo(f"  {gf} log --json                  # the same timeline for scripts")
    output.echo(f"  {gf} artifact list               # transcripts and gate reports")
    output.echo(f"  {gf} docs show history           # the living history document")
    output.echo(f"  {gf} mail inbox --as coder/ada   # the reviewer's answers")
    output.echo(f"  {gf} report --html demo.html     # all of it in one page (live: board --open)")


def _command() -> str:
    """How to run this gitfactory from a shell: its name when PATH finds this very
    install, else the full path of its entry point (a virtualenv not activated)."""
    import shutil
    import sys

    from gitfactory.run.programs import own_entry_point

    here = own_entry_point()
    found = shutil.which("gitfactory")
    if found is not None and (here is None or Path(found).resolve() == here.resolve()):
        return "gitfactory"
    return str(here) if here is not None else f"{sys.executable} -m gitfactory"


def _evidence(factory: Factory) -> None:
    """The artifacts each task left, the first failed gate's report, the history."""
    from gitfactory.knowledge import artifacts, documents

    kept = artifacts.listing(factory)
    output.echo("")
    output.echo(f"artifacts ({len(kept)}, gitfactory artifact list):")
    short = factory.index.short_ids("tasks", [a.task for a in kept if a.task])
    by_task: dict[str, list[str]] = {}
    for artifact in kept:
        by_task.setdefault(short.get(str(artifact.task), "-"), []).append(artifact.name)
    for task, names in by_task.items():
        output.echo(f"  {task}: {', '.join(names)}")
    failed = next((a for a in kept if a.name.startswith("report-test-")), None)
    if failed is not None:
        _, report = artifacts.get(factory, failed.id)
        if "FAILED" in report.decode("utf-8", "replace").splitlines()[0]:
            output.echo("")
            output.echo(
                "the report that sent the coder back (gitfactory artifact get "
                f"{factory.index.short_id('artifacts', failed.id)}):"
            )
            for line in report.decode("utf-8", "replace").splitlines():
                output.echo(f"  | {line}")
    output.echo("")
    output.echo("the history document, regenerated after each task (gitfactory docs show history):")
    for line in documents.read(factory, documents.HISTORY).decode("utf-8").splitlines():
        output.echo(f"  | {line}")


def _federation(directory: Path | None, as_json: bool) -> None:
    from gitfactory import demo_peers

    web, api, root = demo_peers.run(directory, output.progress if as_json else output.echo)
    timeline = []
    for name, factory in (("web", web), ("api", api)):
        rows, _ = log.query(factory, EventQuery())
        timeline += [(event.time, name, event) for _, event in rows]
    timeline.sort(key=lambda row: (row[0], row[1]))
    if as_json:
        output.emit_json(
            {
                "repos": {"web": str(web.paths.work_tree), "api": str(api.paths.work_tree)},
                "events": [{"factory": n, **e.to_record()} for _, n, e in timeline],
            }
        )
        return
    output.echo("")
    output.echo("both timelines, merged (gitfactory log in each repository):")
    for _, name, event in timeline:
        if event.kind in ("session.summary", "daemon.started", "daemon.stopped"):
            continue
        output.echo(f"  {output.local_time(event.time)}  {name:<3}  {event.actor:<15} "
                    f"{event.kind:<20} {event.text[:70]}")  # fmt: skip
    output.echo("")
    output.echo(f"the repositories are in {root}; look around:")
    output.echo(f"  git -C {root}/web show main:users.html     # built against api's merge")
    output.echo(f"  git -C {root}/api log --oneline main         # the endpoint, merged")
    output.echo(f"  {_command()} -C {root}/web task list          # the proxy, completed")
    output.echo(f"  {_command()} -C {root}/api peers              # web, what it sent")
