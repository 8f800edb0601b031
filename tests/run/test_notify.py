"""Notifications (factory.yaml `notify:`): the daemon tells a person what needs them,
through mail, a desktop notification, a command or a webhook, once, whatever restarts."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.conftest import commit_on_factory, gf, gf_json, git, wait_for

BASE = 'protocol: "0.4"\nname: t\n'


def set_notify(repo: Path, rules: str, extra: str = "") -> None:
    commit_on_factory(repo, {".factory/factory.yaml": (BASE + extra + rules).encode()})


def ask(repo: Path, title: str, question: str) -> str:
    task = str(gf_json(repo, "task", "add", title, "--as", "human/lea")["id"])
    gf(repo, "task", "claim", task, "--as", "coder/ada")
    gf(repo, "task", "ask", task, question, "--as", "coder/ada")
    return task


def kinds(repo: Path, kind: str) -> list[dict[str, object]]:
    return [e for e in gf_json(repo, "log") if e["kind"] == kind]


def test_a_question_reaches_its_requester_once_without_any_setup(factory_repo: Path) -> None:
    r = factory_repo
    task = ask(r, "Pick a database", "postgres or sqlite?")
    gf(r, "daemon", "--burst", code=4)  # stops: the question holds the work back
    gf(r, "daemon", "--burst", code=4)  # a second run sends nothing again
    inbox = gf_json(r, "mail", "inbox", "--as", "human/lea")
    assert len(inbox) == 1
    message = gf_json(r, "mail", "read", inbox[0]["id"], "--as", "human/lea")
    assert "postgres or sqlite?" in message["body"] and message["from"] == "factory/notify"
    assert message["task"] == task
    (sent,) = kinds(r, "notify.sent")
    assert sent["data"]["event"] == "question" and sent["data"]["to"] == "requester"
    assert gf_json(r, "mail", "inbox", "--as", "human/other") == []


RECORDER = """import json, sys
with open(sys.argv[1], "a") as out:
    out.write(json.dumps(json.load(sys.stdin)) + "\\n")
"""


def recording(tmp_path: Path) -> tuple[str, Path]:
    """A command for a notify rule that keeps each notification it gets as a JSON line
    in the file it returns (with the command, which the record must not show)."""
    recorder, heard = tmp_path / "recorder.py", tmp_path / "heard.jsonl"
    recorder.write_text(RECORDER)
    return f"{sys.executable} {recorder} {heard}", heard


def test_a_command_hears_each_event_once_across_a_daemon_restart(
    factory_repo: Path, tmp_path: Path
) -> None:
    r = factory_repo
    command, heard = recording(tmp_path)
    set_notify(r, f"notify:\n  - on: [question, failed]\n"
                  f"    command: {command}\n")  # fmt: skip

    def daemon() -> subprocess.Popen[bytes]:
        return subprocess.Popen([sys.executable, "-m", "gitfactory", "daemon"], cwd=r,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip

    first = daemon()
    try:
        task = ask(r, "Name the release", "which version?")
        wait_for(lambda: heard.exists() and heard.read_text().count("\n") >= 1,
                 "the command to hear of the question")  # fmt: skip
        wait_for(lambda: kinds(r, "notify.sent"), "the record of what was sent")
    finally:
        first.send_signal(signal.SIGTERM)
        first.wait(120)
    second = daemon()
    try:
        # Its notice comes after anything the restarted daemon would send again.
        ask(r, "Write the changelog", "keep a changelog format?")
        wait_for(lambda: heard.read_text().count("\n") >= 2, "the second question's notice")
        wait_for(lambda: len(kinds(r, "notify.sent")) >= 2, "its record")
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(120)
    lines = [json.loads(line) for line in heard.read_text().splitlines()]
    assert [n["text"] for n in lines] == ["which version?", "keep a changelog format?"]
    notice = lines[0]
    assert notice["event"] == "question"
    assert notice["task"]["id"] == task and notice["task"]["requester"] == "human/lea"
    assert notice["factory"] == "t"
    sent = kinds(r, "notify.sent")
    assert len(sent) == 2 and command not in json.dumps(sent)  # nor the command


class Hook(BaseHTTPRequestHandler):
    answers: list[int] = []
    seen: list[tuple[dict[str, str], bytes]] = []

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        type(self).seen.append(({k.lower(): v for k, v in self.headers.items()}, body))
        code = type(self).answers.pop(0) if type(self).answers else 200
        self.send_response(code)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def hook() -> Iterator[tuple[type[Hook], str]]:
    handler = type("Handler", (Hook,), {"answers": [], "seen": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield handler, f"http://127.0.0.1:{server.server_address[1]}/hooks/secret-token"
    server.shutdown()
    server.server_close()


def test_a_webhook_is_retried_until_it_answers_and_shaped_for_slack(
    factory_repo: Path, hook: tuple[type[Hook], str]
) -> None:
    r = factory_repo
    handler, url = hook
    handler.answers = [500, 503]  # down twice, then up
    set_notify(r, f"notify:\n  - on: ['*']\n    webhook: {url}\n    format: slack\n"
                  "    retries: 3\n")  # fmt: skip
    ask(r, "Choose a licence", "MIT or Apache-2.0?")
    gf(r, "daemon", "--burst", code=4)
    assert len(handler.seen) == 3
    headers, body = handler.seen[-1]
    assert headers["content-type"] == "application/json"
    said = json.loads(body)
    assert set(said) == {"text"} and "MIT or Apache-2.0?" in said["text"]
    (sent,) = kinds(r, "notify.sent")
    assert "secret-token" not in json.dumps(sent)  # a webhook's URL is often a secret
    gf(r, "daemon", "--burst", code=4)
    assert len(handler.seen) == 3


def test_a_webhook_that_refuses_is_recorded_as_failed_and_not_retried(
    factory_repo: Path, hook: tuple[type[Hook], str]
) -> None:
    r = factory_repo
    handler, url = hook
    handler.answers = [404]
    set_notify(r, f"notify:\n  - on: [question]\n    webhook: {url}\n")
    ask(r, "Pick a colour", "blue?")
    gf(r, "daemon", "--burst", code=4)
    assert len(handler.seen) == 1
    payload = json.loads(handler.seen[0][1])
    assert payload["event"] == "question" and payload["text"] == "blue?"
    (failed,) = kinds(r, "notify.failed")
    assert "404" in str(failed["data"]["error"])
    gf(r, "daemon", "--burst", code=4)
    assert len(handler.seen) == 1  # recorded as failed: not sent again


def test_a_desktop_notification_goes_through_notify_send(
    factory_repo: Path, tmp_path: Path
) -> None:
    r = factory_repo
    bin_dir, said = tmp_path / "bin", tmp_path / "said.txt"
    bin_dir.mkdir()
    (bin_dir / "notify-send").write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" >> {said}\n')
    (bin_dir / "notify-send").chmod(0o755)
    set_notify(r, "notify:\n  - on: [question]\n    desktop: true\n")
    ask(r, "Rename the module", "stats or statistics? <b>")
    gf(r, "daemon", "--burst", code=4, env={"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"})
    args = said.read_text().splitlines()
    assert args[0] == "--app-name=gitfactory"
    assert args[1].startswith("gitfactory: coder/ada asks about")
    assert args[2] == "stats or statistics? &lt;b>"  # notify-send reads markup: escaped
    assert len(kinds(r, "notify.sent")) == 1


def test_without_notify_send_the_failure_is_recorded(factory_repo: Path, tmp_path: Path) -> None:
    r = factory_repo
    set_notify(r, "notify:\n  - on: [question]\n    desktop: true\n")
    ask(r, "Anything", "yes?")
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    git_dir = Path(subprocess.run(["which", "git"], capture_output=True, text=True).stdout).parent
    gf(r, "daemon", "--burst", code=4, env={"PATH": f"{empty}{os.pathsep}{git_dir}"})
    (failed,) = kinds(r, "notify.failed")
    assert "notify-send is not installed" in str(failed["data"]["error"])


def test_a_gate_that_fails_twice_in_a_row_is_told_once(factory_repo: Path, tmp_path: Path) -> None:
    r = factory_repo
    command, heard = recording(tmp_path)
    set_notify(r, f"notify:\n  - on: [gate_failed_twice, failed]\n"
                  f"    command: {command}\n",
               extra="gates:\n  tests:\n    command: echo 3 != 4; exit 1\n"
                     "workflows:\n  default:\n    start: implement\n    steps:\n"
                     "      implement: {role: coder, on_success: check}\n"
                     "      check: {gate: tests, on_failure: implement}\n")  # fmt: skip
    task = gf_json(r, "task", "add", "Fix the sum")["id"]
    for _ in range(3):
        gf_json(r, "next", "--as", "coder/ada")
        gf(r, "step", "done", task, "--as", "coder/ada", "--note", "tried")
        gf(r, "daemon", "--burst", code=None)  # runs the gate; no agent for the next try
    heard_now = [json.loads(line) for line in heard.read_text().splitlines()]
    # The second failure, not the first or the third; then the task ran out of attempts.
    assert [n["event"] for n in heard_now] == ["gate_failed_twice", "failed"]
    assert "exit code 1" in heard_now[0]["text"]


def test_two_channels_in_one_rule_are_refused_with_the_place(factory_repo: Path) -> None:
    r = factory_repo
    set_notify(r, "notify:\n  - on: [question]\n    desktop: true\n    mail: human/lea\n")
    proc = gf(r, "config", "check", code=2)
    assert "notify" in proc.stderr and "exactly one channel" in proc.stderr
    set_notify(r, "notify:\n  - on: [questions]\n    mail: human/lea\n")
    proc = gf(r, "config", "check", code=2)
    assert "questions" in proc.stderr and "notify" in proc.stderr


def test_lost_records_and_a_person_s_step_are_told(factory_repo: Path, tmp_path: Path) -> None:
    r = factory_repo
    command, heard = recording(tmp_path)
    set_notify(r, f"notify:\n  - on: [integrity, human_step]\n"
                  f"    command: {command}\n",
               extra="workflows:\n  default:\n    start: implement\n    steps:\n"
                     "      implement: {role: coder, on_success: approve}\n"
                     "      approve: {role: human, on_success: done}\n")  # fmt: skip
    task = gf_json(r, "task", "add", "Ship the release")["id"]
    gf_json(r, "next", "--as", "coder/ada")
    gf(r, "step", "done", task, "--as", "coder/ada", "--note", "built")
    gf(r, "daemon", "--burst", code=None)
    for i in range(3):
        gf(r, "log", "append", "note", f"n{i}")
    tree = git(r, "rev-parse", "factory~3^{tree}").strip()
    bad = git(r, "commit-tree", tree, "-p", "factory", "-m", "from a stale checkout").strip()
    git(r, "-c", "core.hooksPath=/dev/null", "update-ref", "refs/heads/factory", bad)
    gf(r, "daemon", "--burst", code=None)
    gf(r, "daemon", "--burst", code=None)  # told once
    notices = [json.loads(line) for line in heard.read_text().splitlines()]
    assert [n["event"] for n in notices] == ["human_step", "integrity"]
    assert "approve" in notices[0]["title"] and notices[0]["task"]["id"] == task
    assert "3 record(s) deleted or changed" in notices[1]["text"]


def test_a_webhook_that_never_answers_holds_up_no_other_and_is_recorded(
    factory_repo: Path, hook: tuple[type[Hook], str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket

    r = factory_repo
    handler, url = hook
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    stop = threading.Event()

    def trickle() -> None:  # answers a byte at a time: no read ever times out
        while not stop.is_set():
            try:
                conn, _ = silent.accept()
            except OSError:
                return
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n")
            while not stop.wait(0.2):
                try:
                    conn.sendall(b".")
                except OSError:
                    break
            conn.close()

    threading.Thread(target=trickle, daemon=True).start()
    try:
        base = url.rsplit("/hooks/", 1)[0]
        set_notify(r, f"notify:\n  - on: [question]\n"
                      f"    webhook: http://127.0.0.1:{silent.getsockname()[1]}/hook\n"
                      "    timeout: 1s\n    retries: 0\n"
                      "  - on: [question]\n    webhook: " + base + "/hooks/${HOOK_SECRET}\n"
                      "    format: discord\n")  # fmt: skip
        # Answered before any daemon ran: old news, never sent.
        old = ask(r, "Answered already", "is it old?")
        gf(r, "task", "answer", old, "yes", "--as", "human/lea")
        ask(r, "Choose a licence", "<@everyone> MIT?")
        gf(r, "daemon", "--burst", code=4, env={"HOOK_SECRET": "s3cret"})
    finally:
        stop.set()
        silent.close()
    assert len(handler.seen) == 1  # the other rule went out, once, for the open question
    said = json.loads(handler.seen[0][1])
    assert said["allowed_mentions"] == {"parse": []} and "MIT?" in said["content"]
    assert 'gitfactory task answer' in said["content"]  # what to do about it
    (failed,) = kinds(r, "notify.failed")
    assert "no answer within 1s" in str(failed["data"]["error"])
    assert len(kinds(r, "notify.sent")) == 1
    assert "s3cret" not in json.dumps(gf_json(r, "log"))


def test_a_failure_s_own_words_cannot_stop_the_notifications(
    factory_repo: Path, tmp_path: Path
) -> None:
    r = factory_repo
    command, heard = recording(tmp_path)
    set_notify(r, "notify:\n  - on: [question]\n"
                  "    command: \"printf 'oops\\\\000zz\\\\033[2J' >&2; exit 3\"\n    retries: 0\n"
                  f"  - on: [question]\n    command: {command}\n")  # fmt: skip
    ask(r, "First", "one?")
    gf(r, "daemon", "--burst", code=4)
    ask(r, "Second", "two?")
    gf(r, "daemon", "--burst", code=4)
    assert [json.loads(line)["text"] for line in heard.read_text().splitlines()] == [
        "one?", "two?"]
    failed = kinds(r, "notify.failed")
    assert len(failed) == 2
    assert all("oops zz" in str(f["data"]["error"]) for f in failed)
    assert gf(r, "status").returncode == 0  # no invalid record came of it
