"""The plan's dependency graph, laid out to be read: tasks in layers from left to
right (a task stands right of everything it depends on), each layer ordered to
cross few edges, and tasks that neither wait nor are waited for set apart in a grid
below, so that 200 tasks still fit a screen or two."""

from __future__ import annotations

from typing import Any

NODE_W, NODE_H = 190, 46
MARGIN = 3  # around the drawing, so that no stroke is cut
SUB_MAX = 30  # characters of a node's second line
GAP_X, GAP_Y = 70, 14
GRID_COLUMNS = 4  # tasks with no dependency either way, per row (fits 1100 pixels)
SWEEPS = 4  # barycentre passes (each one left to right and back)
MAX_NODES = 400  # tasks drawn at most; the page says how many were left out
MAX_SLOTS = 1500  # hidden slots for edges that skip layers; past them, edges go straight


def layout(cards: list[dict[str, Any]]) -> dict[str, Any]:
    """Positions for ``cards`` (each with ``id`` and ``depends_on``) and the edges
    between them, as SVG coordinates."""
    by_id = {c["id"]: c for c in cards}
    deps = {c["id"]: [d for d in c["depends_on"] if d in by_id] for c in cards}
    linked = {i for i, ds in deps.items() if ds} | {d for ds in deps.values() for d in ds}
    layers = _layers([i for i in by_id if i in linked], deps)
    # An edge that skips layers goes through a hidden slot in each one it crosses, so
    # that it is ordered with the rest and never runs under a task.
    level = {n: k for k, layer in enumerate(layers) for n in layer}
    routed = {n: list(deps[n]) for n in level}
    via: dict[tuple[str, str], list[str]] = {}
    budget = MAX_SLOTS  # a dense plan (every task on every earlier one) would need n³
    for task in level:
        for dep in deps[task]:
            skipped = level[task] - level[dep] - 1
            if skipped > budget:
                continue
            budget -= skipped
            chain = [f"~{dep}~{task}~{k}" for k in range(level[dep] + 1, level[task])]
            for k, slot in enumerate(chain):
                layers[level[dep] + 1 + k].append(slot)
                routed[slot] = [chain[k - 1] if k else dep]
            if chain:
                routed[task] = [chain[-1] if d == dep else d for d in routed[task]]
                via[(dep, task)] = chain
    order = _order(layers, routed)
    nodes: dict[str, dict[str, Any]] = {}
    slots: dict[str, tuple[int, int]] = {}
    for x, layer in enumerate(order):
        for y, node_id in enumerate(layer):
            at = (x * (NODE_W + GAP_X) + MARGIN, y * (NODE_H + GAP_Y) + MARGIN)
            if node_id.startswith("~"):
                slots[node_id] = at
            else:
                nodes[node_id] = _node(by_id[node_id], at[0] - MARGIN, at[1] - MARGIN)
    bottoms = [n["y"] + NODE_H for n in nodes.values()] + [y + NODE_H for _, y in slots.values()]
    top = max(bottoms, default=0) + (GAP_Y * 3 if nodes else 0)
    alone = [i for i in by_id if i not in linked]
    for k, node_id in enumerate(alone):
        row, col = divmod(k, GRID_COLUMNS)
        nodes[node_id] = _node(by_id[node_id], col * (NODE_W + GAP_X),
                               top + row * (NODE_H + GAP_Y))  # fmt: skip
    edges = [_edge(nodes[d], nodes[i], [slots[v] for v in via.get((d, i), [])])
             for i, ds in deps.items() for d in ds]  # fmt: skip
    width = max((n["x"] + NODE_W for n in nodes.values()), default=0)
    height = max((n["y"] + NODE_H for n in nodes.values()), default=0)
    return {"nodes": list(nodes.values()), "edges": edges, "width": width + MARGIN,
            "height": height + MARGIN, "node_w": NODE_W, "node_h": NODE_H,
            "separate_from": top if alone and linked else None}  # fmt: skip


def _layers(ids: list[str], deps: dict[str, list[str]]) -> list[list[str]]:
    """Each task one layer right of its deepest dependency (a longest path, in
    topological order; a cycle, which the plan refuses anyway, lands in layer 0)."""
    users: dict[str, list[str]] = {i: [] for i in ids}
    waiting = {i: len(deps[i]) for i in ids}
    for node in ids:
        for d in deps[node]:
            users[d].append(node)
    level = {i: 0 for i in ids}
    ready = sorted(i for i in ids if not waiting[i])
    while ready:
        node = ready.pop()
        for user in users[node]:
            level[user] = max(level[user], level[node] + 1)
            waiting[user] -= 1
            if not waiting[user]:
                ready.append(user)
    layers: list[list[str]] = [[] for _ in range(max(level.values(), default=-1) + 1)]
    for node in sorted(ids):
        layers[level[node]].append(node)
    return layers


def _order(layers: list[list[str]], deps: dict[str, list[str]]) -> list[list[str]]:
    """Reorder each layer by the mean position of its neighbours in the layer before
    (then after), the barycentre heuristic: few crossings, cheaply."""
    users: dict[str, list[str]] = {}
    for node, ds in deps.items():
        for d in ds:
            users.setdefault(d, []).append(node)
    order = [list(layer) for layer in layers]
    for _ in range(SWEEPS):
        for i in range(1, len(order)):
            _sort_by(order[i], order[i - 1], deps)
        for i in range(len(order) - 2, -1, -1):
            _sort_by(order[i], order[i + 1], users)
    return order


def _sort_by(layer: list[str], other: list[str], neighbours: dict[str, list[str]]) -> None:
    where = {node: k for k, node in enumerate(other)}

    def centre(item: tuple[int, str]) -> float:
        k, node = item
        near = [where[n] for n in neighbours.get(node, []) if n in where]
        return sum(near) / len(near) if near else float(k)

    layer[:] = [node for _, node in sorted(enumerate(layer), key=centre)]


def _node(card: dict[str, Any], x: int, y: int) -> dict[str, Any]:
    title = str(card["title"])
    short = card.get("short", card["id"][:8])
    peer = f"@{card['peer']}" if card.get("peer") else None
    parts = (short, card["column"].replace("_", " "), card.get("step"), peer)
    sub = " · ".join(p for p in parts if p)
    return {"id": card["id"], "short": short, "x": x + MARGIN, "y": y + MARGIN,
            "sub": sub if len(sub) <= SUB_MAX else sub[: SUB_MAX - 1] + "…",
            "title": title if len(title) <= 26 else title[:25] + "…", "full_title": title,
            "column": card["column"], "step": card.get("step"),
            "peer": card.get("peer")}  # fmt: skip


def _edge(
    source: dict[str, Any], target: dict[str, Any], via: list[tuple[int, int]]
) -> dict[str, Any]:
    """Curves from the right side of the dependency, straight through each hidden
    slot on the way, to the left side of the task."""
    x, y = source["x"] + NODE_W, source["y"] + NODE_H // 2
    path = f"M{x},{y}"
    for vx, vy in via:
        cy = vy + NODE_H // 2
        path += _curve(x, y, vx, cy) + f" L{vx + NODE_W},{cy}"
        x, y = vx + NODE_W, cy
    path += _curve(x, y, target["x"] - 6, target["y"] + NODE_H // 2)
    return {"from": source["id"], "to": target["id"], "path": path}


def _curve(x1: int, y1: int, x2: int, y2: int) -> str:
    bend = max(20, (x2 - x1) // 2)
    return f" C{x1 + bend},{y1} {x2 - bend},{y2} {x2},{y2}"


def plan_graph(factory: Any, everything: bool = False, around: str | None = None) -> dict[str, Any]:
    """The graph of the open plan: every task not yet final, and the final ones they
    depend on (``everything``: all tasks; ``around``: that task, what it depends on and
    what depends on it), at most :data:`MAX_NODES`."""
    from gitfactory.board import views

    factory.require_tip()
    factory.index.refresh()
    cards = views.all_cards(factory)
    by_id = {c["id"]: c for c in cards}
    if around is not None:
        near = {around, *by_id[around]["depends_on"]}
        near |= {c["id"] for c in cards if around in c["depends_on"]}
        kept, everything = [c for c in cards if c["id"] in near], True
    elif everything:
        kept = cards
    else:
        open_ = {c["id"] for c in cards if c["column"] not in ("completed", "closed")}
        needed = {d for i in open_ for d in by_id[i]["depends_on"] if d in by_id}
        kept = [c for c in cards if c["id"] in open_ or c["id"] in needed]
    drawn = kept[:MAX_NODES]
    short = factory.index.short_ids("tasks", [c["id"] for c in drawn])
    for c in drawn:
        c["short"] = short[c["id"]]
    return {**layout(drawn), "total": len(cards), "shown": len(drawn),
            "left_out": len(kept) - len(drawn), "everything": everything}  # fmt: skip
