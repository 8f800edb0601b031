"""Delivery is idempotent by id and order-free: a peer that was away gets everything,
once; a pull peer fetches what we leave for it."""

from __future__ import annotations

import subprocess

from tests.conftest import gf, gf_json, git, wait_for
from tests.peers.conftest import Fleet, peer, set_peers, sync


def test_a_peer_that_was_down_receives_everything_exactly_once(served_fleet: Fleet) -> None:
    fleet, daemon = served_fleet, served_fleet.daemon
    assert daemon is not None
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


def test_peers_check_says_what_works_and_what_to_do(served_fleet: Fleet) -> None:
    fleet, daemon = served_fleet, served_fleet.daemon
    assert daemon is not None
    alpha = fleet.factory("alpha")
    fleet.factory("beta")
    set_peers(alpha, peer("beta", fleet.url("beta"))
              + peer("gone", fleet.url("nowhere"), deliver="pull"))
    gf(alpha, "mail", "send", "beta:human/eve", "-s", "hi", "--body", "x")
    found = {c["name"]: c for c in gf_json(alpha, "peers", "check", "--json", code=6)}
    assert found["beta"]["reachable"] and found["beta"]["ours_there"] is False  # not sent
    assert found["gone"]["reachable"] is False and "git ls-remote" in found["gone"]["problems"][0]
    sync(alpha, "beta")
    beta_view = gf_json(alpha, "peers", "check", "beta", "--json")[0]
    assert beta_view["ours_there"] is True and beta_view["problems"] == []
    gf(alpha, "mail", "send", "beta:human/eve", "-s", "again", "--body", "y")
    assert gf_json(alpha, "peers", "check", "beta", "--json")[0]["ours_there"] is False
    assert "not there yet" in gf(alpha, "peers", "check", "beta").stdout
    daemon.stop()
    # Served read-only (no receive-pack): reachable, but it takes no push from us.
    readonly = subprocess.Popen(
        ["git", "daemon", "--reuseaddr", "--export-all", f"--base-path={fleet.base}",
         "--listen=127.0.0.1", f"--port={daemon.port}", str(fleet.base)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_for(lambda: gf(alpha, "peers", "check", "beta", code=None).returncode != 6,
                 "the read-only git daemon")
        proc = gf(alpha, "peers", "check", "beta", code=1)
        assert "does not take pushes" in proc.stdout and "deliver: pull" in proc.stdout
    finally:
        readonly.terminate()
        readonly.wait(timeout=30)
