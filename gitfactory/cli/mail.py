"""gitfactory mail …"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from gitfactory.cli import Context, Group, mail_view, output
from gitfactory.errors import UsageError
from gitfactory.mail import mailbox, messages, verify
from gitfactory.store import actors

if TYPE_CHECKING:
    pass

_AS_HELP = "Who you are: role/name or human/name (default: $GITFACTORY_AGENT, else git's user)."


def _as_option(f: Any) -> Any:
    return click.option("--as", "actor", metavar="ADDRESS", help=_AS_HELP)(f)


def _json_option(f: Any) -> Any:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON.")(f)


def _body_options(f: Any) -> Any:
    f = click.option(
        "--file",
        "body_file",
        type=click.File("rb"),
        help="Read the body from a file ('-' reads standard input).",
    )(f)
    return click.option("--body", help="The body, in markdown.")(f)


def _body(body: str | None, body_file: Any, dash: bool) -> str:
    given = [x for x in (body is not None, body_file is not None, dash) if x]
    if len(given) > 1:
        raise UsageError("give the body once: --body TEXT, --file F, or - for standard input")
    if dash:
        return _utf8(sys.stdin.buffer.read(), "standard input")
    if body_file is not None:
        return _utf8(body_file.read(), body_file.name)
    return body or ""


def _utf8(data: bytes, where: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UsageError(
            f"{where}: not UTF-8 text ({exc.reason} at byte {exc.start}); nothing was sent",
            hint="attach binary content as an artifact (gitfactory artifact put)",
        ) from None


@click.group("mail", cls=Group)
def mail_group() -> None:
    """Mailboxes: messages between agents, roles and humans, as committed files.

    \b
    A message is a markdown file under .factory/mail/ on the factory branch; who
    read it and who acknowledged it are separate records in the log, so reading
    never consumes a message. Addresses:
      role/name           one agent (coder/ada)
      role/*              every agent of a role (reviewer/*)
      human/name          a person
      peer:role/name      an agent of a peer factory (`gitfactory peers`)
    Any unique prefix of a message id will do (`mail inbox` shows the shortest), and
    so will a unique tail of 4 or more characters.
    """


@mail_group.command("send")
@click.argument("to", nargs=-1, required=True)
@click.option("--subject", "-s", required=True, help="One line.")
@_body_options
@click.option("--cc", multiple=True, metavar="ADDRESS", help="A copy to. Repeatable.")
@_as_option
@click.option("--thread", help="The thread to post in (default: the message starts one).")
@click.option("--reply-to", "reply_to", metavar="ID", help="The message this one answers.")
@click.option("--task", metavar="ID", help="The task it is about.")
@click.option("--ack-required", is_flag=True, help="Every recipient in TO must acknowledge.")
@click.option(
    "--priority", type=click.Choice(messages.PRIORITIES), default="normal", show_default=True
)
@click.option("--ref", "refs", multiple=True, help="A commit, branch, path or URL. Repeatable.")
@_json_option
@click.pass_obj
def send_cmd(
    obj: Context,
    to: tuple[str, ...],
    subject: str,
    body: str | None,
    body_file: Any,
    cc: tuple[str, ...],
    actor: str | None,
    thread: str | None,
    reply_to: str | None,
    task: str | None,
    ack_required: bool,
    priority: str,
    refs: tuple[str, ...],
    as_json: bool,
) -> None:
    """Send a message and print its id.

    \b
    The body comes from --body, --file F, or standard input when one TO is '-'.
    Examples:
      gitfactory mail send reviewer/* -s "Ready for review" --body "Branch fix-mean"
      git diff | gitfactory mail send coder/ada - -s "This breaks the build" --ack-required
    """
    factory = obj.factory
    factory.require_tip()
    text = _body(body, body_file, "-" in to)
    sender = actors.who(factory, actor)
    original = mailbox.get(factory, reply_to) if reply_to else None
    if task:
        from gitfactory.plan import decisions

        factory.index.refresh()
        task = decisions.resolve(factory, task)
    message = messages.compose(
        factory, sender=sender, to=[a for a in to if a != "-"], subject=subject, body=text,
        cc=cc, thread=thread or (original.thread_name if original else None),
        reply_to=original.id if original else None,
        task=task or (original.task if original else None),
        priority=priority, ack_required=ack_required, refs=refs,
    )  # fmt: skip
    mail_view.report_sent(mailbox.send(factory, message, verify.local(factory, actor)), as_json)


@mail_group.command("inbox")
@_as_option
@click.option("--unread", is_flag=True, help="Only messages you have not read.")
@click.option("--unacked", is_flag=True, help="Only messages waiting for your acknowledgement.")
@click.option("--thread", help="Only this thread.")
@click.option("--limit", type=click.IntRange(0), default=50, show_default=True, help="0 for all.")
@_json_option
@click.pass_obj
def inbox_cmd(
    obj: Context,
    actor: str | None,
    unread: bool,
    unacked: bool,
    thread: str | None,
    limit: int,
    as_json: bool,
) -> None:
    """Messages to you or your role, newest first.

    \b
    * marks a message you have not read, ! a high or urgent one. --json prints an
    array of {id, from, to, cc, subject, thread, created, priority, ack_required,
    task, read, acked}.
    """
    factory = obj.factory
    who = actors.who(factory, actor)
    rows = mailbox.inbox(
        factory, who, unread=unread, unacked=unacked, thread=thread, limit=limit or None
    )  # fmt: skip
    which = " and ".join(w for w, on in (("unread", unread), ("unacknowledged", unacked)) if on)
    where = f" in thread {thread}" if thread else ""
    empty = f"no {which + ' ' if which else ''}messages for {who}{where}"
    mail_view.print_rows(factory, rows, as_json, empty)


@mail_group.command("read")
@click.argument("message_id", metavar="ID")
@_as_option
@_json_option
@click.pass_obj
def read_cmd(obj: Context, message_id: str, actor: str | None, as_json: bool) -> None:
    """Print a message and record that you read it.

    The message stays in your inbox (marked read); reading it again shows it again.
    """
    factory = obj.factory
    message, first = mailbox.read(factory, message_id, actors.who(factory, actor))
    receipts = mailbox.receipts(factory, message.id)
    sent = mail_view.abroad(factory, message)
    if as_json:
        verified, how = mail_view.vouch(message, receipts)
        output.emit_json({**message.to_record(), "verified": verified, "how": how,
                          "receipts": receipts, "first_read": first, "abroad": sent})  # fmt: skip
    else:
        mail_view.print_message(factory, message, receipts, sent)


@mail_group.command("ack")
@click.argument("message_id", metavar="ID")
@_as_option
@_json_option
@click.pass_obj
def ack_cmd(obj: Context, message_id: str, actor: str | None, as_json: bool) -> None:
    """Acknowledge a message (a record separate from reading it)."""
    factory = obj.factory
    agent = actors.who(factory, actor)
    message, first = mailbox.ack(factory, message_id, agent)
    if as_json:
        output.emit_json({"id": message.id, "acked": True, "already": not first})
    else:
        output.echo(f"acknowledged {message.id}" + ("" if first else " (already)"))


@mail_group.command("reply")
@click.argument("message_id", metavar="ID")
@click.argument("dash", required=False, type=click.Choice(["-"]), metavar="[-]")
@_body_options
@_as_option
@click.option("--all", "everyone", is_flag=True, help="Also to every other recipient.")
@click.option("--ack-required", is_flag=True, help="The recipients must acknowledge.")
@click.option(
    "--priority", type=click.Choice(messages.PRIORITIES), default="normal", show_default=True
)
@_json_option
@click.pass_obj
def reply_cmd(
    obj: Context,
    message_id: str,
    dash: str | None,
    body: str | None,
    body_file: Any,
    actor: str | None,
    everyone: bool,
    ack_required: bool,
    priority: str,
    as_json: bool,
) -> None:
    """Answer a message to its sender, in its thread ('-' reads the body from stdin)."""
    factory = obj.factory
    original = mailbox.get(factory, message_id)
    sent = mailbox.reply(
        factory, original, actors.who(factory, actor), _body(body, body_file, dash == "-"),
        everyone=everyone, ack_required=ack_required, priority=priority,
        vouch=verify.local(factory, actor),
    )  # fmt: skip
    mail_view.report_sent(sent, as_json)


@mail_group.command("thread")
@click.argument("name", metavar="THREAD")
@_json_option
@click.pass_obj
def thread_cmd(obj: Context, name: str, as_json: bool) -> None:
    """Print a whole thread, oldest first (THREAD is its name or any message's id)."""
    found = mailbox.thread(obj.factory, name)
    if as_json:
        output.emit_json([m.to_record() for m in found])
        return
    for n, message in enumerate(found):
        if n:
            output.echo("\n" + "-" * 72)
        mail_view.print_message(obj.factory, message, mailbox.receipts(obj.factory, message.id))


@mail_group.command("search")
@click.argument("query")
@click.option("--limit", type=click.IntRange(1), default=50, show_default=True)
@_json_option
@click.pass_obj
def search_cmd(obj: Context, query: str, limit: int, as_json: bool) -> None:
    """Full-text search of senders, subjects and bodies (every word must match;
    word* matches a prefix), newest first."""
    found = mailbox.search(obj.factory, query, limit)
    empty = f"no message matches {query!r}"
    mail_view.print_rows(obj.factory, found, as_json, empty, flags=False)


@mail_group.command("watch")
@_as_option
@click.option(
    "--unread", is_flag=True, help="First print the messages already there you have not read."
)
@click.option("--count", type=click.IntRange(1), help="Exit after this many messages.")
@click.option(
    "--timeout",
    metavar="DURATION",
    help="Exit with code 3 if nothing arrives for this long (90s, 5m).",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per line.")
@click.pass_obj
def watch_cmd(
    obj: Context,
    actor: str | None,
    unread: bool,
    count: int | None,
    timeout: str | None,
    as_json: bool,
) -> None:
    """Wait for new messages to you or your role and print each as it arrives.

    \b
    The wake-up call of an idle agent:
      gitfactory mail watch --as coder/ada --unread --count 1 --json
    prints the oldest message it has not read, or blocks until the next one is
    committed (within a few hundred ms). Watching records nothing: `mail read` does.
    """
    from gitfactory.store.clock import parse_duration

    factory = obj.factory
    agent = actors.who(factory, actor)
    seconds = parse_duration(timeout, "--timeout") / 1000 if timeout else None
    since = mailbox.mark(factory)
    output.progress(f"watching the inbox of {agent} (Ctrl-C to stop)")
    stream = mailbox.watch(factory, agent, since, unread=unread, timeout=seconds)
    for n, row in enumerate(stream, start=1):
        if as_json:
            output.emit_json(mail_view.row_json(row), lines=True)
        else:
            mail_view.print_rows(factory, [row], False, "")
            sys.stdout.flush()
        if count is not None and n >= count:
            return


@mail_group.command("export")
@_as_option
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@_json_option
@click.pass_obj
def export_cmd(obj: Context, actor: str | None, directory: Path, as_json: bool) -> None:
    """Write your inbox into DIRECTORY as markdown files (<id>.md and INBOX.md).

    This is the view an agent gets next to its worktree: files it can read with
    nothing but cat. Exporting records nothing (it is not reading); files that are
    already up to date are left alone.
    """
    factory = obj.factory
    result = mailbox.export(factory, actors.who(factory, actor), directory)
    if as_json:
        output.emit_json(
            {"directory": str(result.directory), "messages": result.total,
             "written": result.written, "unchanged": result.unchanged}
        )  # fmt: skip
    else:
        output.echo(
            f"{result.total} message(s) in {result.directory} "
            f"({result.written} written, {result.unchanged} unchanged)"
        )


@mail_group.command("ingest")
@click.option(
    "--branch", "branches", multiple=True, help="Only this branch (default: factory.yaml watch)."
)
@_json_option
@click.pass_obj
def ingest_cmd(obj: Context, branches: tuple[str, ...], as_json: bool) -> None:
    """Deliver messages committed with plain git; quarantine invalid ones.

    Looks at the factory branch and at every branch factory.yaml's `watch` names.
    Safe to run any time and from many places: a message is delivered once.
    """
    from gitfactory.mail import postmaster

    report = postmaster.ingest(obj.factory, list(branches) or None)
    if as_json:
        output.emit_json(
            {"delivered": report.delivered, "quarantined": report.quarantined,
             "branches": report.branches, "commit": report.commit}
        )  # fmt: skip
        return
    output.echo(
        f"delivered {len(report.delivered)} message(s), quarantined "
        f"{len(report.quarantined)} (looked at {len(report.branches)} branch(es))"
    )
    for q in report.quarantined:
        output.echo(f"  quarantined {q['path']} on {q['branch']}: {q['reason']}")


@mail_group.command("escalate")
@_json_option
@click.pass_obj
def escalate_cmd(obj: Context, as_json: bool) -> None:
    """Escalate messages whose acknowledgement is overdue (mail.ack_timeout).

    Each one gets a mail.escalated record and a message to its sender, once.
    The daemon runs this on every tick; without it, run it from cron.
    """
    from gitfactory.mail import postmaster

    report = postmaster.escalate(obj.factory)
    if as_json:
        output.emit_json({"escalated": report.escalated, "commit": report.commit})
    else:
        output.echo(f"escalated {len(report.escalated)} message(s)")
