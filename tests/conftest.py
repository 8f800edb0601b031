"""Shared fixtures: real repositories in temp dirs, real `gitfactory` processes.

The whole session runs with a pinned git identity, an empty global git config and UTC;
every test gets a fresh `HOME` of its own. A guard fails a test that wrote to one of the
places in the real home that gitfactory itself could write to (other programs on the
machine write to the real home at any time: it is not watched as a whole).
"""

from __future__ import annotations

import atexit
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

REAL_HOME = Path.home()
# What gitfactory could write under a home directory (a systemd unit, a config or
# cache folder of its own, git's global config), relative to it.
OURS_IN_HOME = (
    ".gitconfig",
    ".config/git",
    ".config/gitfactory",
    ".config/systemd/user",
    ".cache/gitfactory",
    ".local/share/gitfactory",
    ".local/state/gitfactory",
)


@pytest.fixture(scope="session", autouse=True)
def _isolated_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    config = tmp_path_factory.mktemp("gitconfig")
    gitconfig = config / ".gitconfig"
    gitconfig.write_text("[user]\n\tname = Test User\n\temail = test@example.com\n"
                         "[init]\n\tdefaultBranch = main\n")
    saved = dict(os.environ)
    for key in list(os.environ):
        if key.startswith(("GIT_", "GITFACTORY_")):
            del os.environ[key]
    os.environ.update(
        GIT_CONFIG_GLOBAL=str(gitconfig),
        GIT_CONFIG_NOSYSTEM="1",
        TZ="UTC",
        LC_ALL="C.UTF-8",
    )
    yield
    os.environ.clear()
    os.environ.update(saved)


def _ours_in_real_home() -> dict[str, tuple[int, int] | None]:
    state: dict[str, tuple[int, int] | None] = {}
    for name in OURS_IN_HOME:
        path = REAL_HOME / name
        try:
            found = [path, *path.rglob("*")] if path.is_dir() else [path]
            state[name] = (len(found), max(p.lstat().st_mtime_ns for p in found))
        except OSError:
            state[name] = None
    return state


@pytest.fixture(autouse=True)
def _own_home(tmp_path_factory: pytest.TempPathFactory,
              monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh HOME for each test; fail it if it wrote where gitfactory writes in the real one."""
    home = tmp_path_factory.mktemp("home")
    # libgit2 (pygit2) reads ~/.gitconfig and knows nothing of GIT_CONFIG_GLOBAL.
    (home / ".gitconfig").write_bytes(Path(os.environ["GIT_CONFIG_GLOBAL"]).read_bytes())
    for key, value in (("HOME", home), ("XDG_CONFIG_HOME", home / ".config"),
                       ("XDG_CACHE_HOME", home / ".cache"),
                       ("XDG_DATA_HOME", home / ".local" / "share"),
                       ("XDG_STATE_HOME", home / ".local" / "state")):
        monkeypatch.setenv(key, str(value))
    before = _ours_in_real_home()
    yield home
    after = _ours_in_real_home()
    changed = [name for name in OURS_IN_HOME if after[name] != before[name]]
    assert not changed, f"a test wrote to the real home directory {REAL_HOME}: {changed}"


def git(cwd: Path, *args: str, input: str | None = None) -> str:
    proc = subprocess.run(
        ["git", *args], cwd=cwd, input=input, capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, f"git {' '.join(args)} failed: {proc.stderr}"
    return proc.stdout


def gf(
    cwd: Path, *args: str, input: str | None = None, code: int | None = 0,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run the real `gitfactory` CLI in a child process; check its exit code.

    The child is forked from a warm server (tests/forkserver.py) unless GF_TESTS_SPAWN
    is set: the same entry point, arguments, directory, environment and descriptors
    as ``python -m gitfactory``, without an interpreter start per call."""
    argv = [os.fspath(a) for a in args]
    full_env = {**os.environ, **(env or {})}
    server = _fork_server()
    if server is None:
        proc = subprocess.run(
            [sys.executable, "-m", "gitfactory", *argv],
            cwd=cwd, input=input, capture_output=True, text=True, check=False, env=full_env,
        )
    else:
        proc = _forked(server, cwd, argv, input, full_env)
    if code is not None:
        assert proc.returncode == code, (
            f"gitfactory {' '.join(argv)} exited {proc.returncode}, wanted {code}\n"
            f"stdout: {proc.stdout}\nstderr: {proc.stderr}"
        )
    return proc


_SERVER: list[tuple[subprocess.Popen[bytes], str]] = []


def _fork_server() -> str | None:
    """The socket of this test process's fork server, started on first use."""
    if os.environ.get("GF_TESTS_SPAWN"):
        return None
    if _SERVER and _SERVER[0][0].poll() is None:
        return _SERVER[0][1]
    _SERVER.clear()
    directory = tempfile.mkdtemp(prefix="gf-fork-")  # short: a socket path has a limit
    path = os.path.join(directory, "socket")
    proc = subprocess.Popen([sys.executable, str(Path(__file__).with_name("forkserver.py")), path],
                            cwd=directory, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE)
    assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"
    atexit.register(proc.kill)
    _SERVER.append((proc, path))
    return path


def _forked(server: str, cwd: Path, argv: list[str], input: str | None,
            env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    request = json.dumps({"cwd": str(cwd), "env": env, "args": argv}).encode() + b"\n"
    with tempfile.TemporaryFile() as fin, tempfile.TemporaryFile() as fout, \
            tempfile.TemporaryFile() as ferr, open(os.devnull, "rb") as null:
        if input is not None:
            fin.write(input.encode())
            fin.seek(0)
        stdin = fin if input is not None else null
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.connect(server)
            sent = socket.send_fds(sock, [request], [stdin.fileno(), fout.fileno(),
                                                     ferr.fileno()])
            sock.sendall(request[sent:])
            reply = b""
            while chunk := sock.recv(64):
                reply += chunk
        code = int(reply) if reply else -signal.SIGKILL  # it died before it could say

        def text(fh: Any) -> str:
            fh.seek(0)
            return fh.read().decode().replace("\r\n", "\n").replace("\r", "\n")

        return subprocess.CompletedProcess(["gitfactory", *argv], code, text(fout), text(ferr))


def gf_json(cwd: Path, *args: str, **kw: Any) -> Any:
    return json.loads(gf(cwd, *args, "--json", **kw).stdout)


def shown_ids(cwd: Path) -> dict[str, str]:
    """Each task's id as `gitfactory task list` shows it (its shortest unique prefix)."""
    rows = gf_json(cwd, "task", "list")
    lines = gf(cwd, "task", "list").stdout.splitlines()
    assert len(rows) == len(lines)
    return {row["id"]: line.split()[0] for row, line in zip(rows, lines, strict=True)}


def wait_for(condition: Callable[[], Any], what: str, timeout: float = 120) -> Any:
    """Poll ``condition`` until it is true (a loaded machine gets a generous deadline)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def commit_script(repo: Path, name: str, text: str, message: str) -> None:
    """An executable script of the project, committed on its current branch."""
    (repo / name).write_text(text)
    (repo / name).chmod(0o755)
    git(repo, "add", name)
    git(repo, "commit", "-qm", message)


def project_with_agent(tmp: Path, script: str, message: str) -> Path:
    """A new repository whose first commit on main is ./agent.sh, and a factory made
    with `init --agent command:./agent.sh` (its coder runs that script)."""
    r = tmp / "project"
    git(tmp, "init", "-q", "-b", "main", str(r))
    commit_script(r, "agent.sh", script, message)
    gf(r, "init", "--name", "t", "--agent", "command:./agent.sh")
    return r


@pytest.fixture
def empty_repo(tmp_path: Path) -> Path:
    """A repository with no commits (unborn HEAD)."""
    path = tmp_path / "empty"
    git(tmp_path, "init", "-q", str(path))
    return path


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A repository with some history, a dirty working tree and a staged change."""
    path = tmp_path / "project"
    git(tmp_path, "init", "-q", str(path))
    (path / "app.py").write_text("print('hello')\n")
    (path / "README").write_text("a project\n")
    git(path, "add", ".")
    git(path, "commit", "-qm", "first")
    (path / "app.py").write_text("print('hello, world')\n")
    (path / "staged.txt").write_text("staged\n")
    git(path, "add", "staged.txt")
    (path / "untracked.txt").write_text("untracked\n")
    return path


@pytest.fixture
def factory_repo(repo: Path) -> Path:
    gf(repo, "init", "--name", "test")
    return repo


def commit_on_factory(repo: Path, files: dict[str, bytes], *, symlinks: dict[str, str] | None = None,
                      remove: list[str] | None = None, message: str = "plain git",
                      ref: str = "refs/heads/factory") -> str:
    """Commit files on a branch (the factory branch by default) with git plumbing only."""
    index = repo / ".git" / "plain-git-index"
    env = {**os.environ, "GIT_INDEX_FILE": str(index)}

    def run(*args: str, input: bytes | None = None) -> str:
        proc = subprocess.run(["git", *args], cwd=repo, env=env, input=input,
                              capture_output=True, check=True)
        return proc.stdout.decode().strip()

    exists = subprocess.run(["git", "rev-parse", "--verify", "-q", ref], cwd=repo,
                            capture_output=True).returncode == 0
    parent = run("rev-parse", "--verify", "-q", ref) if exists else ""
    index.unlink(missing_ok=True)
    if parent:
        run("read-tree", parent)
    for path, data in files.items():
        blob = run("hash-object", "-w", "--stdin", input=data)
        run("update-index", "--add", "--cacheinfo", f"100644,{blob},{path}")
    for path, target in (symlinks or {}).items():
        blob = run("hash-object", "-w", "--stdin", input=target.encode())
        run("update-index", "--add", "--cacheinfo", f"120000,{blob},{path}")
    for path in remove or []:
        run("update-index", "--force-remove", path)
    tree = run("write-tree")
    commit = run("commit-tree", tree, *(["-p", parent] if parent else []), "-m", message)
    run("update-ref", ref, commit, *([parent] if parent else []))
    index.unlink(missing_ok=True)
    return commit


def message_path(record_id: str) -> str:
    return f".factory/mail/{record_id[:4]}/{'/'.join(record_id[4:8])}/{record_id}.md"


def event_path(record_id: str) -> str:
    return f".factory/log/{record_id[:4]}/{'/'.join(record_id[4:8])}/{record_id}.json"


def event_bytes(record_id: str, **fields: Any) -> bytes:
    record = {"id": record_id, "kind": "note", "actor": "human/plain",
              "time": "2026-11-22T10:00:00.000Z", "text": "", **fields}
    return (json.dumps(record) + "\n").encode()


# -- scripted agents for the daemon's tests -------------------------------------------

# A scripted agent: a real program that does what the task's title says.
AGENT = r'''
import os, subprocess, sys, time
from pathlib import Path

task = os.environ["GITFACTORY_TASK"]
prompt = Path(os.environ["GITFACTORY_PROMPT_FILE"]).read_text()
title = prompt.splitlines()[0].split(": ", 1)[1]
log = os.environ.get("AGENT_LOG")
if log:
    with open(log, "a") as fh:
        fh.write(f"start {task} {os.getpid()}\n")
print(f"{os.environ['GITFACTORY_AGENT']} on {title} in {os.getcwd()}", flush=True)
for name in (".env", "setup-marker.txt"):
    if Path(name).exists():
        print(f"found {name}: {Path(name).read_text().strip()}", flush=True)
if "slow" in title:
    time.sleep(float(os.environ.get("AGENT_SLEEP", "1")))
    while os.environ.get("AGENT_WAIT_FOR") and not Path(os.environ["AGENT_WAIT_FOR"]).exists():
        time.sleep(0.05)
if "crash" in title:
    sys.exit(1)
if "hang" in title:
    child = subprocess.Popen(["sleep", "300"])
    Path(os.environ["GITFACTORY_WORKTREE"], "..", f"child-{task[:8]}.pid").write_text(str(child.pid))
    time.sleep(300)
Path("work.txt").write_text(f"done by {os.environ['GITFACTORY_AGENT']}\n")
subprocess.run(["git", "add", "work.txt"], check=True)
message = f"work on {task}"
if "trailer" in title:
    message += "\n\nFactory-Step: done"
subprocess.run(["git", "commit", "-qm", message], check=True)
if "dirty" in title:
    Path("scratch.txt").write_text("notes the agent did not commit\n")
if "stepdone" in title:
    subprocess.run([sys.executable, "-m", "gitfactory", "step", "done", task, "--note", "by hand"],
                   check=True)
if log:
    with open(log, "a") as fh:
        fh.write(f"end {task} {os.getpid()}\n")
sys.exit(3 if "exit3" in title else 0)
'''


def configure(repo: Path, tmp: Path, steps: str, extra: str = "", agents: str = "") -> Path:
    script = tmp / "agent.py"
    script.write_text(AGENT)
    config = f"""protocol: "0.2"
name: test
dispatch:
  worktrees: ../worktrees
  kill_grace: 1s
{extra}agents:
  ada:
    role: coder
    command: {sys.executable} {script}
{agents}workflows:
  default:
    steps:
{steps}"""
    commit_on_factory(repo, {".factory/factory.yaml": config.encode()})
    return repo.parent / "worktrees"


def checkout_state(repo: Path) -> dict[str, str]:
    """Everything of the user's own checkout: files, index, HEAD, status."""
    files = {str(p.relative_to(repo)): hashlib.sha256(p.read_bytes()).hexdigest()
             for p in repo.rglob("*") if p.is_file() and ".git" not in p.relative_to(repo).parts}
    return {**files, "HEAD": git(repo, "rev-parse", "HEAD"),
            "index": hashlib.sha256((repo / ".git" / "index").read_bytes()).hexdigest(),
            "status": git(repo, "status", "--porcelain")}


def finished(repo: Path) -> dict[str, dict[str, object]]:
    return {e["task"]: e["data"] for e in gf_json(repo, "log", "--kind", "dispatch.finished")}
