"""A real `gitfactory board` process on 127.0.0.1, started and stopped by the test,
and plain HTTP requests to it (any Host, Origin and headers a browser or an
attacker could send)."""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest


class Served:
    """`gitfactory board --port 0 --json` in ``repo``: its address and token."""

    def __init__(self, repo: Path, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gitfactory", "board", "--port", "0", "--json", *args],
            cwd=repo, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={**os.environ},
        )  # fmt: skip
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            self.proc.wait(30)
            raise AssertionError(f"the board did not start: {self.proc.stderr.read()}")  # type: ignore[union-attr]
        info = json.loads(line)
        self.url, self.port, self.token = info["url"], info["port"], info["token"]
        self.cookie = f"gitfactory_board_{self.port}={self.token}"
        # Every page lives under the board's own path, where the printed address leads.
        status, headers, _ = self.request("GET", f"/?token={self.token}", auth="none", raw=True)
        assert status == 303, status
        self.prefix = headers["location"].rstrip("/")
        self.base = f"http://127.0.0.1:{self.port}{self.prefix}"

    def request(
        self, method: str, path: str, *, body: object = None, host: str | None = None,
        headers: dict[str, str] | None = None, auth: str = "cookie", raw: bool = False,
    ) -> tuple[int, dict[str, str], str]:  # fmt: skip
        """One request to ``path`` under the board's own path (``raw``: as given);
        ``auth``: "cookie" (a browser that opened the printed address), "header" (the
        token header, as the page's script sends it) or "none"."""
        path = path if raw else self.prefix + path
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
            conn.putheader("Host", host or f"127.0.0.1:{self.port}")
            sent = dict(headers or {})
            if auth == "cookie":
                sent.setdefault("Cookie", self.cookie)
            elif auth == "header":
                sent.setdefault("X-Gitfactory-Token", self.token)
            data = b""
            if body is not None:
                data = body if isinstance(body, bytes) else json.dumps(body).encode()
                sent.setdefault("Content-Type", "application/json")
            sent["Content-Length"] = str(len(data))
            for key, value in sent.items():
                conn.putheader(key, value)
            conn.endheaders(data)
            response = conn.getresponse()
            text = response.read().decode("utf-8", "replace")
            return response.status, {k.lower(): v for k, v in response.getheaders()}, text
        finally:
            conn.close()

    def get(self, path: str, **kw: object) -> str:
        status, _, text = self.request("GET", path, **kw)  # type: ignore[arg-type]
        assert status == 200, f"GET {path}: {status} {text[:300]}"
        return text

    def act(self, task: str, verb: str, body: dict[str, object]) -> tuple[int, dict[str, object]]:
        status, _, text = self.request("POST", f"/api/tasks/{task}/{verb}", body=body,
                                       auth="header")  # fmt: skip
        return status, json.loads(text)

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(30)


@pytest.fixture
def serve() -> Iterator[type[Served]]:
    started: list[Served] = []

    class Tracked(Served):
        def __init__(self, repo: Path, *args: str) -> None:
            super().__init__(repo, *args)
            started.append(self)

    yield Tracked
    for served in started:
        served.close()
