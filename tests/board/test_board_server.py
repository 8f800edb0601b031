"""`gitfactory board` over plain HTTP: it serves the factory, follows the branch, acts
through the library, and refuses what a hostile page or a stranger would try."""

from __future__ import annotations

import http.client
import json
from pathlib import Path

from tests.board.conftest import Served
from tests.conftest import gf, gf_json, git

XSS = "<script>alert('owned')</script>"


def add(repo: Path, title: str, *args: str) -> str:
    return str(gf_json(repo, "task", "add", title, *args)["id"])


def events(repo: Path, kind: str) -> list[dict[str, object]]:
    return [e for e in gf_json(repo, "log") if e["kind"] == kind]


def test_the_printed_address_lets_a_browser_in_and_nothing_else_does(
    factory_repo: Path, serve: type[Served]
) -> None:
    add(factory_repo, "Write the parser")
    board = serve(factory_repo)
    status, _, text = board.request("GET", "/", auth="none")
    assert status == 401 and "Write the parser" not in text
    assert "gitfactory board" in json.loads(text)["error"]  # says where the token is
    status, _, _ = board.request("GET", "/", auth="none",
                                 headers={"Cookie": f"gitfactory_board_{board.port}=guess"})
    assert status == 401
    # The printed address: the token goes into a cookie and out of the address bar.
    status, headers, _ = board.request("GET", f"/?token={board.token}&label=x", auth="none")
    assert status == 303 and headers["location"] == f"{board.prefix}/?label=x"
    cookie = headers["set-cookie"]
    assert f"gitfactory_board_{board.port}={board.token}" in cookie
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    page = board.get("/")
    assert "Write the parser" in page
    # The address's token leads to this board's pages only, never to another site.
    for path in ("//evil.example/", "/\\evil.example/", "/%5Cevil.example/", "/%09/evil.example",
                 "/%E2%80%AE", "/%0d%0aSet-Cookie:x=1"):  # fmt: skip
        status, headers, _ = board.request("GET", f"{path}?token={board.token}", auth="none",
                                           raw=True)  # fmt: skip
        assert status == 303 and headers["location"] == f"{board.prefix}/", path
    # The cookie is the board's path's only: no other server of this machine gets it.
    assert f"Path={board.prefix};" in cookie
    status, headers, _ = board.request("GET", "/")
    assert headers["referrer-policy"] == "no-referrer"  # the token never leaks onward
    assert "frame-ancestors 'none'" in headers["content-security-policy"]


def test_a_page_of_another_site_is_refused_even_with_the_token(
    factory_repo: Path, serve: type[Served]
) -> None:
    task = add(factory_repo, "Keep me at priority 2")
    board = serve(factory_repo)
    # DNS rebinding: evil.example resolves to 127.0.0.1, the browser sends its name.
    for host in ("evil.example", f"evil.example:{board.port}", "127.0.0.1:1", "localhost"):
        status, _, text = board.request("GET", "/", host=host)
        assert status == 421, host
        assert "Keep me" not in text
    status, _, _ = board.request("GET", "/", host=f"localhost:{board.port}")
    assert status == 200
    origin = {"Origin": "http://evil.example"}
    status, _, _ = board.request("GET", "/api/board", headers=origin)
    assert status == 403
    status, _, _ = board.request("POST", f"/api/tasks/{task}/priority", body={"priority": 0},
                                 headers={**origin, "X-Gitfactory-Token": board.token})
    assert status == 403
    # A write with the browser's cookie but without the header (a form of another page).
    status, _, _ = board.request("POST", f"/api/tasks/{task}/priority", body={"priority": 0})
    assert status == 403
    assert gf_json(factory_repo, "task", "show", task)["priority"] == 2
    assert events(factory_repo, "task.edited") == []
    # The same write from the board's own page goes through, and is a record.
    status, body = board.act(task[:6], "priority", {"priority": 0})
    assert status == 200 and body["priority"] == 0
    assert gf_json(factory_repo, "task", "show", task)["priority"] == 0
    (edited,) = events(factory_repo, "task.edited")
    assert edited["task"] == task and str(edited["actor"]).startswith("human/")


def test_every_field_an_agent_wrote_is_text_not_markup(
    factory_repo: Path, serve: type[Served], tmp_path: Path
) -> None:
    task = add(factory_repo, XSS, "--body", f"body {XSS}")
    other = add(factory_repo, f"after {XSS}", "--depends-on", task)
    gf(factory_repo, "task", "claim", task, "--as", "coder/ada")
    gf(factory_repo, "task", "ask", task, f"may I {XSS}?", "--as", "coder/ada")
    gf(factory_repo, "mail", "send", "human/lead", "-s", f"subject {XSS}", "--body", XSS,
       "--task", task, "--as", "coder/ada")  # fmt: skip
    page = tmp_path / "page.html"
    page.write_text(f"<html><body>{XSS}</body></html>")
    artifact_id = str(gf_json(factory_repo, "artifact", "put", task, str(page))["id"])
    board = serve(factory_repo)
    for path in ("/", f"/tasks/{task}", f"/tasks/{other}", "/graph?all=1", "/log", "/agents",
                 "/log?text=alert", f"/?text={XSS[:7]}"):  # fmt: skip
        text = board.get(path.replace("<", "%3C").replace(">", "%3E"))
        assert "<script>alert" not in text, path
    task_page = board.get(f"/tasks/{task}")
    assert "&lt;script&gt;alert(&#39;owned&#39;)&lt;/script&gt;" in task_page
    assert "may I &lt;script&gt;" in task_page and "subject &lt;script&gt;" in task_page
    # An artifact is shown as text, and downloaded as bytes: never as a page.
    shown = board.get(f"/artifacts/{artifact_id}")
    assert "&lt;html&gt;&lt;body&gt;&lt;script&gt;" in shown and "<body><script>" not in shown
    status, headers, raw = board.request("GET", f"/artifacts/{artifact_id}?raw=1")
    assert status == 200 and headers["content-type"] == "application/octet-stream"
    assert headers["content-disposition"].startswith("attachment")
    assert headers["x-content-type-options"] == "nosniff"


def test_nothing_is_served_outside_the_routes(factory_repo: Path, serve: type[Served]) -> None:
    board = serve(factory_repo)
    assert "--line" in board.get("/static/board.css") or "--fg" in board.get("/static/board.css")
    for path in (
        "/../pyproject.toml", "/%2e%2e/%2e%2e/.git/config", "/static/../../pyproject.toml",
        "/static/..%2f..%2f..%2fpyproject.toml",
        "/static/%2e%2e/%2e%2e/__init__.py", "/static/app.py", "/static/board.css/..%2fapp.py",
        "/static/templates/base.html", "/templates/base.html", "/..%2f..%2f.git/config",
        "/.git/config", "/etc/passwd", "/artifacts/..%2f..%2fconfig", "/tasks/..%2f..%2fHEAD",
        "/api/tasks/x/../../../etc/passwd", "/static/%2fetc%2fpasswd",
    ):  # fmt: skip
        for raw in (False, True):  # under the board's path, and outside it
            status, _, text = board.request("GET", path, raw=raw)
            assert status in (400, 401, 404) and (raw or status != 401), (path, raw, status)
            for secret in ("[build-system]", "[core]", "root:", "import ", "<!doctype"):
                assert secret not in text, (path, secret)
    status, _, _ = board.request("POST", "/api/tasks/x/rm", body={}, auth="header")
    assert status == 404
    status, _, _ = board.request("DELETE", "/", auth="header")
    assert status in (404, 405)
    for before in ("99999999999999999999999", "-1", "x"):  # the log's paging: newest
        assert "in the log" in board.get(f"/log?before={before}")


def test_the_actions_move_tasks_and_say_why_when_they_cannot(
    factory_repo: Path, serve: type[Served]
) -> None:
    asked = add(factory_repo, "Pick the database")
    gf(factory_repo, "task", "claim", asked, "--as", "coder/ada")
    gf(factory_repo, "task", "ask", asked, "postgres or sqlite?", "--as", "coder/ada")
    idle = add(factory_repo, "Nothing asked here")
    board = serve(factory_repo)
    status, body = board.act(idle, "answer", {"text": "sqlite"})
    assert status == 409 and "answer" in str(body["message"])
    status, body = board.act(asked, "answer", {"text": "  "})
    assert status == 400 and "empty" in str(body["message"])
    status, body = board.act(asked, "answer", {"text": "sqlite, for now"})
    assert status == 200
    shown = gf_json(factory_repo, "task", "show", asked)
    assert shown["state"] == "working" and shown["assignee"] == "coder/ada"
    (answered,) = events(factory_repo, "task.answered")
    assert answered["text"] == "sqlite, for now"
    status, body = board.act(idle, "cancel", {"reason": "not needed"})
    assert status == 200 and gf_json(factory_repo, "task", "show", idle)["state"] == "canceled"
    status, body = board.act(idle, "retry", {"reason": "needed after all"})
    assert status == 200 and gf_json(factory_repo, "task", "show", idle)["state"] == "submitted"
    for bad in ("high", 10, -1, "٣"):
        status, body = board.act(idle, "priority", {"priority": bad})
        assert status == 400 and "0 to 9" in str(body["message"]), bad
    for bad_body in ({"priority": None}, {"reason": ["a"]}, {"step": {"x": 1}}):
        status, body = board.act(idle, "retry", bad_body)
        assert status == 400 and "must be a string" in str(body["message"]), bad_body
    status, _, _ = board.request("POST", f"/api/tasks/{idle}/cancel", auth="header",
                                 body=b"[" * 30_000 + b"]" * 30_000)  # fmt: skip
    assert status in (400, 413)
    status, body = board.act("zzzz", "cancel", {})
    assert status == 404
    status, _, text = board.request("POST", f"/api/tasks/{idle}/cancel", body=b"not json",
                                    auth="header")  # fmt: skip
    assert status == 400 and "JSON" in text
    status, _, _ = board.request("POST", f"/api/tasks/{idle}/cancel", body=b"x" * 70_000,
                                 auth="header")  # fmt: skip
    assert status == 413


def test_an_open_stream_hears_of_every_commit_on_the_branch(
    factory_repo: Path, serve: type[Served]
) -> None:
    board = serve(factory_repo)
    conn = http.client.HTTPConnection("127.0.0.1", board.port, timeout=120)
    conn.request("GET", f"{board.prefix}/events", headers={"Cookie": board.cookie})
    response = conn.getresponse()
    assert response.status == 200
    assert response.getheader("content-type", "").startswith("text/event-stream")

    def next_tip() -> str:
        kind = ""
        while True:
            line = response.fp.readline().decode().rstrip("\n")
            if line.startswith("event: "):
                kind = line[7:]
            elif line.startswith("data: ") and kind == "tip":
                return str(json.loads(line[6:]))

    assert next_tip() == git(factory_repo, "rev-parse", "factory").strip()
    add(factory_repo, "Appears in open pages")
    assert next_tip() == git(factory_repo, "rev-parse", "factory").strip()
    # A commit by plain git (not through gitfactory) is heard the same way.
    gf(factory_repo, "log", "append", "note", "by hand")
    assert next_tip() == git(factory_repo, "rev-parse", "factory").strip()
    assert "Appears in open pages" in board.get("/fragment/board")
    # Stopping the board with a page open ends the stream at once, without complaint.
    board.proc.terminate()
    assert board.proc.wait(30) in (0, -15)  # uvicorn ends by the signal it was sent
    assert response.fp.read().endswith(b"0\r\n\r\n")  # the stream was ended, cleanly
    conn.close()
    stderr = board.proc.stderr.read()  # type: ignore[union-attr]
    assert "Traceback" not in stderr and "CancelledError" not in stderr, stderr


def test_a_restarted_board_keeps_its_token_until_a_new_one_is_asked_for(
    factory_repo: Path, serve: type[Served]
) -> None:
    first = serve(factory_repo)
    token = first.token
    first.close()
    token_file = factory_repo / ".git" / "gitfactory" / "board.token"
    assert token_file.stat().st_mode & 0o777 == 0o600
    again = serve(factory_repo)
    assert again.token == token  # open pages and bookmarks work again
    again.close()
    # A token file others could read, or a symlink put in its place: never used, never
    # written through.
    precious = factory_repo.parent / "precious.txt"
    precious.write_text("keep me\n")
    token_file.unlink()
    token_file.symlink_to(precious)
    moved = serve(factory_repo)
    assert moved.token != token and precious.read_text() == "keep me\n"
    assert not token_file.is_symlink() and token_file.stat().st_mode & 0o777 == 0o600
    moved.close()
    token = moved.token
    fresh = serve(factory_repo, "--new-token")
    assert fresh.token != token
    status, headers, text = fresh.request(
        "GET", "/", auth="none", headers={"Cookie": f"gitfactory_board_{fresh.port}={token}",
                                         "Accept": "text/html"})  # fmt: skip
    assert status == 401 and headers["content-type"].startswith("text/html")
    assert "--new-token" in text


def test_listening_on_every_address_takes_addresses_but_not_names(
    factory_repo: Path, serve: type[Served]
) -> None:
    board = serve(factory_repo, "--host", "0.0.0.0")
    for host in (f"127.0.0.1:{board.port}", f"10.1.2.3:{board.port}", f"[::1]:{board.port}"):
        status, _, _ = board.request("GET", "/", host=host)
        assert status == 200, host
    for host in (f"evil.example:{board.port}", f"10.1.2.3:{board.port + 1}", "10.1.2.3"):
        status, _, _ = board.request("GET", "/", host=host)
        assert status == 421, host


def test_the_agents_page_shows_who_runs_what_and_its_latest_output(
    tmp_path: Path, serve: type[Served]
) -> None:
    import signal
    import subprocess
    import sys

    from tests.conftest import project_with_agent, wait_for

    stop = tmp_path / "stop"
    r = project_with_agent(tmp_path, f"#!/bin/sh\necho 'compiling the parser'\n"
                                     f"while [ ! -f {stop} ]; do sleep 0.1; done\n",
                           "an agent that works until told")  # fmt: skip
    task = add(r, "Write the parser")
    board = serve(r)
    daemon = subprocess.Popen([sys.executable, "-m", "gitfactory", "daemon"], cwd=r,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        page = wait_for(lambda: (lambda p: "compiling the parser" in p and p)(
            board.get("/fragment/agents")), "the running agent's output on the agents page")
        assert "Write the parser" in page and "coder/" in page
        assert "worktrees" in page  # where it runs
        assert f"/tasks/{task}" in page
        card = board.get("/fragment/board").split(f'data-task="{task}"', 1)[1]
        assert 'class="runtime' in card.split("</article>", 1)[0]  # how long, of its limit
    finally:
        stop.touch()
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(120)


def test_cards_say_why_a_task_failed_and_what_can_no_longer_come(
    factory_repo: Path, serve: type[Served]
) -> None:
    from tests.plan.test_retry import failed_task

    failed = failed_task(factory_repo)
    after = add(factory_repo, "Ship what it fixes", "--depends-on", failed)
    done = add(factory_repo, "Done already")
    gf(factory_repo, "step", "done", done, "--override", "--outcome", "success", "--reason",
       "done by hand", "--as", "human/lead")  # fmt: skip
    while gf_json(factory_repo, "task", "show", done)["state"] != "completed":
        gf(factory_repo, "step", "done", done, "--override", "--outcome", "success",
           "--reason", "done by hand", "--as", "human/lead")  # fmt: skip
    waits = add(factory_repo, "Waits on both", "--depends-on", done, "--depends-on", after)
    board = serve(factory_repo)
    page = board.get("/fragment/board")
    card = page.split(f'data-task="{failed}"', 1)[1].split("</article>", 1)[0]
    assert 'class="why-card"' in card and "attempt limit" in card  # why, on the card
    blocked = page.split(f'data-task="{after}"', 1)[1].split("</article>", 1)[0]
    assert "blocked: 1 of what it needs has failed" in blocked
    both = page.split(f'data-task="{waits}"', 1)[1].split("</article>", 1)[0]
    assert "waits for 1 task" in both  # the completed one is not counted
