"""The daemon's notifications, in a thread: find what a person should hear of
(:mod:`gitfactory.run.notices`), send it through its rule's channel, record it.

Channels: ``mail`` (a message in the factory; its thread is named after the
notice, so a message already there is never sent again), ``desktop``
(``notify-send``), ``command`` (``sh -c`` in the work tree, the notice as JSON on
stdin) and ``webhook`` (a POST; an error, a 5xx or a 429 is retried with a growing
pause). What an agent wrote reaches a command or a webhook as JSON data only, never
in a command line. A record says what was sent, without the webhook's URL (it is
often a secret) or the command.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import subprocess
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import TYPE_CHECKING, Any

from gitfactory.errors import FactoryError
from gitfactory.run.helpers import Helper
from gitfactory.run.notices import FAILED, SENT, Finder, Notice

if TYPE_CHECKING:
    from gitfactory.config.factory_yaml import FactoryConfig
    from gitfactory.store.factory import Factory

_logger = logging.getLogger(__name__)
ACTOR = "factory/notify"
ROUND_S = 30.0  # a round without a poke (a lapsed lease, a peer's word: no commit of ours)
PAUSE_S = 0.5  # before a retry, doubled each time
BODY_MAX = 4000  # characters of a notice's text sent
SIDE_BY_SIDE = 8  # commands and webhooks sent at once
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


class Notifier(Helper):
    """:meth:`poke` when the factory branch moved; :meth:`stop` sends what is left."""

    NAME = "gitfactory-notify"

    def __init__(self, factory: Factory) -> None:
        super().__init__(factory)
        self.finder = Finder()

    def stop(self, timeout: float = 120.0) -> None:
        super().stop(timeout)

    def _loop(self) -> None:
        while True:
            stopping = self._stopping
            try:
                self.round()
            except Exception as exc:  # a bug: keep the traceback, keep the thread
                _logger.exception("a round of notifications failed")
                self._say(f"notify: {type(exc).__name__}: {exc}")
            if stopping:
                return
            self._wake.wait(ROUND_S)
            self._wake.clear()

    def round(self) -> int:
        """Send every notice not sent yet; how many went out."""
        from gitfactory.config import factory_yaml

        try:
            config = factory_yaml.load(self.factory)
            found = self.finder.pending(self.factory, config)
        except FactoryError as exc:
            self._say(f"notify: {exc.message}")
            return 0
        except Exception as exc:  # a bug: keep the traceback, keep the thread
            _logger.exception("finding notifications failed")
            self._say(f"notify: {type(exc).__name__}: {exc}")
            return 0
        # Mail and the desktop here (mail writes to the factory, whose handle is this
        # thread's); commands and webhooks side by side, so a slow one holds up no other.
        sent = 0
        here = [n for n in found if n.rule.channel in ("mail", "desktop")]
        away = [n for n in found if n not in here]
        for notice in here:
            sent += self._record(notice, _guarded(deliver, self.factory, notice, config))
        if away:
            with ThreadPoolExecutor(max_workers=SIDE_BY_SIDE) as pool:
                running = {pool.submit(_guarded, deliver, self.factory, n, config): n
                           for n in away}  # fmt: skip
                for done in as_completed(running):
                    sent += self._record(running[done], done.result())
        return sent

    def _record(self, notice: Notice, error: str) -> int:
        from gitfactory.store import log
        from gitfactory.store.log import Draft, stamp

        rule = notice.rule
        data = {"key": notice.key, "event": notice.event, "rule": rule.id,
                "channel": rule.channel, "record": notice.about.id}  # fmt: skip
        if rule.channel == "mail":
            data["to"] = rule.target
        error = _CONTROL.sub(" ", error)  # what a server or a command said: data, and plain
        if error:
            data["error"] = error[:500]
        kind = FAILED if error else SENT
        text = f"{rule.channel}: {notice.title}" + (f": {error[:200]}" if error else "")
        try:
            log.append(self.factory, [stamp(Draft(kind=kind, actor=ACTOR,
                                                  task=notice.about.task, text=text,
                                                  data=data))])  # fmt: skip
        except FactoryError as exc:  # never stop telling people because one record failed
            _logger.error("the record of notification %s failed: %s", notice.key, exc.message)
            self._say(f"notify: cannot record {notice.key}: {exc.message}")
        self.finder.recorded.add(notice.key)
        self._say(f"notified {text}" if not error else f"notify failed: {text}")
        return 0 if error else 1


def _guarded(fn: Any, *args: Any) -> str:
    try:
        return str(fn(*args))
    except Exception as exc:  # a bug in a channel: recorded as its failure
        _logger.exception("a notification failed")
        return f"{type(exc).__name__}: {exc}"


def deliver(factory: Factory, notice: Notice, config: FactoryConfig) -> str:
    """Send one notice; the error ("" when it went out)."""
    channel = notice.rule.channel
    if channel == "mail":
        return _mail(factory, notice)
    payload = notice.payload(config.name)
    if channel == "desktop":
        return _desktop(notice)
    if channel == "command":
        return _retried(notice, lambda: _command(factory, notice, payload))
    return _retried(notice, lambda: _within(notice.rule.timeout_ms / 1000,
                                            lambda: _webhook(notice, payload)))  # fmt: skip


def _within(seconds: float, attempt: Any) -> tuple[str, bool]:
    """One attempt, given ``seconds`` in all: a server that answers a byte at a time
    keeps each read under a socket timeout, not the whole under any."""
    result: list[tuple[str, bool]] = []

    def run() -> None:
        try:
            result.append(attempt())
        except Exception as exc:  # never its text: it may hold the URL (a secret)
            result.append((f"the webhook failed: {type(exc).__name__}", False))

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(seconds + 0.5)
    return result[0] if result else (f"no answer within {seconds:g}s", True)


def _retried(notice: Notice, attempt: Any) -> str:
    pause = PAUSE_S
    error = ""
    for k in range(notice.rule.retries + 1):
        error, again = attempt()
        if not error or not again:
            return str(error)
        if k < notice.rule.retries:
            time.sleep(pause)
            pause *= 2
    return f"{error} (after {notice.rule.retries + 1} attempts)"


def _mail(factory: Factory, notice: Notice) -> str:
    from gitfactory.mail import mailbox
    from gitfactory.mail.messages import Message
    from gitfactory.store import clock, ids, index_mail

    to = notice.rule.target
    if to == "requester":
        to = str((notice.task or {}).get("requester") or "")
        if not to:
            return "the notice is about no task, so it has no requester to mail"
    thread = f"notify-{notice.key.replace(':', '-')}"
    factory.index.refresh()
    if index_mail.has_thread(factory.index.db, thread):
        return ""  # sent before the record of it was written
    now = clock.now_ms()
    body = (f"{notice.text[:BODY_MAX]}\n\n`{notice.act}`\n\n"
            f"(gitfactory: {notice.event}, record {notice.about.id})\n")  # fmt: skip
    task = (notice.task or {}).get("id")
    mailbox.send(factory, Message(
        id=ids.new_id(now), sender=ACTOR, to=(to,), thread=thread, subject=notice.title[:200],
        created=clock.format_time(now), task=str(task) if task else None, body=body,
        priority="high" if notice.event != "question" else "normal",
    ))  # fmt: skip
    return ""


def _desktop(notice: Notice) -> str:
    program = shutil.which("notify-send")
    if program is None:
        return "notify-send is not installed here (desktop notifications need it)"
    body = notice.text[:BODY_MAX].replace("&", "&amp;").replace("<", "&lt;")
    done = subprocess.run([program, "--app-name=gitfactory", f"gitfactory: {notice.title}", body],
                          capture_output=True, text=True, timeout=30, check=False)  # fmt: skip
    return "" if done.returncode == 0 else f"notify-send exited {done.returncode}"


def _command(factory: Factory, notice: Notice, payload: dict[str, Any]) -> tuple[str, bool]:
    try:
        done = subprocess.run(
            ["sh", "-c", notice.rule.target], input=json.dumps(payload), text=True,
            errors="replace",
            cwd=factory.paths.work_tree or factory.paths.git_dir, capture_output=True,
            timeout=notice.rule.timeout_ms / 1000, check=False,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        return f"the command took over {notice.rule.timeout_ms / 1000:g}s", True
    if done.returncode == 0:
        return "", False
    said = (done.stderr or done.stdout).strip().splitlines()[-1:] or [""]
    return f"the command exited {done.returncode}: {said[0][:200]}", True


def _webhook(notice: Notice, payload: dict[str, Any]) -> tuple[str, bool]:
    body, headers = _shaped(notice, payload)
    url = _expanded(notice.rule.target)
    if isinstance(url, tuple):
        return url
    request = urllib.request.Request(url, data=body, method="POST",
                                     headers={"User-Agent": "gitfactory", **headers})  # fmt: skip
    try:
        with urllib.request.urlopen(request, timeout=notice.rule.timeout_ms / 1000) as response:
            response.read(65536)
            return "", False
    except urllib.error.HTTPError as exc:
        again = exc.code >= 500 or exc.code == 429
        return f"the webhook answered {exc.code} {exc.reason}", again
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return f"the webhook could not be reached: {reason}", True
    except ValueError:  # http.client.InvalidURL among them; its text shows the URL
        return "the webhook's URL is not a valid URL (after ${NAME} were filled in)", False


def _expanded(url: str) -> str | tuple[str, bool]:
    """The URL with each ${NAME} replaced by the daemon's environment variable NAME
    (so that a secret URL need not be committed in factory.yaml)."""
    import os
    import re

    missing = [n for n in re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", url) if n not in os.environ]
    if missing:
        return (
            f"the webhook's URL needs ${{{missing[0]}}}, which the daemon's environment lacks",
            False,
        )
    return re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", lambda m: os.environ[m.group(1)], url)


def _shaped(notice: Notice, payload: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
    """The body a format wants: the notice as JSON, or the chat services' shapes, in
    which what an agent wrote can neither mention everyone nor disguise a link."""
    said = f"{notice.title}: {notice.text[:BODY_MAX]}" if notice.text else notice.title
    line = f"{said}\n{notice.act}"
    fmt = notice.rule.format
    if fmt == "ntfy":
        title = _CONTROL.sub(" ", notice.title).encode("ascii", "replace").decode()[:200]
        return line.encode(), {"Title": f"gitfactory: {title}", "Content-Type": "text/plain"}
    value: dict[str, Any] = payload
    if fmt == "slack":
        text = line.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        value = {"text": text}
    elif fmt == "discord":  # no mention, no masked link [text](url)
        text = re.sub(r"([\\\[\]()<>*_~`|])", r"\\\1", line)
        value = {"content": text[:2000], "allowed_mentions": {"parse": []}}
    return json.dumps(value).encode(), {"Content-Type": "application/json"}
