"""The MCP server: JSON-RPC 2.0 over stdio, each tool call a run of the real CLI."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import traceback
from pathlib import Path
from typing import IO, Any

from gitfactory import __version__
from gitfactory.mcp.tools import AS_AGENT, BY_NAME, INSTRUCTIONS, TOOLS, Tool
from gitfactory.store import records

# Revisions of the protocol this server speaks, newest first: it answers with the
# client's revision when it knows it, else with its newest.
PROTOCOL_VERSIONS = ("2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05")
CALL_TIMEOUT_S = 120
NO_WORK = 3  # `gitfactory next`: nothing for you now, which is not an error

PARSE_ERROR, INVALID_REQUEST, METHOD_NOT_FOUND = -32700, -32600, -32601
INVALID_PARAMS, INTERNAL_ERROR = -32602, -32603
MAX_ARG = 64 * 1024  # bytes of one value passed on a command line (Linux allows 128 KiB)
_DATA_KEY = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


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
        if self.actor and tool.name in AS_AGENT:
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
                # Who this server acts as is who its calls are (mail from it is verified).
                env={**os.environ, "GITFACTORY_AGENT": self.actor} if self.actor else None,
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
