#!/bin/sh
# A second, minimal implementation of the .factory/ protocol's read side and event
# writes (SPEC §10), to show that the protocol, not gitfactory's code, is the standard.
# It needs git and python3's json module, nothing else: git lists and reads the
# factory branch; a short program folds what git printed. It reads events (validated
# as §5 says) and tasks (whose front matter, as gitfactory writes it, is one JSON value
# per key), folds tasks as §11 and §20 say, and writes events with plain git.
#
#   minimal.sh capabilities | fold REPO NOW | write REPO < event.json
set -eu
op=$1
shift

branch_files() {  # "<mode> <blob> <path>" of every file under $2 on the factory branch
    git -C "$1" ls-tree -r --full-tree factory -- "$2" | sed 's/ blob / /; s/\t/ /'
}

case "$op" in
capabilities)
    echo '{"reads": ["log", "invalid", "tasks"], "kinds": ["event"], "writes": ["event"]}'
    ;;
fold)
    repo=$1
    now=${2:-}
    { branch_files "$repo" .factory/log; echo "--tasks--"; branch_files "$repo" .factory/tasks; } |
    python3 -c "$(cat <<'PY'
import json, re, subprocess, sys, calendar, time
repo, now = sys.argv[1], sys.argv[2]
ID = re.compile(r"^[0-7][0-9a-hjkmnp-tv-z]{25}$")
KIND = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
ADDR = re.compile(r"^([a-z0-9][a-z0-9._-]*:)?[a-z0-9][a-z0-9._-]*/[a-z0-9][a-z0-9._-]*$")
TIME = re.compile(r"^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(\.\d{1,9})?Z$")

def ms(text):
    m = TIME.match(text)
    y, mo, d, h, mi, s = (int(g) for g in m.groups()[:6])
    time.strptime(f"{y:04d}-{mo:02d}-{d:02d} {h:02d}:{mi:02d}:{s:02d}", "%Y-%m-%d %H:%M:%S")
    return calendar.timegm((y, mo, d, h, mi, s)) * 1000 + int(((m.group(7) or ".0")[1:] + "00")[:3])

def cat(blob):
    return subprocess.run(["git", "-C", repo, "cat-file", "blob", blob], capture_output=True,
                          check=True).stdout

def no_dupes(pairs):
    keys = [k for k, _ in pairs]
    if len(keys) != len(set(keys)):
        raise ValueError("duplicate key")
    return dict(pairs)

def event_problem(path, mode, blob):
    """None for a valid event, else the field at fault ("" when it is no one field)."""
    name = path.rsplit("/", 1)[1]
    rid = name[:-5] if name.endswith(".json") else ""
    if mode not in ("100644", "100755") or not ID.match(rid):
        return ""
    if path != f".factory/log/{rid[:4]}/{rid[4]}/{rid[5]}/{rid[6]}/{rid[7]}/{name}":
        return ""
    try:
        r = json.loads(cat(blob), object_pairs_hook=no_dupes)
    except ValueError:
        return ""
    if not isinstance(r, dict):
        return ""
    for key in r:
        if key not in ("id", "kind", "actor", "time", "task", "text", "data"):
            return key
    checks = [("id", lambda v: isinstance(v, str) and v == rid),
              ("kind", lambda v: isinstance(v, str) and KIND.match(v)),
              ("actor", lambda v: isinstance(v, str) and len(v) <= 200 and ADDR.match(v)),
              ("time", lambda v: isinstance(v, str) and TIME.match(v) and ms(v) >= 0)]
    for key, ok in checks:
        try:
            if key not in r or not ok(r[key]):
                return key
        except ValueError:
            return key
    if r.get("task") is not None and not (isinstance(r["task"], str) and ID.match(r["task"])):
        return "task"
    if not isinstance(r.get("text", ""), str) or len(r.get("text", "")) > 65536:
        return "text"
    if not isinstance(r.get("data", {}), dict):
        return "data"
    return None

log, invalid, records, section = [], [], [], "log"
for line in sys.stdin.read().splitlines():
    if line == "--tasks--":
        section = "tasks"
        continue
    mode, blob, path = line.split(" ", 2)
    if section == "tasks":
        records.append(cat(blob).decode())
        continue
    problem = event_problem(path, mode, blob)
    if problem is None:
        r = json.loads(cat(blob))
        log.append({"id": r["id"], "kind": r["kind"], "actor": r["actor"], "time": r["time"],
                    "task": r.get("task"), "text": r.get("text", ""), "data": r.get("data", {})})
    else:
        invalid.append({"path": path, "field": problem or None})
log.sort(key=lambda e: e["id"])
invalid.sort(key=lambda i: i["path"])

# -- tasks (SPEC §11, and proxies of §20) --------------------------------------------
MOVES = {"task.claimed": ({"submitted"}, "working"), "task.heartbeat": ({"working"}, None),
         "task.released": ({"working"}, "submitted"), "task.expired": ({"working"}, "submitted"),
         "task.asked": ({"working"}, "input_required"),
         "task.answered": ({"input_required"}, "working"),
         "task.completed": ({"working"}, "completed"), "task.failed": ({"working"}, "failed"),
         "task.canceled": ({"submitted", "working", "input_required"}, "canceled"),
         "task.rejected": ({"submitted", "working"}, "rejected"),
         "task.step_done": ({"working"}, None),
         "task.overridden": ({"submitted", "working", "input_required"}, None),
         "task.retried": ({"failed", "canceled", "rejected"}, "submitted"),
         "task.reopened": ({"completed"}, "submitted")}
PERSON_ONLY = {"task.overridden", "task.retried", "task.reopened"}
REMOTE = {"sent": "working", "pending": "working", "delivered": "working",
          "submitted": "working", "working": "working", "input_required": "input_required",
          "completed": "completed", "failed": "failed", "canceled": "canceled",
          "rejected": "rejected", "quarantined": "rejected"}

def front(text):
    head = text.split("\n---", 1)[0].removeprefix("---\n")
    return {k: json.loads(v) for k, v in (l.split(": ", 1) for l in head.splitlines() if l)}

def seq(e):
    s = e["data"].get("seq")
    return s if isinstance(s, int) and not isinstance(s, bool) else -1

def fold(task, events):
    st = {"state": "submitted", "holder": None, "lease": None, "seq": 0, "remote": None}
    news = []
    for e in sorted(events, key=lambda e: (seq(e), e["id"])):
        kind, data = e["kind"], e["data"]
        if kind == "task.created" and isinstance(data.get("remote"), dict):
            st["remote"] = data["remote"]
        if kind == "task.remote" and e["actor"] == "factory/peers":
            news.append(e)
        if st["remote"] and kind == "task.canceled" and \
                e["actor"].split(":")[-1].split("/")[0] == "human":
            st["withdrawn"] = True  # a person withdrew the request (SPEC §20)
        if kind not in MOVES or st["remote"] or seq(e) != st["seq"]:
            continue
        sources, target = MOVES[kind]
        at = ms(e["time"])
        if st["state"] not in sources:
            continue
        if kind == "task.expired":
            if st["lease"] is None or at < st["lease"]:
                continue
        elif kind in PERSON_ONLY:
            if e["actor"].split(":")[-1].split("/")[0] != "human":
                continue
        elif st["state"] == "working" and (e["actor"] != st["holder"] or
                                           (st["lease"] is not None and at > st["lease"])):
            continue
        st["seq"] += 1
        st["state"] = target or st["state"]
        if kind in ("task.claimed", "task.heartbeat", "task.answered"):
            st["lease"] = data.get("lease_until")
        if kind == "task.claimed":
            st["holder"] = e["actor"]
        if kind in ("task.step_done", "task.overridden"):
            nxt = data.get("next")
            st["state"] = {"done": "completed", "failed": "failed"}.get(nxt, "submitted")
            st["lease"] = None
            if st["state"] == "submitted":
                st["holder"] = None
        if kind in ("task.released", "task.expired", "task.retried", "task.reopened"):
            st["holder"], st["lease"] = None, None
        if kind == "task.asked":
            st["lease"] = None
    if st["remote"]:
        mine = [e for e in news if e["data"].get("request") == st["remote"].get("request")]
        said = {"state": "sent"}
        for e in sorted(mine, key=lambda e: (str(e["data"].get("parcel") or ""), e["id"])):
            if e["data"].get("state") in REMOTE:
                said = e["data"]
        st["state"] = REMOTE[said["state"]]
        who = said.get("asker") if st["state"] == "input_required" else said.get("holder")
        st["holder"] = f"{st['remote']['peer']}:{who}" if who else None
        st["lease"] = None
        if st.get("withdrawn"):
            st["state"], st["holder"] = "canceled", None
    return st

clock = ms(now) if now else None
by_task = {}
for e in log:
    if e["task"]:
        by_task.setdefault(e["task"], []).append(e)
states = {}
for text in records:
    t = front(text)
    st = fold(t, by_task.get(t["id"], []))
    if (st["state"] == "working" and st["lease"] is not None and clock is not None
            and clock >= st["lease"]):
        st["state"], st["holder"] = "submitted", None
    if st["state"] not in ("working", "input_required"):
        st["holder"] = None
    states[t["id"]] = (t, st)
tasks = [{"id": i, "state": st["state"], "assignee": st["holder"]}
         for i, (t, st) in sorted(states.items())]
ready = [t for t, st in states.values() if st["state"] == "submitted" and
         all(d in states and states[d][1]["state"] == "completed" for d in t.get("depends_on", []))]
ready.sort(key=lambda t: (t.get("priority", 2), t["created"], t["id"]))
print(json.dumps({"log": log, "invalid": invalid, "tasks": tasks,
                  "ready": [t["id"] for t in ready]}))
PY
)" "$repo" "$now"
    ;;
write)
    repo=$1
    event=$(python3 -c "$(cat <<'PY'
import json, random, re, sys, time
e = json.loads(sys.stdin.read())
if not re.match(r"^[a-z0-9][a-z0-9._-]{0,63}$", str(e.get("kind"))):
    sys.exit("kind: must match ^[a-z0-9][a-z0-9._-]{0,63}$")
if not re.match(r"^([a-z0-9][a-z0-9._-]*:)?[a-z0-9][a-z0-9._-]*/[a-z0-9][a-z0-9._-]*$",
                str(e.get("actor"))):
    sys.exit("actor: must be role/name")
digits = "0123456789abcdefghjkmnpqrstvwxyz"
ms = int(time.time() * 1000)
stamp = "".join(digits[(ms >> (5 * (9 - i))) & 31] for i in range(10))
rid = stamp + "".join(random.choice(digits) for _ in range(16))
now = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms / 1000)) + f".{ms % 1000:03d}Z"
record = {"id": rid, "kind": e["kind"], "actor": e["actor"], "time": now,
          "task": e.get("task"), "text": e.get("text", ""), "data": e.get("data", {})}
path = f".factory/log/{rid[:4]}/{rid[4]}/{rid[5]}/{rid[6]}/{rid[7]}/{rid}.json"
print(path)
print(json.dumps(record, indent=2))
PY
)")
    path=$(printf '%s\n' "$event" | head -n 1)
    blob=$(printf '%s\n' "$event" | tail -n +2 | git -C "$repo" hash-object -w --stdin)
    index=$(mktemp)
    trap 'rm -f "$index"' EXIT
    parent=$(git -C "$repo" rev-parse factory)
    GIT_INDEX_FILE=$index git -C "$repo" read-tree "$parent"
    GIT_INDEX_FILE=$index git -C "$repo" update-index --add --cacheinfo "100644,$blob,$path"
    tree=$(GIT_INDEX_FILE=$index git -C "$repo" write-tree)
    : "${GIT_AUTHOR_NAME:=minimal adapter}" "${GIT_AUTHOR_EMAIL:=minimal@localhost}"
    : "${GIT_COMMITTER_NAME:=$GIT_AUTHOR_NAME}" "${GIT_COMMITTER_EMAIL:=$GIT_AUTHOR_EMAIL}"
    export GIT_AUTHOR_NAME GIT_AUTHOR_EMAIL GIT_COMMITTER_NAME GIT_COMMITTER_EMAIL
    commit=$(git -C "$repo" commit-tree "$tree" -p "$parent" -m "log: ${path##*/}")
    # compare-and-swap: only if the branch is still where we read it
    git -C "$repo" update-ref refs/heads/factory "$commit" "$parent"
    ;;
*)
    echo "unknown operation: $op" >&2
    exit 2
    ;;
esac
