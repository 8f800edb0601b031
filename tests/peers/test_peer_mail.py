"""Mail between factories: a peer's role gets it, receipts and replies come back."""

from __future__ import annotations

from tests.conftest import gf, gf_json, git
from tests.peers.conftest import Fleet, peer, received, set_peers, sync, tree


def test_mail_crosses_to_a_peer_role_and_read_receipts_and_replies_come_back(
    fleet: Fleet,
) -> None:
    alpha, beta = fleet.factory("alpha"), fleet.factory("beta")
    set_peers(alpha, peer("beta", fleet.url("beta"), mail=["human"]))
    set_peers(beta, peer("alpha", fleet.url("alpha"), mail=["coder"]))

    sent = gf_json(alpha, "mail", "send", "beta:coder/*", "-s", "Schema change",
                   "--body", "users.email becomes unique", "--as", "human/lead")
    assert sent["abroad"][0]["peer"] == "beta"
    assert any(p.startswith(".factory/outbox/beta/") for p in tree(alpha))

    out = sync(alpha)
    assert out["peers"][0]["pushed"] is True
    assert git(beta, "rev-parse", "refs/factory/inbox/alpha").strip()

    took = sync(beta)["taken"]
    assert [(t["type"], t["outcome"]) for t in took] == [("mail", "delivered")]
    inbox = gf_json(beta, "mail", "inbox", "--as", "coder/bob")
    assert [(m["from"], m["subject"]) for m in inbox] == [("alpha:human/lead", "Schema change")]
    message_id = inbox[0]["id"]
    assert message_id == sent["id"]  # one message, one id, in both factories
    assert inbox[0]["verified"] is False and "unsigned" in inbox[0]["how"]
    gf(beta, "mail", "ingest")  # the postmaster leaves what the peers pass delivered alone
    gf(beta, "daemon", "--burst", code=None)
    assert [m["id"] for m in gf_json(beta, "mail", "inbox", "--as", "coder/bob")] == [message_id]

    gf(beta, "mail", "read", message_id, "--as", "coder/bob")
    gf(beta, "mail", "reply", message_id, "--body", "done: unique index added",
       "--as", "coder/bob")
    sync(beta)  # the read receipt, the delivery receipt and the reply go out
    sync(alpha)

    receipts = received(alpha, type="receipt")
    assert {r["outcome"] for r in receipts} == {"noted"}
    shown = gf_json(alpha, "mail", "read", message_id, "--as", "human/lead")["abroad"]
    assert [(a["peer"], [r["outcome"] for r in a["receipts"]]) for a in shown] == [
        ("beta", ["delivered", "read"])]
    assert "Peer:        beta: delivered; read by beta:coder/bob" in gf(
        alpha, "mail", "read", message_id, "--as", "human/lead").stdout
    reads = gf_json(alpha, "log", "--kind", "mail.read")
    assert [(e["actor"], e["data"]["message"]) for e in reads if ":" in e["actor"]] == [
        ("beta:coder/bob", message_id)]
    thread = gf_json(alpha, "mail", "thread", message_id)
    assert [m["from"] for m in thread] == ["human/lead", "beta:coder/bob"]
    assert "unique index added" in thread[1]["body"]

    # alpha's receipt for the reply reaches beta, which answers no receipt with one;
    # after that, rounds on both sides take in and write nothing.
    took = sync(beta)["taken"]
    assert [(t["type"], t["outcome"]) for t in took] == [("receipt", "noted")]
    before = (git(alpha, "rev-parse", "factory"), git(beta, "rev-parse", "factory"))
    assert sync(alpha)["taken"] == [] and sync(beta)["taken"] == []
    assert sync(alpha)["sent"] == 0
    assert (git(alpha, "rev-parse", "factory"), git(beta, "rev-parse", "factory")) == before


def test_mail_to_a_role_the_policy_does_not_open_is_rejected_with_a_receipt(
    local_fleet: Fleet,
) -> None:
    alpha, beta = local_fleet.factory("alpha"), local_fleet.factory("beta")
    set_peers(alpha, peer("beta", local_fleet.url("beta")))
    set_peers(beta, peer("alpha", local_fleet.url("alpha"), mail=["reviewer"]))
    gf(alpha, "mail", "send", "beta:coder/ada", "-s", "hi", "--body", "x", "--as", "human/lead")
    sync(alpha)
    took = sync(beta)["taken"]
    assert took[0]["outcome"] == "rejected"
    assert "may not write to role(s) coder" in took[0]["reason"]
    assert gf_json(beta, "mail", "inbox", "--as", "coder/ada") == []
    sync(alpha)
    receipt = received(alpha, type="receipt")
    assert len(receipt) == 1 and "may not write to role(s) coder" in receipt[0]["reason"]
    mid = gf_json(alpha, "mail", "search", "hi")[0]["id"]
    assert "beta: rejected (" in gf(alpha, "mail", "read", mid, "--as", "human/lead").stdout
    shown = gf(alpha, "peers", "list").stdout
    assert "0 without a receipt yet" in shown


def test_a_factory_that_is_not_a_peer_is_not_read(local_fleet: Fleet) -> None:
    alpha, gamma = local_fleet.factory("alpha"), local_fleet.factory("gamma")
    set_peers(gamma, peer("alpha", local_fleet.url("alpha"), mail=["*"]))
    set_peers(alpha, peer("beta", local_fleet.url("beta")))  # gamma is not alpha's peer
    gf(gamma, "mail", "send", "alpha:coder/ada", "-s", "let me in", "--body", "x")
    sync(gamma)
    assert git(alpha, "rev-parse", "refs/factory/inbox/gamma").strip()
    out = sync(alpha, code=6)  # beta does not exist: unreachable
    assert out["strangers"] == ["gamma"]
    assert gf_json(alpha, "mail", "inbox", "--as", "coder/ada") == []
    assert not any(p.startswith(".factory/inbox/") for p in tree(alpha))
    listed = gf_json(alpha, "peers", "list", "--json")
    assert listed["strangers"] == ["gamma"]
    assert "not a peer" in gf(alpha, "peers").stdout
