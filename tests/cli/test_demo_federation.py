"""`gitfactory demo --federation`: two factories, two daemons, git daemon on loopback."""

from __future__ import annotations

import re
from pathlib import Path

from conftest import gf, gf_json, git


def test_the_two_factory_demo_runs_to_the_dependent_page(tmp_path: Path) -> None:
    out = gf(tmp_path, "demo", "--federation", str(tmp_path / "fed")).stdout
    web, api = tmp_path / "fed" / "served" / "web", tmp_path / "fed" / "served" / "api"
    page = git(web, "show", "main:users.html")
    landed = re.search(r"built against api@([0-9a-f]{12})", page)
    assert landed, page
    git(api, "merge-base", "--is-ancestor", landed.group(1), "main")  # api's work, in api
    assert "users_v2.py" in git(api, "ls-tree", "--name-only", "main")
    assert "users_v2.py" not in git(web, "ls-tree", "--name-only", "main")

    proxy = [t for t in gf_json(web, "task", "list") if t["remote"]]
    assert [(t["title"], t["state"], t["remote"]["peer"]) for t in proxy] == [
        ("Add GET /v2/users", "completed", "api")]
    theirs = gf_json(api, "task", "show", proxy[0]["remote"]["task_id"])
    assert theirs["state"] == "completed" and theirs["requester"] == "web:human/web-lead"
    assert "both timelines, merged" in out and "peer.received" in out
    assert "both daemons and git daemon stopped" in out
    assert gf_json(api, "peers", "list", "--json")["peers"][0]["name"] == "web"


def test_the_federation_demo_refuses_a_non_empty_directory(tmp_path: Path) -> None:
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    proc = gf(tmp_path, "demo", "--federation", str(tmp_path / "full"), code=2)
    assert "is not empty" in proc.stderr
