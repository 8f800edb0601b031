"""Word back to the peers: what became of their messages and requests here.

Everything a peer should hear is derived from our own log, so it is written once
whatever crashes in between: a message from a peer read or acknowledged here
becomes a ``read`` or ``acked`` receipt (once per reader), and a task a peer
requested sends an ``update`` whenever its state, step or question changed since
the last update we sent for it.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from gitfactory.peers.work import ACTOR
from gitfactory.store import parcels
from gitfactory.store.records import INBOX, OUTBOX

if TYPE_CHECKING:
    from gitfactory.config.factory_yaml import FactoryConfig
    from gitfactory.store.branch import Change, Snapshot
    from gitfactory.store.factory import Factory

_READ = {"mail.read": "read", "mail.acked": "acked"}


def report(factory: Factory, config: FactoryConfig) -> list[parcels.Parcel]:
    """Write, in one commit, every receipt and update the peers have not had yet."""
    sent: list[list[parcels.Parcel]] = [[]]

    def build(snap: Snapshot) -> Change | None:
        from gitfactory.store.branch import Change

        factory.index.refresh(str(snap.tip) if snap.tip else None)
        out = _readings(factory, config) + _updates(factory, config)
        sent[0] = out
        if not out:
            return None
        return Change(
            {p.outbox_path(): p.encode() for p in out},
            f"peers: word to {', '.join(sorted({p.to for p in out}))} ({len(out)} parcel(s))",
            trailers=[("Factory-Record", f"parcel {p.id}") for p in out],
        )

    factory.store.transact(build)
    return sent[0]


def _readings(factory: Factory, config: FactoryConfig) -> list[parcels.Parcel]:
    """read/acked receipts for peers' messages read or acknowledged here."""
    rows = factory.index.db.execute(
        "SELECT e.kind, e.actor, p.peer, p.id FROM events e JOIN parcels p "
        "ON p.box = ? AND p.type = ? AND json_extract(p.record, '$.message.id') = "
        "json_extract(e.data, '$.message') WHERE e.kind IN ('mail.read', 'mail.acked') "
        "AND instr(e.actor, ':') = 0 ORDER BY e.id",
        (INBOX, parcels.MAIL),
    ).fetchall()
    told = _told(factory)
    out = []
    for kind, reader, peer, parcel_id in rows:
        key = (peer, parcel_id, _READ[kind], reader)
        if peer in config.peers and key not in told:
            told.add(key)
            out.append(parcels.new(config.name, peer, parcels.RECEIPT, ACTOR, parcel=parcel_id,
                                   outcome=_READ[kind], reader=reader))  # fmt: skip
    return out


def _told(factory: Factory) -> set[tuple[str, str, str, str]]:
    rows = factory.index.db.execute(
        "SELECT peer, record FROM parcels WHERE box = ? AND type = ?", (OUTBOX, parcels.RECEIPT)
    ).fetchall()
    out = set()
    for peer, text in rows:
        r = json.loads(text)
        if r.get("reader"):
            out.add((peer, r["parcel"], r["outcome"], r["reader"]))
    return out


def _updates(factory: Factory, config: FactoryConfig) -> list[parcels.Parcel]:
    """An update for every requested task whose news changed since the last one."""
    from gitfactory.plan import decisions

    rows = factory.index.db.execute(
        "SELECT task, json_extract(data, '$.origin.peer'), json_extract(data, '$.origin.request') "
        "FROM events WHERE kind = 'task.created' AND json_extract(data, '$.origin.peer') "
        "IS NOT NULL ORDER BY id"
    ).fetchall()
    out = []
    for task_id, peer, request in rows:
        if peer not in config.peers:
            continue
        st = decisions.load(factory, str(task_id), history=True)
        now = _news(st)
        last = parcels.listed(factory, OUTBOX, peer, parcels.UPDATE, {"task_id": str(task_id)})
        if last and _same(last[-1], now):
            continue
        out.append(parcels.new(config.name, peer, parcels.UPDATE, ACTOR, request=request,
                               task_id=str(task_id), **now))  # fmt: skip
    return out


_FIELDS = ("state", "step", "holder", "question", "asker", "merge", "reason")


def _same(last: parcels.Parcel, now: dict[str, Any]) -> bool:
    return all(last.get(k) == now.get(k) for k in _FIELDS)


def _news(st: Any) -> dict[str, Any]:
    """What the requester hears of a task: its state, step, question, where it
    landed, why it failed."""
    from gitfactory.store import clock

    state = st.effective(clock.now_ms())
    news: dict[str, Any] = {"state": state, "step": st.step}
    if state == "working" and st.assignee and ":" not in st.assignee:
        news["holder"] = st.assignee
    events = list(st.history)
    if state == "input_required":
        asked = [e for e in events if e.kind == "task.asked"]
        news["question"] = asked[-1].text if asked else None
        news["asker"] = asked[-1].actor if asked and ":" not in asked[-1].actor else None
    if state == "completed":
        merged = [e for e in events if e.kind == "merge.result" and e.data.get("pass")]
        if merged:
            data = merged[-1].data
            news["merge"] = {k: str(data[k]) for k in ("commit", "branch", "target") if data.get(k)}
    if state in ("failed", "rejected", "canceled"):
        ends = [e for e in events if e.kind.startswith("task.") and e.text]
        news["reason"] = ends[-1].text[:4000] if ends else None
    return {k: v for k, v in news.items() if v is not None}
