"""The board as an ASGI app (Starlette): pages, their live fragments, a JSON API,
the actions, and a server-sent event stream that says when the factory branch moved.

One worker thread owns the factory handle (its SQLite index is not shared between
threads) and does every read and write; the event loop only waits for it. A
follower task watches the branch tip the way the daemon does and tells every open
page, which then fetches its fragments again.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlencode

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route

from gitfactory.board import actions, graph, pages, timeline, views
from gitfactory.board.guard import Guard
from gitfactory.errors import FactoryError
from gitfactory.store.factory import Factory

T = TypeVar("T")
FOLLOW_S = 0.1  # how often the follower reads the branch tip (a file read)
PING_S = 15.0  # a comment on an idle event stream, so that proxies keep it open
BODY_MAX = 64_000  # bytes of an action's request body
_STATUS = {1: 409, 2: 400, 4: 422, 5: 503, 6: 503}


class Board:
    """The state of one running board: its factory, worker, token and open streams."""

    def __init__(self, directory: Path | None, token: str, actor: str | None = None) -> None:
        self.directory = directory
        self.token = token
        self.actor = actor
        self.worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gitfactory-board")
        self._factory: Factory | None = None
        self.tip: str | None = None
        self.streams: set[asyncio.Queue[str | None]] = set()
        self.followed = asyncio.Event()  # the follower has read the tip once
        self.name = "gitfactory"  # the factory's name, for page titles
        self.base = base_path(token)
        self.loop: asyncio.AbstractEventLoop | None = None  # the server's, once it follows

    async def run(self, fn: Callable[[Factory], T]) -> T:
        return await asyncio.wrap_future(self.worker.submit(self._in_worker, fn))

    def _in_worker(self, fn: Callable[[Factory], T]) -> T:
        if self._factory is None:
            self._factory = Factory.discover(self.directory)
        return fn(self._factory)

    def who(self, factory: Factory) -> str:
        from gitfactory.store import actors

        return actors.who(factory, self.actor)

    async def follow(self) -> None:
        """Tell every open page when the factory branch moves."""
        self.loop = asyncio.get_running_loop()
        while True:
            try:
                tip = await self.run(_refreshed_tip)
            except FactoryError:
                tip = None
            if tip != self.tip:
                self.tip = tip
                with contextlib.suppress(FactoryError):
                    self.name = await self.run(_name)
                for queue in list(self.streams):
                    queue.put_nowait(tip or "")
            self.followed.set()
            await asyncio.sleep(FOLLOW_S)

    def end_streams(self) -> None:
        """End every open event stream (from any thread): the server is stopping, and
        would otherwise wait for them."""
        loop = self.loop
        for queue in list(self.streams):
            if loop is not None and not loop.is_closed():
                loop.call_soon_threadsafe(queue.put_nowait, None)

    def close(self) -> None:
        for queue in list(self.streams):
            queue.put_nowait(None)
        self.worker.shutdown(wait=False, cancel_futures=True)


def base_path(token: str) -> str:
    """The path every page of the board lives under: fixed by the token (so that a
    restarted board keeps its addresses), and telling nothing of it."""
    import hashlib
    import hmac

    return (
        "/b/" + hmac.new(token.encode(), b"gitfactory board path", hashlib.sha256).hexdigest()[:20]
    )


def _name(factory: Factory) -> str:
    from gitfactory.config import factory_yaml

    return factory_yaml.load(factory).name


def _refreshed_tip(factory: Factory) -> str | None:
    tip = factory.tip()
    if tip is not None and tip != factory.index.indexed_tip():
        factory.index.refresh()  # once here, not once per open page
    return tip


def create(board: Board, port: int, hosts: set[str]) -> Guard:
    """The app behind its guard."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        follower = asyncio.create_task(board.follow())
        try:
            yield
        finally:
            follower.cancel()
            board.close()

    links = pages.Links(base=board.base)

    def fragment(request: Request) -> bool:
        """Whether a page asks for its live part only (``/fragment/...``)."""
        return request.url.path.startswith(f"{board.base}/fragment/")

    def page(name: str, **context: Any) -> HTMLResponse:
        return HTMLResponse(pages.render(name, links, token=board.token,
                                         factory_name=board.name, **context))  # fmt: skip

    async def guarded(fn: Callable[[], Any]) -> Response:
        try:
            result: Response = await fn()
            return result
        except FactoryError as exc:
            html = pages.render("error.html", links, token=board.token, page="error",
                                factory_name=board.name, error=exc.message,
                                hint=exc.hint or "")  # fmt: skip
            return HTMLResponse(html, status_code=_status(exc))

    async def board_page(request: Request) -> Response:
        filters = views.Filters.of(request.query_params)
        part = fragment(request)

        async def go() -> Response:
            data = await board.run(lambda f: views.board(f, filters))
            return page("_columns.html" if part else "board.html", data=data, page="board",
                        query=request.url.query)  # fmt: skip

        return await guarded(go)

    async def task_page(request: Request) -> Response:
        part = fragment(request)
        text = request.path_params["task"]

        async def go() -> Response:
            data = await board.run(lambda f: timeline.task_page(f, text))
            return page("_task.html" if part else "task.html", t=data, page="task")

        return await guarded(go)

    async def graph_page(request: Request) -> Response:
        everything = request.query_params.get("all") == "1"

        async def go() -> Response:
            data = await board.run(lambda f: graph.plan_graph(f, everything))
            name = "_graph.html" if fragment(request) else "graph.html"
            return page(name, g=data, page="graph")

        return await guarded(go)

    async def agents_page(request: Request) -> Response:
        async def go() -> Response:
            data = await board.run(views.agents)
            name = "_agents.html" if fragment(request) else "agents.html"
            return page(name, a=data, page="agents")

        return await guarded(go)

    async def log_page(request: Request) -> Response:
        filters = views.LogFilters.of(request.query_params)
        given = request.query_params.get("before", "")
        before = int(given) if given.isascii() and given.isdigit() and len(given) < 18 else None

        async def go() -> Response:
            data = await board.run(lambda f: views.log(f, filters, before_seq=before))
            name = "_log.html" if fragment(request) else "log.html"
            kept = urlencode([(k, v) for k, v in request.query_params.multi_items()
                              if k != "before"])  # fmt: skip
            return page(name, log=data, page="log", query=request.url.query,
                        query_without_before=kept)  # fmt: skip

        return await guarded(go)

    async def artifact_page(request: Request) -> Response:
        text = request.path_params["artifact"]

        async def go() -> Response:
            record, data, shown = await board.run(lambda f: timeline.artifact(f, text))
            if request.query_params.get("raw") == "1" or shown is None:
                # What an agent wrote is never served as a page: bytes, to be saved.
                name = record["name"].replace('"', "")
                return Response(data, media_type="application/octet-stream", headers={
                    "content-disposition": f'attachment; filename="{name}"'})  # fmt: skip
            return page("artifact.html", a=record, text=shown, page="artifact")

        return await guarded(go)

    async def api_board(request: Request) -> Response:
        filters = views.Filters.of(request.query_params)
        return await _api(lambda: board.run(lambda f: views.board(f, filters)))

    async def api_task(request: Request) -> Response:
        text = request.path_params["task"]
        return await _api(lambda: board.run(lambda f: timeline.task_page(f, text)))

    async def act(request: Request) -> Response:
        verb, text = request.path_params["verb"], request.path_params["task"]
        body = await _body(request)
        if isinstance(body, Response):
            return body

        def do(f: Factory) -> dict[str, Any]:
            who = board.who(f)
            if verb == "answer":
                return actions.answer(f, text, who, body.get("text", ""))
            if verb == "retry":
                return actions.retry(f, text, who, body.get("step"), body.get("reason", ""))
            if verb == "cancel":
                return actions.cancel(f, text, who, body.get("reason", ""))
            return actions.reprioritise(f, text, who, body.get("priority", ""))

        return await _api(lambda: board.run(do))

    async def events(request: Request) -> Response:
        queue: asyncio.Queue[str | None] = asyncio.Queue()

        async def stream() -> AsyncIterator[str]:
            try:
                await board.followed.wait()  # the first tip a page hears is a real one
                board.streams.add(queue)  # from here on, every move is queued
                sent = board.tip or ""
                yield f"retry: 1000\nevent: tip\ndata: {json.dumps(sent)}\n\n"
                while True:
                    try:
                        tip = await asyncio.wait_for(queue.get(), PING_S)
                    except TimeoutError:
                        yield ": ping\n\n"
                        continue
                    if tip is None:
                        return
                    if tip != sent:
                        sent = tip
                        yield f"event: tip\ndata: {json.dumps(tip)}\n\n"
            finally:
                board.streams.discard(queue)

        return StreamingResponse(stream(), media_type="text/event-stream",
                                 headers={"x-accel-buffering": "no"})  # fmt: skip

    async def static(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in pages.ASSETS:
            return _not_found()
        return Response(pages.asset(name), media_type=pages.ASSETS[name])

    routes = [
        Route("/", board_page), Route("/fragment/board", board_page),
        Route("/tasks/{task}", task_page), Route("/fragment/tasks/{task}", task_page),
        Route("/graph", graph_page), Route("/fragment/graph", graph_page),
        Route("/agents", agents_page), Route("/fragment/agents", agents_page),
        Route("/log", log_page), Route("/fragment/log", log_page),
        Route("/artifacts/{artifact}", artifact_page),
        Route("/api/board", api_board), Route("/api/tasks/{task}", api_task),
        Route("/api/tasks/{task}/{verb:str}", act, methods=["POST"]),
        Route("/events", events), Route("/static/{name}", static),
    ]  # fmt: skip
    # Every page lives under the board's own path: its cookie goes nowhere else, not
    # even to another server of this machine (cookies do not tell ports apart).
    app = Starlette(routes=[Mount(board.base, routes=routes)], lifespan=lifespan,
                    exception_handlers={404: _on_404})  # fmt: skip
    return Guard(app, board.token, hosts, port, board.base)


VERBS = frozenset({"answer", "retry", "cancel", "priority"})


async def _body(request: Request) -> dict[str, Any] | Response:
    if request.path_params["verb"] not in VERBS:
        return _not_found()
    raw = await request.body()
    if len(raw) > BODY_MAX:
        return _bad(f"the request is over {BODY_MAX:,} bytes", 413)
    try:
        body = json.loads(raw or b"{}")
    except (ValueError, RecursionError):
        return _bad("the request body is not JSON (or nests too deep)", 400)
    if not isinstance(body, dict):
        return _bad("the request body must be a JSON object", 400)
    wrong = [k for k, v in body.items() if not isinstance(v, str | int) or isinstance(v, bool)]
    if wrong:
        return _bad(f"{wrong[0]!r} must be a string", 400)
    return body


async def _api(fn: Callable[[], Any]) -> Response:
    try:
        return JSONResponse(await fn())
    except FactoryError as exc:
        return JSONResponse(exc.to_json(), _status(exc))


def _status(exc: FactoryError) -> int:
    if type(exc).__name__.endswith("NotFoundError"):
        return 404
    return _STATUS.get(exc.exit_code, 500)


def _bad(message: str, status: int) -> Response:
    return JSONResponse({"error": "BadRequest", "message": message}, status)


def _not_found() -> Response:
    return JSONResponse({"error": "no such page"}, 404)


async def _on_404(request: Request, exc: Exception) -> Response:
    return _not_found()
