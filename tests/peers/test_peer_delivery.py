"""Delivery is idempotent by id and order-free: a peer that was away gets everything,
once; a pull peer fetches what we leave for it."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import gf, gf_json, git
from tests.peers.conftest import Fleet, peer, set_peers, sync
from tests.sync.conftest import GitDaemon


def test_a_peer_that_was_down_receives_everything_exactly_once(tmp_path: Path) -> None:
    base = tmp_path / "served"
    base.mkdir()
    daemon = GitDaemon(base)
    daemon.start()
    try:
        fleet = Fleet(base, daemon)
        alpha, beta = fleet.factory("alpha"), fleet.factory("beta")
        set_peers(alpha, peer("beta", fleet.url("beta")))
        set_peers(beta, peer("alpha", fleet.url("alpha"), mail=["human"]))
        gf(alpha, "mail", "send", "beta:human/eve", "-s", "one", "--body", "1")
        sync(alpha)
        daemon.stop()

        for subject in ("two", "three", "four"):
            gf(alpha, "mail", "send", "beta:human/eve", "-s", subject, "--body", subject)
        down = sync(alpha, code=6)
        assert down["peers"][0]["unreachable"] is True
        listed = gf_json(alpha, "peers", "list", "--json")["peers"][0]
        assert listed["contact"]["ok"] is False and listed["unanswered"] == 4
        assert "unreachable since" in gf(alpha, "peers").stdout

        daemon.start()
        assert sync(alpha)["peers"][0]["pushed"] is True
        took = sync(beta)["taken"]
        assert sorted(t["outcome"] for t in took) == ["delivered"] * 4
        inbox = gf_json(beta, "mail", "inbox", "--as", "human/eve")
        assert sorted(m["subject"] for m in inbox) == ["four", "one", "three", "two"]

        # The same box again (as a retrying sender would push it): nothing changes.
        before = git(beta, "rev-parse", "factory")
        git(alpha, "push", "-q", "--force", fleet.url("beta"),
            "refs/factory/outbox/beta:refs/factory/inbox/alpha")
        assert sync(beta)["taken"] == []
        assert git(beta, "rev-parse", "factory") == before
        sync(alpha)
        assert gf_json(alpha, "peers", "list", "--json")["peers"][0]["unanswered"] == 0
    finally:
        daemon.stop()


def test_a_pull_peer_fetches_what_we_leave_for_it(local_fleet: Fleet) -> None:
    alpha, beta = local_fleet.factory("alpha"), local_fleet.factory("beta")
    # alpha may not write to beta: beta fetches alpha's refs/factory/outbox/beta.
    set_peers(alpha, peer("beta", local_fleet.url("beta"), deliver="pull"))
    set_peers(beta, peer("alpha", local_fleet.url("alpha"), deliver="pull", mail=["coder"]))
    gf(alpha, "mail", "send", "beta:coder/ada", "-s", "fetch me", "--body", "x")
    out = sync(alpha)
    assert out["peers"][0]["published"] and out["peers"][0]["pushed"] is False
    assert not git(beta, "for-each-ref", "refs/factory/inbox/")
    took = sync(beta)["taken"]
    assert [(t["type"], t["outcome"], t["ref"]) for t in took] == [
        ("mail", "delivered", "refs/factory/fetched/alpha")]
    sync(alpha)  # alpha fetches beta's receipt the same way
    listed = gf_json(alpha, "peers", "list", "--json")["peers"][0]
    assert listed["unanswered"] == 0 and listed["deliver"] == "pull"
