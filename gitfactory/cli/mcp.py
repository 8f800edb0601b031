"""gitfactory mcp"""

from __future__ import annotations

import sys

import click

from gitfactory.cli import Context


@click.command("mcp")
@click.option(
    "--as", "actor", metavar="AGENT",
    help="Who every tool acts as (default: $GITFACTORY_AGENT, else you).",
)  # fmt: skip
@click.pass_obj
def mcp_cmd(obj: Context, actor: str | None) -> None:
    """Serve the agent's commands as MCP tools on standard input and output.

    For harnesses that speak the Model Context Protocol (Claude Code, Codex CLI,
    Gemini CLI, OpenCode, ...): next, step_done, task_heartbeat, task_ask,
    task_show, task_list, task_add, mail_send, mail_inbox, mail_read, mail_ack,
    mail_reply, log_append, artifact_put, artifact_list, artifact_get, docs_show,
    status. Each tool runs the same command as the CLI, with its checks.

    Who acts is fixed here, never by a tool's arguments: an agent the daemon
    starts has $GITFACTORY_AGENT set, and a harness started by it passes that on
    to this server.

    \b
    Examples:
      claude mcp add gitfactory -- gitfactory mcp
      codex mcp add gitfactory -- gitfactory mcp
      gitfactory mcp --as coder/ada        (one agent's server, by hand)
    """
    from gitfactory.mcp import server
    from gitfactory.store import actors

    factory = obj.factory
    factory.require_tip()
    who = actors.check(actor) if actor else None
    directory = factory.paths.work_tree or factory.paths.common_dir
    server.Server(directory, who).serve(sys.stdin.buffer, sys.stdout.buffer)
