"""gitfactory task … between factories: add --in PEER, requests, accept, reject, and
answering a proxy's question (SPEC §20)."""

from __future__ import annotations

from typing import Any

import click

from gitfactory.cli import Context, output
from gitfactory.store import actors


def add_in(obj: Context, peer: str, fields: dict[str, Any], actor: str | None,
           as_json: bool) -> None:  # fmt: skip
    """`task add --in PEER`: the request, and the proxy task that stands for it here."""
    from gitfactory.peers import asking

    factory = obj.factory
    task, parcel = asking.request(factory, peer, requester=actors.who(factory, actor), **fields)
    if as_json:
        output.emit_json({"id": task.id, "peer": peer, "request": parcel.id})
        return
    output.echo(task.id)
    output.progress(
        f"asked {peer} for it (request {parcel.id[:10]}); task {task.id[:8]} stands for it "
        f"here and moves as {peer}'s task does. It leaves at the next `gitfactory peers "
        f"sync` (the daemon does it on its own). Depend on it: --depends-on {task.id[:8]}"
    )


def answer_proxy(obj: Context, task_id: str, text: str, actor: str | None,
                 as_json: bool) -> None:  # fmt: skip
    from gitfactory.peers import asking

    factory = obj.factory
    parcel = asking.answer(factory, task_id, actors.who(factory, actor), text)
    if as_json:
        output.emit_json({"id": task_id, "peer": parcel.to, "answer": parcel.id})
        return
    output.echo(f"answer for {parcel.to} written (parcel {parcel.id[:10]}); it leaves at the "
                "next `gitfactory peers sync`")  # fmt: skip


def withdraw(obj: Context, task_id: str, actor: str, reason: str, as_json: bool) -> None:
    from gitfactory.peers import asking

    parcel = asking.withdraw(obj.factory, task_id, actor, reason)
    if as_json:
        output.emit_json({"id": task_id, "state": "canceled", "peer": parcel.to,
                          "withdraw": parcel.id})  # fmt: skip
        return
    output.echo(f"canceled {task_id[:8]}; {parcel.to} is asked to stop its task at the next "
                "`gitfactory peers sync`")  # fmt: skip


@click.command("requests")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@click.pass_obj
def requests_cmd(obj: Context, as_json: bool) -> None:
    """Task requests from peer factories that wait for a person here.

    A peer whose `accept: tasks:` is `ask` in factory.yaml leaves its requests
    here; `task accept ID` makes one a task of this plan, `task reject ID --reason`
    refuses it. Either way the peer gets a receipt that says so.
    """
    from gitfactory.peers import listing

    factory = obj.factory
    factory.require_tip()
    factory.index.refresh()
    waiting = listing.pending_requests(factory)
    rows = [{"id": p.id, "peer": p.sender, "by": p.by, "created": p.created, **p.get("task")}
            for p in waiting]  # fmt: skip
    if as_json:
        output.emit_json(rows)
        return
    if not rows:
        output.echo("no request waits for you")
        return
    for row in rows:
        labels = f"  [{', '.join(row.get('labels') or [])}]" if row.get("labels") else ""
        output.echo(f"{row['id'][:10]}  {row['peer']}:{row['by']}  p{row.get('priority', 2)}  "
                    f"{row['title']}{labels}")  # fmt: skip
    output.echo("accept one: gitfactory task accept ID; refuse: gitfactory task reject ID "
                "--reason TEXT")  # fmt: skip


@click.command("accept")
@click.argument("request_id", metavar="ID")
@click.option("--as", "actor", metavar="ACTOR", help="Who decides (default: you).")
@click.option("--json", "as_json", is_flag=True, help="Print the outcome as JSON.")
@click.pass_obj
def accept_cmd(obj: Context, request_id: str, actor: str | None, as_json: bool) -> None:
    """Make a peer's pending task request (`task requests`) a task of this plan."""
    from gitfactory.peers import requests

    factory = obj.factory
    out = requests.decide(factory, request_id, actors.who(factory, actor))
    if as_json:
        output.emit_json(out)
        return
    output.echo(out["task"])
    peer = out["peer"]
    output.progress(f"accepted {peer}'s request: task {out['task'][:8]} {out['title']!r}; "
                    f"{peer} hears of it at the next exchange")  # fmt: skip


@click.command("reject")
@click.argument("request_id", metavar="ID")
@click.option("--reason", required=True, help="Why (the peer reads it in its receipt).")
@click.option("--as", "actor", metavar="ACTOR", help="Who decides (default: you).")
@click.option("--json", "as_json", is_flag=True, help="Print the outcome as JSON.")
@click.pass_obj
def reject_cmd(
    obj: Context, request_id: str, reason: str, actor: str | None, as_json: bool
) -> None:
    """Refuse a peer's pending task request, with the reason its receipt carries."""
    from gitfactory.peers import requests

    factory = obj.factory
    out = requests.decide(factory, request_id, actors.who(factory, actor), reason=reason)
    if as_json:
        output.emit_json(out)
        return
    output.echo(f"rejected {out['peer']}'s request {out['request'][:10]} {out['title']!r}")


def show_remote(st: Any) -> None:
    """`task show` of a proxy: what its peer last said."""
    remote = st.remote
    theirs = remote.get("task_id")
    output.echo(f"requested  of {remote['peer']}" + (f", its task {theirs}" if theirs else
                f" (request {remote['request'][:10]}, no word yet)" if remote["state"] == "sent"
                else f" (request {remote['request'][:10]})"))  # fmt: skip
    said = remote["state"] + (f" at step {remote['step']}" if remote.get("step") else "")
    output.echo(f"{remote['peer']} says {said}")
    if remote.get("question") and st.state == "input_required":
        output.echo(f"question   {remote['question']}")
        output.echo(f"           answer: gitfactory task answer {st.task.id[:8]} 'TEXT'")
    if remote.get("merge"):
        merge = remote["merge"]
        into = f"merged into {merge['target']}" if merge.get("target") else "merged"
        source = f" (from {merge['branch']})" if merge.get("branch") else ""
        output.echo(f"landed     {into} there as {merge.get('commit', '?')[:12]}{source}")
    if remote.get("reason"):
        output.echo(f"reason     {remote['reason']}")


COMMANDS = (requests_cmd, accept_cmd, reject_cmd)
