"""Task requests between factories: request, accept, work, news back, dependents."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import gf, gf_json, git
from tests.peers.conftest import Fleet, peer, received, set_peers, sync


def test_a_request_kept_for_a_person_is_accepted_and_its_news_moves_the_proxy(
    local_fleet: Fleet,
) -> None:
    web, api = local_fleet.factory("web"), local_fleet.factory("api")
    set_peers(web, peer("api", local_fleet.url("api"), mail=["human"]))
    set_peers(api, peer("web", local_fleet.url("web"), tasks="ask"))

    made = gf_json(web, "task", "add", "--in", "api", "Add /v2/users", "--body", "paginated",
                   "--label", "api", "--as", "human/lead")
    proxy = made["id"]
    page = gf_json(web, "task", "add", "Users page", "--depends-on", proxy)["id"]
    assert [t["id"] for t in gf_json(web, "ready")] == []  # waits for api's task
    shown = gf_json(web, "task", "show", proxy)
    assert shown["state"] == "working" and shown["remote"]["state"] == "sent"
    gf(web, "task", "claim", proxy, "--as", "coder/ada", code=1)  # only api's word moves it

    sync(web)
    took = sync(api)["taken"]
    assert [(t["type"], t["outcome"]) for t in took] == [("request", "pending")]
    assert gf_json(api, "status")["peers"]["pending_requests"] == 1
    assert "1 task request(s) wait for you" in gf(api, "status").stdout
    waiting = gf_json(api, "task", "requests")
    assert [(r["peer"], r["title"], r["labels"]) for r in waiting] == [
        ("web", "Add /v2/users", ["api"])]
    accepted = gf_json(api, "task", "accept", waiting[0]["id"][:6], "--as", "human/boss")
    theirs = accepted["task"]
    assert gf_json(api, "task", "requests") == []
    again = gf(api, "task", "reject", waiting[0]["id"][:6], "--reason", "no", code=1)
    assert f"accepted already, by human/boss: it is task {theirs[:8]}" in again.stderr
    task = gf_json(api, "task", "show", theirs)
    assert task["title"] == "Add /v2/users" and task["requester"] == "web:human/lead"

    sync(api)  # the receipt (delivered, with the task id) and a first update go out
    sync(web)
    shown = gf_json(web, "task", "show", proxy)
    assert shown["remote"]["task_id"] == theirs and shown["remote"]["state"] == "submitted"
    assert gf_json(web, "task", "show", f"api:{theirs[:6]}")["id"] == proxy

    # api's agent asks a question; it reaches web's requester, whose answer goes back.
    gf(api, "task", "claim", theirs, "--as", "coder/bob")
    gf(api, "task", "ask", theirs, "cursor or offset pagination?", "--as", "coder/bob")
    sync(api)
    sync(web)
    shown = gf_json(web, "task", "show", proxy)
    assert shown["state"] == "input_required" and shown["assignee"] == "api:coder/bob"
    inbox = gf_json(web, "mail", "inbox", "--as", "human/lead")
    assert [m["from"] for m in inbox] == ["api:coder/bob"]
    assert "cursor or offset" in gf_json(web, "mail", "read", inbox[0]["id"],
                                         "--as", "human/lead")["body"]
    gf(web, "task", "answer", proxy, "cursor, please", "--as", "human/lead")
    sync(web)
    sync(api)
    answered = gf_json(api, "task", "show", theirs)
    assert answered["state"] == "working"
    assert [e["actor"] for e in answered["history"] if e["kind"] == "task.answered"] == [
        "web:human/lead"]

    gf(api, "step", "done", theirs, "--as", "coder/bob")
    while gf_json(api, "task", "show", theirs)["state"] != "completed":  # gates, review, merge
        gf(api, "step", "done", theirs, "--override", "--reason", "by hand", "--as", "human/boss")
    sync(api)
    sync(web)
    assert gf_json(web, "task", "show", proxy)["state"] == "completed"
    assert [t["id"] for t in gf_json(web, "ready")] == [page]


def test_requests_the_policy_does_not_allow_are_rejected_and_the_proxy_says_why(
    local_fleet: Fleet,
) -> None:
    web, api = local_fleet.factory("web"), local_fleet.factory("api")
    set_peers(web, peer("api", local_fleet.url("api")))
    set_peers(api, peer("web", local_fleet.url("web"), tasks="auto", labels=["api"]))
    wrong = gf_json(web, "task", "add", "--in", "api", "Paint it", "--label", "css")["id"]
    right = gf_json(web, "task", "add", "--in", "api", "Add an index", "--label", "api")["id"]
    sync(web)
    took = {t["outcome"] for t in sync(api)["taken"]}
    assert took == {"rejected", "delivered"}
    sync(api)
    sync(web)
    refused = gf_json(web, "task", "show", wrong)
    assert refused["state"] == "rejected"
    assert "label(s) css" in refused["remote"]["reason"]
    assert gf_json(web, "task", "show", right)["state"] == "working"
    listed = gf_json(api, "task", "list")
    assert [t["title"] for t in listed] == ["Add an index"]
    assert received(api, outcome="rejected")[0]["peer"] == "web"
    assert "rejected" in gf(web, "task", "show", wrong).stdout

    # A local task names the peer's task by its id there; api gives up on it, and
    # the reason comes back with the news.
    theirs = gf_json(web, "task", "show", right)["remote"]["task_id"]
    after = gf_json(web, "task", "add", "Use the index", "--depends-on", f"api:{theirs[:8]}")
    assert gf_json(web, "task", "show", after["id"])["depends_on"] == [right]
    gf(web, "task", "add", "x", "--depends-on", "api:zzzzzzzz", code=2)
    gf(api, "task", "cancel", theirs, "--reason", "the index exists already", "--as", "human/boss")
    sync(api)
    sync(web)
    gone = gf_json(web, "task", "show", right)
    assert gone["state"] == "canceled" and "exists already" in gone["remote"]["reason"]
    assert [t["id"] for t in gf_json(web, "ready")] == []  # its dependency will never complete


def test_a_person_withdraws_a_request_and_the_peer_is_asked_to_stop(local_fleet: Fleet) -> None:
    web, api = local_fleet.factory("web"), local_fleet.factory("api")
    set_peers(web, peer("api", local_fleet.url("api")))
    set_peers(api, peer("web", local_fleet.url("web"), tasks="auto"))
    proxy = gf_json(web, "task", "add", "--in", "api", "Maybe later")["id"]
    waiting = gf_json(web, "task", "add", "Needs it", "--depends-on", proxy)["id"]
    sync(web)
    sync(api)
    sync(web)
    theirs = gf_json(web, "task", "show", proxy)["remote"]["task_id"]
    gf(api, "task", "claim", theirs, "--as", "coder/bob")

    gf(web, "task", "cancel", proxy, "--reason", "plans changed", "--as", "coder/ada", code=2)
    out = gf(web, "task", "cancel", proxy, "--reason", "plans changed", "--as", "human/lead")
    assert "api is asked to stop its task" in out.stdout
    assert gf_json(web, "task", "show", proxy)["state"] == "canceled"
    assert waiting not in [t["id"] for t in gf_json(web, "ready")]  # it waits for ever
    sync(web)
    sync(api)
    asked = gf_json(api, "task", "show", theirs)
    assert asked["state"] == "working"  # its holder decides; it is asked to stop
    assert asked["cancel_requested"] == "web withdrew its request: plans changed"
    gf(api, "task", "release", theirs, "--as", "coder/bob")
    gf(api, "task", "cancel", theirs, "--as", "human/boss")
    sync(api)
    sync(web)
    shown = gf_json(web, "task", "show", proxy)
    assert shown["state"] == "canceled" and shown["remote"]["state"] == "canceled"


def test_a_request_waiting_for_a_person_is_told_once(local_fleet: Fleet, tmp_path: Path) -> None:
    web, api = local_fleet.factory("web"), local_fleet.factory("api")
    set_peers(web, peer("api", local_fleet.url("api")))
    heard = tmp_path / "heard.jsonl"
    text = git(api, "show", "factory:.factory/factory.yaml")
    gf(api, "config", "edit", "--file", "-", input=text.rstrip("\n") + (
        f"\n\nnotify:\n  - on: [peer_request]\n    command: cat >> {heard}; echo >> {heard}\n"))
    set_peers(api, peer("web", local_fleet.url("web"), tasks="ask"))
    gf_json(web, "task", "add", "--in", "api", "Add /v2/users", "--as", "human/lead")
    gf_json(web, "task", "add", "--in", "api", "Add /v2/teams", "--as", "human/lead")
    sync(web)
    sync(api)
    first = gf_json(api, "task", "requests")[0]
    gf(api, "task", "reject", first["id"], "--reason", "not now", "--as", "human/boss")
    gf(api, "daemon", "--burst", code=None)
    gf(api, "daemon", "--burst", code=None)
    notices = [json.loads(line) for line in heard.read_text().splitlines() if line.strip()]
    assert len(notices) == 1  # the one still waiting, once; not the one rejected already
    (notice,) = notices
    assert notice["event"] == "peer_request" and "web" in notice["title"]
    assert notice["act"] == "gitfactory task requests"
