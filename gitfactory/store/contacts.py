"""What the last contact with each remote said, private to this clone
(``.git/gitfactory/remotes.json``): whether it answered, since when it does not, and
whether a sync with it is blocked until someone acts. `status` reads it; claims do
not ask a remote that failed moments ago (the daemon's sync thread keeps asking).
"""

from __future__ import annotations

import contextlib
import json
import time
from typing import TYPE_CHECKING

from gitfactory.errors import RemoteUnreachableError
from gitfactory.store.git import replace_file

if TYPE_CHECKING:
    from gitfactory.store.factory import Factory
    from gitfactory.store.remote import Remote

CONTACTS_FILE = "remotes.json"
# After a failed contact, claims do not ask the remote again for this long (the
# daemon's sync thread keeps asking): a remote that hangs must not stall every tick.
DOWN_MEMORY_MS = 30_000


def note(factory: Factory, remote: Remote, failed: RemoteUnreachableError | None) -> None:
    """Note how talking with ``remote`` went just now (``failed``: it did not answer)."""
    now = int(time.time() * 1000)
    seen = contacts(factory)
    was = seen.get(remote.name, {})
    blocked: dict[str, object] = {k: was[k] for k in ("blocked", "fix") if k in was}
    if failed is None:
        seen[remote.name] = {"ok": True, "at": now, "url": remote.url, **blocked}
    else:
        since = was.get("down_since") if not was.get("ok", True) else None
        seen[remote.name] = {"ok": False, "at": now, "down_since": since or now,
                             "error": failed.message, "url": remote.url, **blocked}  # fmt: skip
    _save_contacts(factory, seen)


def note_blocked(factory: Factory, remote: Remote, why: str | None, fix: str | None = None) -> None:
    """Note that syncing with ``remote`` is refused until someone acts (``why`` None:
    it went through), for `status` to say."""
    seen = contacts(factory)
    entry = {k: v for k, v in seen.get(remote.name, {}).items() if k not in ("blocked", "fix")}
    if why is not None:
        entry.update(blocked=why, fix=fix)
    if entry != seen.get(remote.name):
        seen[remote.name] = entry
        _save_contacts(factory, seen)


def _save_contacts(factory: Factory, seen: dict[str, dict[str, object]]) -> None:
    with contextlib.suppress(OSError):  # derived: the next contact says it again
        replace_file(factory.paths.factory_dir / CONTACTS_FILE, json.dumps(seen))


def contacts(factory: Factory) -> dict[str, dict[str, object]]:
    """remote name -> {ok, at (ms), and when down: down_since, error}."""
    try:
        data = json.loads((factory.paths.factory_dir / CONTACTS_FILE).read_text("utf-8"))
    except (OSError, ValueError):
        return {}
    return (
        {str(k): v for k, v in data.items() if isinstance(v, dict)}
        if isinstance(data, dict)
        else {}
    )


def forget_down(factory: Factory) -> None:
    """Ask every remote again, now (a daemon that starts must not trust an old "down")."""
    seen = contacts(factory)
    fresh = {name: {k: v for k, v in entry.items() if k not in ("ok", "at", "down_since",
                                                              "error")}
             for name, entry in seen.items()}  # fmt: skip
    if fresh != seen:
        _save_contacts(factory, fresh)


def known_down(factory: Factory, remote: Remote) -> RemoteUnreachableError | None:
    """The error of the last contact with ``remote`` if it failed in the last
    :data:`DOWN_MEMORY_MS` (None: it answered, or it is worth asking again)."""
    last = contacts(factory).get(remote.name)
    if not last or last.get("ok", True):
        return None
    at = last.get("at")
    if not isinstance(at, int) or time.time() * 1000 - at > DOWN_MEMORY_MS:
        return None
    ago = (time.time() * 1000 - at) / 1000
    return RemoteUnreachableError(
        f"{remote.name} did not answer {ago:.0f}s ago: {last.get('error', '')}",
        hint="the daemon keeps trying; `gitfactory sync` asks it again now",
    )
