"""gitfactory peers"""

from __future__ import annotations

import sys
from typing import Any

import click

from gitfactory.cli import Context, output


@click.group("peers", invoke_without_command=True)
@click.pass_context
def peers_group(ctx: click.Context) -> None:
    """Other factories this one works with, through git (SPEC §20).

    Peers are listed in factory.yaml under `peers:`, by the name each gives
    itself, with the URL of its repository, how our parcels reach it (push to its
    refs/factory/inbox/<our name>, or pull: it fetches our
    refs/factory/outbox/<its name>), and what it may send us (`accept:`: mail to
    which roles, task requests, labels, a daily limit). Everything else a peer
    pushes is refused with a receipt that says why.

    \b
      peers:
        api:
          url: git://api.example/api.git
          deliver: push
          accept: {mail: [coder, human], tasks: ask, per_day: 100}

    \b
      gitfactory peers                  each peer, what it may send, what waits
      gitfactory peers sync             exchange parcels with every peer now
      gitfactory peers check            can each peer be reached?
      gitfactory mail send api:reviewer/* -s "..."   mail to a peer's role

    The daemon exchanges with every peer on its own, at sync.interval.
    """
    if ctx.invoked_subcommand is None:
        ctx.invoke(list_cmd)


@peers_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print the peers as JSON.")
@click.pass_obj
def list_cmd(obj: Context, as_json: bool = False) -> None:
    """Each peer: URL, delivery, what it may send, last contact, what waits."""
    from gitfactory.peers import listing

    found, strangers = listing.views(obj.factory)
    if as_json:
        output.emit_json({"peers": [v.to_json() for v in found], "strangers": strangers})
        return
    if not found:
        output.echo("no peers: list other factories under peers: in factory.yaml "
                    "(`gitfactory peers --help`)")  # fmt: skip
    for view in found:
        _show(view.to_json())
    for name in strangers:
        output.echo(f"warning: {name!r} pushed parcels to refs/factory/inbox/{name}, but is "
                    "not a peer: nothing it sent is read")  # fmt: skip


def _show(v: dict[str, Any]) -> None:
    accept = v["accept"]
    mail = ", ".join(accept["mail"]) or "no one"
    labels = "any label" if accept["labels"] is None else ", ".join(accept["labels"]) or "none"
    requests = accept["tasks"] if accept["tasks"] == "no" else f"{accept['tasks']} ({labels})"
    contact = v["contact"]
    if not contact:
        reached = "never exchanged with"
    elif contact.get("ok"):
        reached = f"last reached {output.local_time_ms(int(contact['at']))}"
    else:
        reached = f"unreachable since {output.local_time_ms(int(contact['down_since']))}: " + str(
            contact.get("error", "")
        )
    output.echo(f"{v['name']}  {v['url']}  ({v['deliver']})")
    output.echo(f"  may send: mail to {mail}; task requests: {requests}; "
                f"at most {accept['per_day']} a day")  # fmt: skip
    output.echo(f"  {reached}")
    waiting = v["pending_requests"]
    output.echo(f"  sent {v['sent']} parcel(s), {v['unanswered']} without a receipt yet; "
                f"received {v['received']}; {waiting} request(s) wait for you")  # fmt: skip


@peers_group.command("sync")
@click.argument("peer", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print what came in and went out as JSON.")
@click.pass_obj
def sync_cmd(obj: Context, peer: str | None, as_json: bool) -> None:
    """Exchange parcels with every peer (or PEER) now.

    Fetches what each peer left for us, takes in what peers delivered (checked
    and judged by their accept policy; receipts go back), writes word of our
    work on their requests, and delivers what waits for each. A peer that does
    not answer is skipped; what waits for it goes at the next round.

    Exit 0: every exchange went through; 6: a peer could not be reached; 1: a
    peer answered but refused our parcels, or ours could not be signed.
    """
    from gitfactory.peers import exchange

    result = exchange.exchange(obj.factory, peer)
    if as_json:
        output.emit_json(result.to_json())
    else:
        _print_round(result)
    if result.unreachable:
        sys.exit(6)
    if result.failed:
        sys.exit(1)


def _print_round(result: Any) -> None:
    from gitfactory.peers.exchange import line

    for t in result.taken:
        output.echo(line(t))
    if result.sent:
        output.echo(f"wrote {result.sent} receipt(s) and update(s) for peers")
    for p in result.peers:
        if p.errors:
            for error in p.errors:
                output.echo(f"{p.name}: {error}")
            continue
        went = "pushed" if p.pushed else ("up to date" if p.deliver == "push" else "published")
        output.echo(f"{p.name}: ok ({went})")
    if not result.peers:
        output.echo("no peers in factory.yaml (`gitfactory peers --help`)")


@peers_group.command("check")
@click.argument("peer", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print what was found as JSON.")
@click.pass_obj
def check_cmd(obj: Context, peer: str | None, as_json: bool) -> None:
    """Can each peer (or PEER) be reached, and will our parcels get there?

    Changes nothing but the note of when each peer was last reached: lists the
    peer's box refs, tries a dry-run push where we deliver by push, and checks
    that we can sign where we must.

    Exit 0: all good; 6: a peer could not be reached; 1: another problem.
    """
    from gitfactory.peers import check

    found = check.check(obj.factory, peer)
    if as_json:
        output.emit_json([c.to_json() for c in found])
    else:
        for c in found:
            if c.reachable:
                there = {None: "it fetches ours", True: "it has our latest parcels",
                         False: "our latest parcels are not there yet"}[c.ours_there]  # fmt: skip
                left = "new parcels wait for us there" if c.theirs else "nothing new for us there"
                output.echo(f"{c.name}: reached in {c.ms} ms; {there}; {left}")
            for problem in c.problems:
                output.echo(f"{c.name}: {problem}")
        if not found:
            output.echo("no peers in factory.yaml (`gitfactory peers --help`)")
    if any(not c.reachable for c in found):
        sys.exit(6)
    if any(c.problems for c in found):
        sys.exit(1)
