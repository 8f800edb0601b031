"""gitfactory sync"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from gitfactory.cli import Context, output
from gitfactory.errors import UsageError
from gitfactory.store import union


@click.command("sync")
@click.argument("remote", required=False)
@click.option("--no-push", is_flag=True, help="Fetch and merge only; send nothing.")
@click.option(
    "--resolve",
    "resolutions",
    multiple=True,
    metavar="PATH=ours|theirs|FILE",
    help="Settle a human-edited file both sides changed: keep ours, take theirs, or "
    "use the merged text in FILE. Repeatable.",
)
@click.option("--json", "as_json", is_flag=True, help="Print what came in and went out as JSON.")
@click.pass_obj
def sync_cmd(
    obj: Context, remote: str | None, no_push: bool, resolutions: tuple[str, ...], as_json: bool
) -> None:
    """Exchange the factory branch with a git remote: fetch, merge, push.

    REMOTE is a remote's name or a URL; by default the one factory.yaml's
    `sync: remote:` names, else origin. Records merge as a union (each is
    immutable and uniquely named, so nothing conflicts); factory.yaml, documents
    and scenarios merge three-way, and a real conflict is shown with both texts
    and settled with --resolve. A push another clone beat is fetched, merged and
    pushed again. Nothing local is ever dropped, and what the remote lost (a
    force-push back) is pushed to it again. Claims this clone made while the
    remote was away are confirmed or reported lost.

    A clone with no factory branch joins the remote's: this is the one command a
    second machine needs after `git clone`. The daemon syncs on its own when
    factory.yaml sets `sync: remote:`.

    Exit 0: in sync; 1: refused (a conflict, or the remote holds files the
    protocol does not allow: kept under refs/gitfactory/quarantine/, nothing
    merged); 5: other clones kept pushing first; 6: the remote could not be
    reached (nothing changed here).

    \b
      gitfactory sync                 with sync.remote, else origin
      gitfactory sync backup          with another remote
      gitfactory sync --no-push       only take in what the remote has
      gitfactory sync --resolve .factory/factory.yaml=theirs
    """
    from gitfactory.run import syncer

    factory = obj.factory
    with output.Waiting(f"sync with {remote or 'the sync remote'}"):
        outcome = syncer.sync(factory, remote, push=not no_push,
                              resolutions=_resolutions(resolutions))  # fmt: skip
    if as_json:
        output.emit_json(outcome.to_json())
        return
    _print(outcome)


def _resolutions(given: tuple[str, ...]) -> dict[str, str | bytes]:
    out: dict[str, str | bytes] = {}
    for item in given:
        path, sep, how = item.partition("=")
        if not sep or not path or not how:
            raise UsageError(f"--resolve {item!r}: write PATH=ours, PATH=theirs or PATH=FILE")
        if not union.is_in_place(path):
            raise UsageError(
                f"--resolve {item!r}: {path} is not a human-edited file of the factory",
                hint="name it as the conflict does: .factory/factory.yaml, "
                ".factory/docs/NAME.md or .factory/scenarios/NAME.md",
            )
        if how in ("ours", "theirs"):
            out[path] = how
            continue
        try:
            data = Path(how).read_bytes()
        except OSError as exc:
            raise UsageError(f"--resolve {item!r}: cannot read {how}: {exc.strerror}") from None
        _check_text(item, data)
        out[path] = data
    return out


def _check_text(item: str, data: bytes) -> None:
    """A resolution is a human-edited file: text, within the same limit as any."""
    from gitfactory.store.union import MAX_IN_PLACE_BYTES

    if len(data) > MAX_IN_PLACE_BYTES:
        raise UsageError(f"--resolve {item!r}: {len(data):,} bytes, over the limit of "
                         f"{MAX_IN_PLACE_BYTES:,} for a human-edited file")  # fmt: skip
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        raise UsageError(f"--resolve {item!r}: not UTF-8 text") from None
    if b"\0" in data:
        raise UsageError(f"--resolve {item!r}: holds a NUL byte; it must be text")


def _print(outcome: Any) -> None:
    r = outcome.report
    where = f"{r.remote}/{r.branch}"
    if r.joined:
        output.echo(f"joined the factory of {where}: this clone's '{r.branch}' branch tracks it")
    if r.rewound:
        output.echo(f"{where} had moved back or aside since the last sync, dropping records; "
                    f"this clone still held {r.restored} of them "
                    "and pushed them back")  # fmt: skip
    if r.changed_there:
        n = len(r.changed_there)
        output.echo(f"{where} holds {n} record{'s' * (n != 1)} changed after being written "
                    "(records are immutable): this clone kept the bytes first written "
                    "and sends them back; `git log -p` on the remote shows who")  # fmt: skip
    got, sent = _kinds(r.received), _kinds(r.sent)
    if got or sent:
        output.echo(f"received {got or 'nothing'}; sent {sent or 'nothing'}")
    if outcome.config_changed:
        output.echo("factory.yaml changed: what this clone runs follows the new one")
    for path in r.merged:
        output.echo(f"merged {output.sanitize(path)} three-way (changed here and there)")
    for claim in outcome.confirmed:
        output.echo(f"claim confirmed: task {claim['task'][:8]} for {claim['agent']}")
    for claim in outcome.lost:
        output.echo(f"claim lost: task {claim['task'][:8]} for {claim['agent']}: {claim['why']}")
    tip = (r.local_after or "")[:10] or "nothing"
    if r.remote_after == r.local_after:
        output.echo(f"in sync with {where} at {tip}")
    elif not r.pushed and r.local_after:
        output.echo(f"merged {where} at {tip}; not pushed (--no-push)")


def _kinds(counts: dict[str, int]) -> str:
    nouns = {"event": "event", "task": "task", "message": "message", "artifact": "artifact",
             "content": "artifact content", "in_place": "human-edited file"}  # fmt: skip
    return ", ".join(output.counted(n, nouns.get(k, k)) for k, n in sorted(counts.items()) if n)
