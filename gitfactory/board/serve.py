"""Run the board: bind (127.0.0.1 unless told otherwise), say where it is, serve
until interrupted."""

from __future__ import annotations

import secrets
import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from gitfactory.errors import UsageError

LOOPBACK = "127.0.0.1"
LOCAL_NAMES = {"127.0.0.1", "localhost", "[::1]"}


@dataclass(frozen=True)
class Bound:
    sock: socket.socket
    host: str
    port: int
    token: str

    @property
    def url(self) -> str:
        return f"http://{_authority(self.host)}:{self.port}/?token={self.token}"


def bind(host: str = LOOPBACK, port: int = 0) -> Bound:
    """A listening socket (port 0: any free port) and the run's token."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), port))
    except OSError as exc:
        sock.close()
        raise UsageError(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}",
            hint="choose another port with --port N (0 picks a free one)",
        ) from exc
    sock.listen(128)
    sock.set_inheritable(True)
    return Bound(sock, host, sock.getsockname()[1], secrets.token_urlsafe(24))


def serve(bound: Bound, directory: Path | None, actor: str | None,
          ready: Callable[[], None] | None = None) -> None:  # fmt: skip
    """Serve the board on ``bound`` until Ctrl-C or SIGTERM."""
    import uvicorn

    from gitfactory.board.app import Board, create

    board = Board(directory, bound.token, actor)
    hosts = LOCAL_NAMES | {_authority(bound.host).lower()}
    app = create(board, bound.port, hosts)
    config = uvicorn.Config(app, log_level="warning", lifespan="on", access_log=False,
                            timeout_graceful_shutdown=1, server_header=False)  # fmt: skip
    server = uvicorn.Server(config)
    if ready is not None:
        original = server.startup

        async def startup(sockets: list[socket.socket] | None = None) -> None:
            await original(sockets=sockets)
            ready()

        server.startup = startup  # type: ignore[method-assign]
    server.run(sockets=[bound.sock])


def _authority(host: str) -> str:
    return f"[{host.strip('[]')}]" if ":" in host else host
