"""Who may talk to the board: a request must name the board's own host (a page of
another site that resolves its name to 127.0.0.1, DNS rebinding, is refused), come
from the board's own origin if it says where it comes from, and carry the per-run
token. Writes need the token in a header, which another site's page cannot set.

Every answer says not to be cached, framed, or to leak its address (the first URL
holds the token) to another site."""

from __future__ import annotations

import hmac
import json
from collections.abc import Awaitable, Callable, MutableMapping
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qs

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]

HEADER = "x-gitfactory-token"
SAFE_METHODS = frozenset({"GET", "HEAD"})
OPEN_PATHS = frozenset({"/static/board.css", "/static/board.js", "/favicon.ico"})
SECURITY_HEADERS = [
    (b"content-security-policy",
     b"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
     b"connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"cache-control", b"no-store"),
    (b"cross-origin-resource-policy", b"same-origin"),
]  # fmt: skip


class Guard:
    """ASGI middleware in front of the board's routes."""

    def __init__(self, app: App, token: str, hosts: set[str], port: int, base: str = "") -> None:
        self.app = app
        self.token = token
        self.port = port
        self.base = base
        self.open_paths = {f"{base}{p}" for p in OPEN_PATHS}
        self.hosts = {f"{h}:{port}" for h in hosts} | ({*hosts} if port == 80 else set())
        self.any_ip = "*ip" in hosts
        self.cookie = f"gitfactory_board_{port}"  # cookies do not tell ports apart

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        refusal = self.refusal(scope, headers)
        if refusal is not None:
            await _plain(send, *refusal, page="text/html" in headers.get("accept", ""))
            return
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        given = (query.get("token") or [""])[0]
        if given and scope["method"] in SAFE_METHODS and self.matches(given):
            await self.welcome(scope, send)  # keep the token in a cookie, drop it from the URL
            return

        async def guarded(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], *SECURITY_HEADERS]
            await send(message)

        await self.app(scope, receive, guarded)

    def known(self, host: str) -> bool:
        """Whether ``host`` names this board: one of its names, or (listening on every
        address, "*ip") any address by number, which no rebinding name can be."""
        import ipaddress

        host = host.lower()
        if host in self.hosts:
            return True
        name, _, port = host.rpartition(":")
        if not self.any_ip or port != str(self.port):
            return False
        try:
            ipaddress.ip_address(name.strip("[]"))
        except ValueError:
            return False
        return True

    def refusal(self, scope: Scope, headers: dict[str, str]) -> tuple[int, str] | None:
        host = headers.get("host", "")
        if not self.known(host):
            return 421, f"this board answers only to {sorted(self.hosts)[0]}, not {host[:80]!r}"
        origin = headers.get("origin")
        if origin is not None and not (origin.lower().startswith("http://")
                                       and self.known(origin[7:])):  # fmt: skip
            return 403, "a page of another origin may not use this board"
        if scope["path"] in self.open_paths:
            return None
        if scope["method"] not in SAFE_METHODS:
            if not self.matches(headers.get(HEADER, "")):
                return 403, f"a write needs the board's token in the {HEADER} header"
            return None
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        if (self.matches(headers.get(HEADER, "")) or self.matches(self._cookie(headers))
                or self.matches((query.get("token") or [""])[0])):  # fmt: skip
            return None
        return 401, (
            "open the address that `gitfactory board` printed (it carries the token); "
            "this browser has not been given it, or the board was started with a new "
            "token since (`gitfactory board --new-token`)"
        )

    def matches(self, given: str) -> bool:
        return bool(given) and hmac.compare_digest(given.encode(), self.token.encode())

    def _cookie(self, headers: dict[str, str]) -> str:
        jar: SimpleCookie = SimpleCookie()
        try:
            jar.load(headers.get("cookie", ""))
        except Exception:  # a malformed Cookie header: as if there were none
            return ""
        found = jar.get(self.cookie)
        return found.value if found is not None else ""

    async def welcome(self, scope: Scope, send: Send) -> None:
        from urllib.parse import quote, urlencode

        kept = [
            (k, v) for k, vs in parse_qs(scope.get("query_string", b"").decode("latin-1")).items()
            for v in vs if k != "token"
        ]  # fmt: skip
        # Always a path of this board, quoted: never //elsewhere, /\elsewhere, a header.
        path = scope["path"]
        inside = path.startswith(f"{self.base}/")
        target = (quote(path, safe="/-._~") if inside else f"{self.base}/") + (
            f"?{urlencode(kept)}" if kept else "")  # fmt: skip
        cookie = (f"{self.cookie}={self.token}; Path={self.base or '/'}; HttpOnly; "
                  "SameSite=Strict")  # fmt: skip
        await send({"type": "http.response.start", "status": 303, "headers": [
            (b"location", target.encode("ascii")), (b"set-cookie", cookie.encode()),
            *SECURITY_HEADERS, (b"content-length", b"0")]})  # fmt: skip
        await send({"type": "http.response.body", "body": b""})


async def _plain(send: Send, status: int, text: str, page: bool = False) -> None:
    """The refusal: a page for a browser, JSON for a script."""
    import html

    if page:
        body = (
            "<!doctype html><meta charset=utf-8><title>gitfactory board</title>"
            f"<p style='font:16px system-ui;margin:2em'>{html.escape(text)}</p>"
        ).encode()
        kind = b"text/html; charset=utf-8"
    else:
        body, kind = json.dumps({"error": text}).encode(), b"application/json"
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", kind), (b"content-length", str(len(body)).encode()),
        *SECURITY_HEADERS]})  # fmt: skip
    await send({"type": "http.response.body", "body": body})
