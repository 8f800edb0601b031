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
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from gitfactory import __version__, records

# Revisions of the protocol this server speaks, newest first: it answers with the
# client's revision when it knows it, else with its newest.
PROTOCOL_VERSIONS = ("2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05")
CALL_TIMEOUT_S = 120
NO_WORK = 3  # `gitfactory next`: nothing for you now, which is not an error

PARSE_ERROR, INVALID_REQUEST, METHOD_NOT_FOUND = -32700, -32600, -32601
INVALID_PARAMS, INTERNAL_ERROR = -32602, -32603
MAX_ARG = 64 * 1024  # bytes of one value passed on a command line (Linux allows 128 KiB)
_DATA_KEY = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")

INSTRUCTIONS = """\
gitfactory is the factory's shared state on git: tasks, workflow steps, mail, the log,
artifacts and living documents. Work loop: call `next` to get (and claim) your step;
do it in your worktree and commit; `task_heartbeat` while it takes long; `task_ask`
if you need a person; `step_done` with outcome success or failure and a note. Talk to
other agents with `mail_send` (to role/name, or role/* for every agent of a role) and
read yours with `mail_inbox` and `mail_read`. Every tool acts as the agent this
server was started for."""


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    properties: dict[str, Any]
    required: tuple[str, ...]
    argv: Callable[[dict[str, Any]], list[str]]  # the CLI arguments for a call
    raw: bool = False  # the command prints text, not JSON
    stdin: str | None = None  # the argument that goes to the command's standard input

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "inputSchema": {
                "type": "object",
                "properties": self.properties,
                "required": list(self.required),
                "additionalProperties": False,
            },
        }


def _s(description: str, **extra: Any) -> dict[str, Any]:
    return {"type": "string", "description": description, **extra}


def _opt(args: dict[str, Any], key: str, flag: str) -> list[str]:
    value = args.get(key)
    return [] if value is None else [f"{flag}={value}"]


def _many(args: dict[str, Any], key: str, flag: str) -> list[str]:
    return [f"{flag}={v}" for v in args.get(key) or []]


def _yes(args: dict[str, Any], key: str, flag: str) -> list[str]:
    return [flag] if args.get(key) else []


_TASK = _s("A task id, or any unique prefix of it (6 characters are plenty).")
_MESSAGE = _s("A message id, or any unique run of 4+ of its first or last characters.")
_STRINGS = {"type": "array", "items": {"type": "string"}}

TOOLS = [
    Tool("next", "What do I do now? Returns the step you hold, or claims the top ready "
         "step for your role (atomically: no two agents get the same one). The result has "
         "the task, the step's instructions, how you know you are done, your lease, and "
         "in `previous` how the step before ended, with the report of a failed gate or "
         "merge when that sent the task back to you: read it, it says what to fix. "
         '{"work": null} means nothing is ready for you now.',
         {}, (), lambda a: ["next"]),
    Tool("step_done", "Finish the workflow step you hold: the outcome decides where the "
         "task goes next (a failure goes back along the workflow's on_failure edge).",
         {"task": _TASK, "outcome": _s("How the step ended.", enum=["success", "failure"]),
          "note": _s("What you did, or why it failed (one or two sentences).")},
         ("task", "outcome"),
         lambda a: ["step", "done", *_opt(a, "outcome", "--outcome"), *_opt(a, "note", "--note"),
                    "--", a["task"]]),
    Tool("task_heartbeat", "Renew the lease of a task you hold (do it well before it runs "
         "out on long work, or the task goes back to the queue).",
         {"task": _TASK}, ("task",), lambda a: ["task", "heartbeat", "--", a["task"]]),
    Tool("task_ask", "Put a task you hold on hold with a question for a person; it waits "
         "in state input_required until someone answers.",
         {"task": _TASK, "question": _s("The question, self-contained.")},
         ("task", "question"), lambda a: ["task", "ask", "--", a["task"], a["question"]]),
    Tool("task_show", "One task: state, workflow step, holder, body, history, artifacts.",
         {"task": _TASK}, ("task",), lambda a: ["task", "show", "--", a["task"]]),
    Tool("task_list", "Tasks, oldest first, optionally in one state or with one label.",
         {"state": _s("Only tasks in this state.", enum=["submitted", "working",
                      "input_required", "completed", "failed", "canceled", "rejected"]),
          "label": _s("Only tasks with this label.")},
         (), lambda a: ["task", "list", *_opt(a, "state", "--state"),
                        *_opt(a, "label", "--label")]),
    Tool("task_add", "Add a task to the plan (a follow-up you found, say); you are its "
         "requester.",
         {"title": _s("One line."), "body": _s("What is to be done, in markdown."),
          "priority": {"type": "integer", "minimum": 0, "maximum": 9,
                       "description": "0 is the most urgent; default 2."},
          "labels": {**_STRINGS, "description": "Lowercase labels."},
          "depends_on": {**_STRINGS, "description": "Tasks that must be completed first."}},
         ("title",),
         lambda a: ["task", "add", *_opt(a, "body", "--body"), *_opt(a, "priority", "--priority"),
                    *_many(a, "labels", "--label"), *_many(a, "depends_on", "--depends-on"),
                    "--", a["title"]]),
    Tool("mail_send", "Send a markdown message to agents (role/name), every agent of a "
         "role (role/*) or people (human/name).",
         {"to": {**_STRINGS, "minItems": 1, "description": "Recipients."},
          "subject": _s("One line."), "body": _s("The message, in markdown."),
          "cc": {**_STRINGS, "description": "Copies to."},
          "task": _s("The task it is about."),
          "ack_required": {"type": "boolean",
                           "description": "Every recipient in `to` must acknowledge."},
          "priority": _s("Default normal.", enum=["low", "normal", "high", "urgent"])},
         ("to", "subject"),
         lambda a: ["mail", "send", *_opt(a, "subject", "--subject"), "--file=-",
                    *_many(a, "cc", "--cc"), *_opt(a, "task", "--task"),
                    *_yes(a, "ack_required", "--ack-required"),
                    *_opt(a, "priority", "--priority"), "--", *a["to"]],
         stdin="body"),
    Tool("mail_inbox", "Your messages (and your role's), newest last, with read and "
         "acknowledged flags. Listing marks nothing as read.",
         {"unread": {"type": "boolean", "description": "Only messages you have not read."},
          "unacked": {"type": "boolean",
                      "description": "Only messages waiting for your acknowledgement."}},
         (), lambda a: ["mail", "inbox", *_yes(a, "unread", "--unread"),
                        *_yes(a, "unacked", "--unacked")]),
    Tool("mail_read", "Read one message (its body), and record that you read it.",
         {"id": _MESSAGE}, ("id",), lambda a: ["mail", "read", "--", a["id"]]),
    Tool("mail_ack", "Acknowledge a message that asked for it.",
         {"id": _MESSAGE}, ("id",), lambda a: ["mail", "ack", "--", a["id"]]),
    Tool("mail_reply", "Answer a message, in its thread, to its sender.",
         {"id": _MESSAGE, "body": _s("The answer, in markdown.")}, ("id", "body"),
         lambda a: ["mail", "reply", "--file=-", "--", a["id"]], stdin="body"),
    Tool("log_append", "Write an event to the factory's execution log (what you did or "
         "found, for the record).",
         {"kind": _s("What happened, e.g. test.run or note: lowercase, dots allowed."),
          "text": _s("One line for people."), "task": _s("The task it is about."),
          "data": {"type": "object", "description": "Structured data (any JSON values)."}},
         ("kind",),
         lambda a: ["log", "append", *_opt(a, "task", "--task"),
                    *[f"--data={k}:={json.dumps(v)}" for k, v in (a.get("data") or {}).items()],
                    "--", a["kind"], *([a["text"]] if a.get("text") else [])]),
    Tool("artifact_put", "Store a text file for a task (a log, a report, notes) in the "
         "factory branch, with a manifest.",
         {"task": _TASK, "name": _s("Its file name, e.g. benchmark.md."),
          "text": _s("The content.")},
         ("task", "name", "text"),
         lambda a: ["artifact", "put", f"--name={a['name']}", "--", a["task"], "-"],
         stdin="text"),
    Tool("artifact_list", "Artifacts (transcripts, gate reports, verdicts), of one task or "
         "all.", {"task": _TASK}, (),
         lambda a: ["artifact", "list", *(["--", a["task"]] if a.get("task") else [])]),
    Tool("artifact_get", "The content of a text artifact (a gate's report, say).",
         {"id": _s("An artifact id, or its last 8 characters.")}, ("id",),
         lambda a: ["artifact", "get", "--", a["id"]], raw=True),
    Tool("docs_show", "A living document of this factory: best-practices, start-sequence, "
         "history, or any other the list in `status` names.",
         {"name": _s("The document's name.")}, ("name",),
         lambda a: ["docs", "show", "--", a["name"]], raw=True),
    Tool("status", "The factory at a glance: tasks by state, who holds what, open "
         "questions, whether the daemon runs.", {}, (), lambda a: ["status"]),
]  # fmt: skip
BY_NAME = {t.name: t for t in TOOLS}
_AS = frozenset(
    {"next", "step_done", "task_heartbeat", "task_ask", "task_add", "mail_send", "mail_inbox",
     "mail_read", "mail_ack", "mail_reply", "log_append", "artifact_put"}
)  # fmt: skip


class Server:
    def __init__(self, directory: Path, actor: str | None) -> None:
        self.directory = directory
        self.actor = actor

    # -- the transport ------------------------------------------------------------

    def serve(self, reader: IO[bytes], writer: IO[bytes]) -> None:
        """Answer each request line until the client closes standard input."""
        for line in reader:
            if not line.strip():
                continue
            answer = self.handle_line(line)
            if answer is not None:
                # ASCII on the wire: whatever a tool said, the line is valid UTF-8.
                writer.write(json.dumps(answer, ensure_ascii=True).encode("ascii") + b"\n")
                writer.flush()

    def handle_line(self, line: bytes) -> Any:
        """The answer to one line: an object, a list (for a batch), or None."""
        try:
            message = records.loads(line.decode("utf-8"))
        except (ValueError, RecursionError) as exc:
            why = "nested too deep" if isinstance(exc, RecursionError) else str(exc)
            return _error(None, PARSE_ERROR, f"not JSON: {why}")
        if isinstance(message, list):  # a batch (revision 2025-03-26)
            if not message:
                return _error(None, INVALID_REQUEST, "an empty batch")
            answers = [self.handle(m) for m in message]
            return [a for a in answers if a is not None] or None
        return self.handle(message)

    def handle(self, message: Any) -> dict[str, Any] | None:
        request_id = message.get("id") if isinstance(message, dict) else None
        if not isinstance(request_id, str | int) or isinstance(request_id, bool):
            request_id = None
        if not isinstance(message, dict) or message.get("jsonrpc") != "2.0":
            return _error(request_id, INVALID_REQUEST, "not a JSON-RPC 2.0 message")
        if "method" not in message:
            if "result" in message or "error" in message:
                return None  # a response to a request we never make
            return _error(request_id, INVALID_REQUEST, "a request needs a 'method'")
        notification = "id" not in message
        if not notification and request_id is None:
            return _error(None, INVALID_REQUEST, "'id' must be a string or an integer")
        params = message.get("params", {})
        if not isinstance(params, dict):
            why = "'params' must be an object"
            return None if notification else _error(request_id, INVALID_PARAMS, why)
        try:
            result = self.dispatch(str(message["method"]), params)
        except _RpcError as exc:
            return None if notification else _error(request_id, exc.code, exc.message)
        except Exception as exc:  # a bug: say so, and keep serving
            traceback.print_exc(file=sys.stderr)
            why = f"internal error: {type(exc).__name__}: {exc}"
            return None if notification else _error(request_id, INTERNAL_ERROR, why)
        if notification:
            return None  # a notification is never answered
        return {"jsonrpc": "2.0", "id": request_id, "result": result}

    def dispatch(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        if method == "initialize":
            asked = params.get("protocolVersion")
            version = asked if asked in PROTOCOL_VERSIONS else PROTOCOL_VERSIONS[0]
            return {
                "protocolVersion": version,
                "capabilities": {"tools": {"listChanged": False}},
                "serverInfo": {"name": "gitfactory", "version": __version__},
                "instructions": INSTRUCTIONS,
            }
        if method == "ping" or method.startswith("notifications/"):
            return {}
        if method == "tools/list":
            return {"tools": [t.to_json() for t in TOOLS]}
        if method == "tools/call":
            return self.call(params)
        raise _RpcError(METHOD_NOT_FOUND, f"no method {method!r}")

    # -- tools ----------------------------------------------------------------------

    def call(self, params: dict[str, Any]) -> dict[str, Any]:
        tool = BY_NAME.get(str(params.get("name")))
        if tool is None:
            raise _RpcError(INVALID_PARAMS, f"no tool {params.get('name')!r}")
        args = params.get("arguments") or {}
        problem = _check(tool, args)
        if problem:
            return _result(f"{tool.name}: {problem}", error=True)
        argv = tool.argv(args)
        if self.actor and tool.name in _AS:
            argv.insert(argv.index("--") if "--" in argv else len(argv), f"--as={self.actor}")
        if not tool.raw:
            argv.insert(argv.index("--") if "--" in argv else len(argv), "--json")
        proc = self._run(argv, args.get(tool.stdin, "") if tool.stdin else None)
        if proc is None:
            return _result(f"{tool.name}: gave no answer in {CALL_TIMEOUT_S}s", error=True)
        out = proc.stdout.decode("utf-8", "replace")
        if tool.name == "next" and proc.returncode == NO_WORK:
            idle = {"work": None, "why": "nothing is ready for you now"}
            return _result(json.dumps(idle), structured=idle)
        if proc.returncode != 0:
            said = proc.stderr.decode("utf-8", "replace").strip() or f"exit {proc.returncode}"
            return _result(said, error=True)
        if tool.raw:
            try:
                return _result(proc.stdout.decode("utf-8"))
            except UnicodeDecodeError:
                return _result(
                    f"{tool.name}: not UTF-8 text; `gitfactory artifact get ID -o FILE` "
                    "writes it to a file", error=True,
                )  # fmt: skip
        return _result(out.strip(), structured=_structured(out))

    def _run(self, argv: list[str], given: str | None) -> subprocess.CompletedProcess[bytes] | None:
        try:
            return subprocess.run(
                [sys.executable, "-m", "gitfactory", *argv], cwd=self.directory,
                input=given.encode("utf-8") if given is not None else b"",
                capture_output=True, timeout=CALL_TIMEOUT_S, check=False,
            )  # fmt: skip
        except subprocess.TimeoutExpired:
            return None
        except OSError as exc:  # E2BIG, say: the call fails, the server goes on
            return subprocess.CompletedProcess(argv, 2, b"", f"cannot run: {exc}".encode())


class _RpcError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _check(tool: Tool, args: Any) -> str | None:
    """What is wrong with a call's arguments, against the tool's schema (the types
    this server uses: strings, booleans, integers, objects, arrays of strings)."""
    if not isinstance(args, dict):
        return "arguments must be an object"
    for key in tool.required:
        if key not in args:
            return f"'{key}' is required"
    for key, value in args.items():
        spec = tool.properties.get(key)
        if spec is None:
            return f"unknown argument '{key}' (known: {', '.join(tool.properties) or 'none'})"
        kind = spec["type"]
        ok = {
            "string": isinstance(value, str),
            "boolean": isinstance(value, bool),
            "integer": isinstance(value, int) and not isinstance(value, bool),
            "object": isinstance(value, dict),
            "array": isinstance(value, list) and all(isinstance(v, str) for v in value),
        }[kind]
        if not ok:
            return f"'{key}' must be {'an array of strings' if kind == 'array' else kind}"
        if "enum" in spec and value not in spec["enum"]:
            return f"'{key}' must be one of {', '.join(spec['enum'])}"
        if kind == "array" and len(value) < spec.get("minItems", 0):
            return f"'{key}' needs at least {spec['minItems']} item(s)"
        if kind == "object" and key == "data":
            bad = next((k for k in value if not _DATA_KEY.match(k)), None)
            if bad is not None:
                return f"'data' key {bad!r} must be 1-64 letters, digits, '_', '.' or '-'"
        for text in value if kind == "array" else [value] if kind == "string" else []:
            problem = _text_problem(text, limit=None if key == tool.stdin else MAX_ARG)
            if problem:
                return f"'{key}' {problem}"
    return None


def _text_problem(text: str, limit: int | None) -> str | None:
    if "\x00" in text:
        return "holds a NUL character"
    try:
        size = len(text.encode("utf-8"))
    except UnicodeEncodeError:
        return "holds a lone surrogate (not text)"
    if limit is not None and size > limit:
        return f"is {size:,} bytes; at most {limit:,} fit on a command line"
    return None


def _structured(out: str) -> dict[str, Any] | None:
    try:
        value = json.loads(out)
    except ValueError:
        return None
    return value if isinstance(value, dict) else {"items": value}


def _result(text: str, *, error: bool = False, structured: Any = None) -> dict[str, Any]:
    out: dict[str, Any] = {"content": [{"type": "text", "text": text}], "isError": error}
    if structured is not None:
        out["structuredContent"] = structured
    return out


def _error(request_id: Any, code: int, message: str) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "error": {"code": code, "message": message}}
