"""An MCP server over stdio: the CLI's agent commands as tools for a harness.

The transport is MCP's stdio one: newline-delimited JSON-RPC 2.0 on standard input
and output, diagnostics on standard error. A tool-only server needs few methods:
``initialize`` (version negotiation), ``notifications/initialized``, ``ping``,
``tools/list`` and ``tools/call``.

Each tool call runs the real CLI (``python -m gitfactory ... --json``) as a child
process, so a tool does exactly what its command does, with the same checks and
errors, and the server keeps no state that could go stale between calls (the
factory branch may move under it at any time). A child costs ~0.3 s, far below an
agent's turn.

Who acts is fixed when the server starts (``--as``, else ``$GITFACTORY_AGENT``,
which the daemon sets for every agent it starts, else the git user): no tool takes
an identity, so an agent cannot write as another. Values from the client are passed
as ``--option=value`` and positional arguments after ``--``, so no value can become
an option of the command.

``server`` speaks the protocol; ``tools`` is the table of tools and the CLI
commands they run.

On the top floor with ``gitfactory.cli``: it may import any floor below, and runs
the CLI as child processes rather than importing it.
"""
