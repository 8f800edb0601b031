"""`gitfactory mcp`: a real MCP client session over stdio against a real factory."""

from __future__ import annotations

import json
import select
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import commit_on_factory, gf, gf_json, git

CONFIG = b"""protocol: "0.3"
name: test
workflows:
  default:
    start: implement
    steps:
      implement: {role: coder, on_success: review}
      review: {role: reviewer, on_success: done}
"""


class Client:
    """An MCP client: newline-delimited JSON-RPC to a `gitfactory mcp` process."""

    def __init__(self, repo: Path, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gitfactory", "mcp", *args], cwd=repo, text=True,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )  # fmt: skip
        self.next_id = 0

    def send(self, message: dict[str, Any] | str) -> None:
        assert self.proc.stdin is not None
        line = message if isinstance(message, str) else json.dumps(message)
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def receive(self, timeout: float = 30) -> dict[str, Any]:
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        assert ready, "the server did not answer"
        answer: dict[str, Any] = json.loads(self.proc.stdout.readline())
        return answer

    def request(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        self.next_id += 1
        self.send({"jsonrpc": "2.0", "id": self.next_id, "method": method,
                   **({"params": params} if params is not None else {})})  # fmt: skip
        answer = self.receive()
        assert answer["id"] == self.next_id
        return answer

    def call(self, tool: str, **arguments: Any) -> dict[str, Any]:
        result: dict[str, Any] = self.request(
            "tools/call", {"name": tool, "arguments": arguments})["result"]
        return result

    def close(self) -> int:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        return self.proc.wait(timeout=30)


def text(result: dict[str, Any]) -> str:
    return str(result["content"][0]["text"])


@pytest.fixture
def repo(factory_repo: Path) -> Path:
    commit_on_factory(factory_repo, {".factory/factory.yaml": CONFIG})
    return factory_repo


def test_an_agent_works_a_step_through_mcp_tools(repo: Path) -> None:
    task = gf_json(repo, "task", "add", "Parse dates")["id"]
    ada = Client(repo, "--as", "coder/ada")
    try:
        hello = ada.request("initialize", {"protocolVersion": "2025-06-18", "capabilities": {},
                                           "clientInfo": {"name": "test", "version": "1"}})
        assert hello["result"]["protocolVersion"] == "2025-06-18"
        assert hello["result"]["serverInfo"]["name"] == "gitfactory"
        ada.send({"jsonrpc": "2.0", "method": "notifications/initialized"})  # no answer
        tools = {t["name"]: t for t in ada.request("tools/list")["result"]["tools"]}
        assert {"next", "step_done", "mail_send", "mail_inbox", "artifact_put"} <= set(tools)
        assert tools["step_done"]["inputSchema"]["required"] == ["task", "outcome"]

        work = ada.call("next")
        assert work["isError"] is False
        assert work["structuredContent"]["task"]["id"] == task
        assert work["structuredContent"]["step"]["name"] == "implement"

        put = ada.call("artifact_put", task=task[:6], name="notes.md", text="# Notes\n\nü\n")
        artifact = put["structuredContent"]
        assert artifact["producer"] == "coder/ada" and artifact["name"] == "notes.md"
        assert text(ada.call("artifact_get", id=artifact["id"])) == "# Notes\n\nü\n"

        sent = ada.call("mail_send", to=["reviewer/*"], subject="Ready", body="Look at it.",
                        task=task)
        assert sent["isError"] is False
        done = ada.call("step_done", task=task[:6], outcome="success", note="parser in place")
        assert done["structuredContent"]["step"]["next"] == "review"
        assert ada.call("next")["structuredContent"] == {
            "work": None, "why": "nothing is ready for you now"}
    finally:
        assert ada.close() == 0

    # What the tools wrote is in git, under the server's identity.
    claimed = gf_json(repo, "log", "--kind", "task.claimed", "--task", task)
    assert [e["actor"] for e in claimed] == ["coder/ada"]
    rex = Client(repo, "--as", "reviewer/rex")
    try:
        inbox = rex.call("mail_inbox", unread=True)["structuredContent"]["items"]
        assert [(m["from"], m["subject"]) for m in inbox] == [("coder/ada", "Ready")]
        assert rex.call("next")["structuredContent"]["step"]["name"] == "review"
    finally:
        rex.close()


def test_identity_and_options_cannot_be_injected_through_arguments(repo: Path) -> None:
    ada = Client(repo, "--as", "coder/ada")
    try:
        added = ada.call("task_add", title="--as=human/boss", body="--priority=0")
        assert added["isError"] is False
        shown = ada.call("task_show", task=added["structuredContent"]["id"])["structuredContent"]
        assert shown["title"] == "--as=human/boss" and shown["requester"] == "coder/ada"
        assert shown["priority"] == 2 and shown["body"] == "--priority=0\n"
        refused = ada.call("task_add", title="x", requester="human/boss")
        assert refused["isError"] is True and "unknown argument 'requester'" in text(refused)
    finally:
        ada.close()
    assert {e["actor"] for e in gf_json(repo, "log")} == {"human/test-user", "coder/ada"}


def test_errors_are_results_or_json_rpc_errors_never_a_dead_server(repo: Path) -> None:
    client = Client(repo, "--as", "coder/ada")
    try:
        missing = client.call("task_show", task="zzzzzz")
        assert missing["isError"] is True and "no task id starts with 'zzzzzz'" in text(missing)
        wrong = client.call("step_done", task="abc", outcome="maybe")
        assert wrong["isError"] is True and "'outcome' must be one of success, failure" in text(wrong)
        assert client.request("tools/call", {"name": "rm_rf"})["error"]["code"] == -32602
        assert client.request("resources/list")["error"]["code"] == -32601
        client.send("{not json")
        assert client.receive()["error"]["code"] == -32700
        assert client.request("ping")["result"] == {}
        old = client.request("initialize", {"protocolVersion": "1999-01-01"})
        assert old["result"]["protocolVersion"] == "2025-11-25"

        # What once killed the server is answered, and the server goes on.
        for line, code in [
            ('{"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": [1]}', -32602),
            ('{"jsonrpc": "2.0", "id": 8}', -32600),
            ('{"jsonrpc": "2.0", "id": null, "method": "ping"}', -32600),
            ("[" * 100_000 + "]" * 100_000, -32700),
            ('{"jsonrpc": "2.0", "id": 9, "method": "ping", "params": {"x": NaN}}', -32700),
        ]:
            client.send(line)
            assert client.receive()["error"]["code"] == code, line
        for arguments, said in [
            ({"task": "a\u0000b"}, "'task' holds a NUL character"),
            ({"task": "\ud800"}, "'task' holds a lone surrogate"),
        ]:
            bad = client.call("task_show", **arguments)
            assert bad["isError"] is True and said in text(bad)
        long = client.call("task_add", title="x" * 70_000)
        assert long["isError"] is True and "at most 65,536 fit on a command line" in text(long)
        keyed = client.call("log_append", kind="note", data={"a=b": 1})
        assert keyed["isError"] is True and "'data' key 'a=b'" in text(keyed)
        client.send('[{"jsonrpc": "2.0", "id": "a", "method": "ping"},'
                    ' {"jsonrpc": "2.0", "method": "notifications/initialized"}]')
        assert client.receive() == [{"jsonrpc": "2.0", "id": "a", "result": {}}]
        assert client.request("ping")["result"] == {}
    finally:
        assert client.close() == 0


def test_a_long_message_body_goes_through(repo: Path) -> None:
    body = "word " * 60_000  # 300 KB: more than one command-line argument may hold
    client = Client(repo, "--as", "coder/ada")
    try:
        sent = client.call("mail_send", to=["reviewer/rex"], subject="Long", body=body)
        assert sent["isError"] is False, text(sent)
    finally:
        client.close()
    [message] = gf_json(repo, "mail", "inbox", "--as", "reviewer/rex")
    read = gf_json(repo, "mail", "read", message["id"], "--as", "reviewer/rex")
    assert read["body"].split() == body.split() and len(read["body"]) >= 299_999


def test_the_server_needs_a_factory(tmp_path: Path) -> None:
    git(tmp_path, "init", "-q", "plain")
    proc = gf(tmp_path / "plain", "mcp", code=2)
    assert "gitfactory init" in proc.stderr
