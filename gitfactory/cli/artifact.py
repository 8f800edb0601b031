"""gitfactory artifact …"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from gitfactory.cli import Context, Group, output
from gitfactory.errors import UsageError
from gitfactory.knowledge import artifacts
from gitfactory.store import actors

if TYPE_CHECKING:
    from gitfactory.knowledge.artifacts import Artifact


def _json(a: Artifact) -> dict[str, object]:
    return a.to_record()


@click.group("artifact", cls=Group)
def artifact_group() -> None:
    """Files tasks produce (transcripts, reports, verdicts), stored in git.

    \b
    An artifact's content and its manifest (name, media type, size, SHA-256,
    producer, step) are committed together on the factory branch, so they travel
    with it. Any unique prefix of an id will do (`artifact list` shows the shortest),
    and so will a unique tail of 4 or more characters.
    """


@artifact_group.command("put")
@click.argument("task", metavar="TASK")
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True, path_type=Path))
@click.option("--name", help="The artifact's name (default: the file's name).")
@click.option("--step", help="The workflow step it comes from (default: $GITFACTORY_STEP).")
@click.option("--as", "actor", metavar="ADDRESS", help="Who stores it (default: you).")
@click.option("--json", "as_json", is_flag=True, help="Print the manifest as JSON.")
@click.pass_obj
def put_cmd(
    obj: Context,
    task: str,
    file: Path,
    name: str | None,
    step: str | None,
    actor: str | None,
    as_json: bool,
) -> None:
    """Store FILE ('-' for standard input) as an artifact of TASK and print its id.

    \b
    Example:
      pytest 2>&1 | gitfactory artifact put 4jrc7 - --name test-report.txt
    """
    from gitfactory.plan import decisions

    if name is not None and artifacts.clean_name(name) != name:
        clean = artifacts.clean_name(name)
        raise UsageError(
            f"--name {name!r}: an artifact's name is a plain file name (letters, digits, "
            f"'.', '_', '-'), not a path; nothing was stored",
            hint=f"use --name {clean}",
        )
    factory = obj.factory
    factory.require_tip()
    factory.index.refresh()
    task_id = decisions.resolve(factory, task)
    if str(file) == "-":
        data, default_name = sys.stdin.buffer.read(), "stdin.txt"
    else:
        try:
            data, default_name = file.read_bytes(), file.name
        except OSError as exc:
            raise UsageError(f"cannot read {file}: {exc.strerror}") from None
    artifact = artifacts.put(
        factory, task_id, data, name=name or default_name,
        producer=actors.who(factory, actor), step=step or os.environ.get("GITFACTORY_STEP"),
    )  # fmt: skip
    if as_json:
        output.emit_json(_json(artifact))
    else:
        output.echo(artifact.id)


@artifact_group.command("list")
@click.argument("task", required=False, metavar="[TASK]")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array of manifests.")
@click.pass_obj
def list_cmd(obj: Context, task: str | None, as_json: bool) -> None:
    """Artifacts, oldest first (of one task if TASK is given)."""
    from gitfactory.plan import decisions

    factory = obj.factory
    task_id = None
    if task:
        factory.require_tip()
        factory.index.refresh()
        task_id = decisions.resolve(factory, task)
    found = artifacts.listing(factory, task_id)
    if as_json:
        output.emit_json([_json(a) for a in found])
        return
    if not found:
        output.echo(f"no artifacts of task {task}" if task else "no artifacts yet")
        return
    kept = factory.index.short_ids("artifacts", [a.id for a in found])
    owners = factory.index.short_ids("tasks", [a.task for a in found if a.task])
    for a in found:
        owner = owners[a.task] if a.task else "-"
        output.echo(
            f"{kept[a.id]:<10} {owner:<8}  {a.size:>10,}  {a.media_type:<24} {a.name}  "
            f"({a.producer})"
        )


@artifact_group.command("get")
@click.argument("artifact_id", metavar="ID")
@click.option(
    "-o", "--output", "target", type=click.Path(dir_okay=False, path_type=Path),
    help="Write the content to this file (default: standard output).",
)  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="With -o: print the manifest as JSON.")
@click.pass_obj
def get_cmd(obj: Context, artifact_id: str, target: Path | None, as_json: bool) -> None:
    """Write an artifact's content, byte for byte, after checking its SHA-256."""
    artifact, data = artifacts.get(obj.factory, artifact_id)
    if target is None:
        if sys.stdout.isatty() and artifact.media_type.split("/")[0] != "text":
            raise UsageError(
                f"{artifact.name} is {artifact.media_type}; not writing it to a terminal",
                hint="use -o FILE, or redirect the output",
            )
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
        return
    target.write_bytes(data)
    if as_json:
        output.emit_json({**_json(artifact), "written": str(target)})
    else:
        output.echo(f"wrote {len(data):,} bytes to {target}")
