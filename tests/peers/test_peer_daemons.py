"""Three factories in three repositories, each with its daemon in burst mode: a task
asked of another factory is done there and the dependent task here runs after it."""

from __future__ import annotations

from tests.conftest import gf, gf_json, git
from tests.peers.conftest import Fleet, peer, set_peers


def test_request_accept_work_completion_and_the_dependent_task_runs(fleet: Fleet) -> None:
    web, api = fleet.working_factory("web"), fleet.working_factory("api")
    gamma = fleet.working_factory("gamma")
    set_peers(web, peer("api", fleet.url("api")))
    set_peers(gamma, peer("api", fleet.url("api")))
    set_peers(api, peer("web", fleet.url("web"), tasks="auto")
              + peer("gamma", fleet.url("gamma"), tasks="no"))

    proxy = gf_json(web, "task", "add", "--in", "api", "Add /v2/users",
                    "--as", "human/lead")["id"]
    page = gf_json(web, "task", "add", "Users page", "--depends-on", proxy)["id"]
    refused = gf_json(gamma, "task", "add", "--in", "api", "Do my homework")["id"]

    gf(web, "daemon", "--burst", code=None)  # the request goes out; the page waits
    gf(gamma, "daemon", "--burst", code=None)
    assert gf_json(web, "task", "show", page)["state"] == "submitted"

    gf(api, "daemon", "--burst")  # takes the request, does it, merges, says so
    made = [t for t in gf_json(api, "task", "list") if t["title"] == "Add /v2/users"]
    assert [t["state"] for t in made] == ["completed"]
    assert [t["title"] for t in gf_json(api, "task", "list")] == ["Add /v2/users"]
    theirs = made[0]["id"]
    assert theirs in git(api, "show", "main:work.txt")

    gf(web, "daemon", "--burst")  # hears of it; the page is ready and gets done
    shown = gf_json(web, "task", "show", proxy)
    assert shown["state"] == "completed" and shown["remote"]["task_id"] == theirs
    landed = shown["remote"]["merge"]["commit"]
    assert git(api, "merge-base", "--is-ancestor", landed, "main") == ""
    assert gf_json(web, "task", "show", page)["state"] == "completed"
    assert page in git(web, "show", "main:work.txt")
    assert theirs not in git(web, "show", "main:work.txt")  # api's work stays in api

    gf(gamma, "daemon", "--burst", code=None)
    said = gf_json(gamma, "task", "show", refused)
    assert said["state"] == "rejected"
    assert "may not request tasks" in said["remote"]["reason"]
