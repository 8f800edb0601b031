"""Run the board: bind (127.0.0.1 unless told otherwise), say where it is, serve
until interrupted."""

from __future__ import annotations

import secrets
import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gitfactory.errors import UsageError

LOOPBACK = "127.0.0.1"
LOCAL_NAMES = {"127.0.0.1", "localhost", "[::1]"}
WILDCARDS = {"0.0.0.0", "::", "[::]"}
TOKEN_FILE = "board.token"


@dataclass(frozen=True)
class Bound:
    sock: socket.socket
    host: str
    port: int
    token: str

    @property
    def url(self) -> str:
        shown = socket.gethostname() if self.host in WILDCARDS else _authority(self.host)
        return f"http://{shown}:{self.port}/?token={self.token}"


def token(factory_dir: Path, fresh: bool = False) -> str:
    """The board's token: kept in the repository's private folder (only you may read
    it), so that a restarted board takes the open pages and bookmarks back; ``fresh``
    makes a new one (the old addresses stop working)."""
    import os
    import stat
    import tempfile

    path = factory_dir / TOKEN_FILE
    if not fresh:
        try:
            seen = os.lstat(path)  # a symlink or a file others may read: made anew
            if stat.S_ISREG(seen.st_mode) and seen.st_mode & 0o077 == 0:
                kept = path.read_text(encoding="ascii").strip()
                if len(kept) >= 32:
                    return kept
        except (OSError, UnicodeDecodeError):
            pass
    made = secrets.token_urlsafe(24)
    factory_dir.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=factory_dir, prefix=".board-token-")  # new, 0600, ours
    with os.fdopen(fd, "w", encoding="ascii") as out:
        out.write(made + "\n")
    os.replace(temp, path)  # replaces a symlink itself, never what it points to
    return made


def bind(host: str, port: int, token: str) -> Bound:
    """A listening socket (port 0: any free port) for the board with ``token``."""
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
    return Bound(sock, host, sock.getsockname()[1], token)


def serve(bound: Bound, directory: Path | None, actor: str | None,
          ready: Callable[[], None] | None = None) -> None:  # fmt: skip
    """Serve the board on ``bound`` until Ctrl-C or SIGTERM."""
    import uvicorn

    from gitfactory.board.app import Board, create

    board = Board(directory, bound.token, actor)
    hosts = LOCAL_NAMES | {_authority(bound.host).lower()}
    if bound.host in WILDCARDS:  # every address of this machine, by number or by name
        hosts |= {socket.gethostname().lower(), socket.getfqdn().lower(), "*ip"}
    app = create(board, bound.port, hosts)
    config = uvicorn.Config(app, log_level="warning", lifespan="on", access_log=False,
                            timeout_graceful_shutdown=1, server_header=False)  # fmt: skip

    class Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: Any) -> None:
            board.end_streams()  # open pages must not hold the stop up
            super().handle_exit(sig, frame)

    server = Server(config)
    if ready is not None:
        original = server.startup

        async def startup(sockets: list[socket.socket] | None = None) -> None:
            await original(sockets=sockets)
            ready()

        server.startup = startup  # type: ignore[method-assign]
    server.run(sockets=[bound.sock])


def _authority(host: str) -> str:
    return f"[{host.strip('[]')}]" if ":" in host else host
