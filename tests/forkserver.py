"""A warm parent for the `gitfactory` processes the tests start.

Each `gf(...)` call in the tests is a real process running the real entry point, but
starting an interpreter and importing pygit2, click and gitfactory costs ~0.3 s of
CPU, and the suite makes thousands of calls. This server imports all of that once,
then forks one child per request: the child takes the caller's stdin, stdout and
stderr (passed as file descriptors), working directory, environment and arguments,
runs `gitfactory.entry.main()` as `python -m gitfactory` would, and sends its exit
code back before it exits. Set GF_TESTS_SPAWN=1 to start every command from scratch.

Protocol, on a Unix socket: the client sends one JSON request with three descriptors
(stdin, stdout, stderr); the server answers with the child's exit code as text.
"""

from __future__ import annotations

import atexit
import importlib
import json
import os
import signal
import socket
import sys
import time

import gitfactory

MAIN = os.path.join(os.path.dirname(gitfactory.__file__), "__main__.py")


def preload() -> None:
    """Import every module of the package (and so pygit2, click, filelock, ...)."""
    import pkgutil

    for module in pkgutil.walk_packages(gitfactory.__path__, "gitfactory."):
        if not module.name.endswith("__main__"):
            importlib.import_module(module.name)


def child(request: dict[str, object], conn: socket.socket) -> None:
    """In the forked child: become the requested command, run it, report, exit."""
    code = 1
    # The server ignores SIGCHLD to have its children reaped; a command must see its
    # own children's exit codes (and pass no ignored SIGCHLD on to what it runs).
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    try:
        os.chdir(str(request["cwd"]))
        os.environ.clear()
        os.environ.update(request["env"])  # type: ignore[arg-type]
        time.tzset()
        _follow_home()
        sys.argv = [MAIN, *request["args"]]  # type: ignore[misc]
        signal.signal(signal.SIGINT, signal.default_int_handler)
        try:
            from gitfactory.entry import main

            main()
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        atexit._run_exitfuncs()
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:
                pass
        try:
            conn.sendall(str(code).encode())
        finally:
            os._exit(code)


def _follow_home() -> None:
    """libgit2 found the global config under the server's HOME when it was loaded;
    a command run as a fresh process finds it under its own."""
    import pygit2

    home = os.environ.get("HOME", "")
    xdg = os.environ.get("XDG_CONFIG_HOME") or os.path.join(home, ".config")
    pygit2.settings.search_path[pygit2.enums.ConfigLevel.GLOBAL] = home
    pygit2.settings.search_path[pygit2.enums.ConfigLevel.XDG] = os.path.join(xdg, "git")


def serve(path: str) -> None:
    preload()
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children reap themselves
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(64)
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    while True:
        conn, _ = server.accept()
        data, fds, _flags, _addr = socket.recv_fds(conn, 1 << 22, 3)
        while not data.endswith(b"\n"):
            more = conn.recv(1 << 22)
            if not more:
                break
            data += more
        if os.fork() == 0:
            server.close()
            for target, fd in enumerate(fds):
                os.dup2(fd, target)
                os.close(fd)
            child(json.loads(data), conn)
        for fd in fds:
            os.close(fd)
        conn.close()


if __name__ == "__main__":
    serve(sys.argv[1])
