"""What a peer delivers is data: checked, judged, kept or quarantined; never run."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from gitfactory.store import ids, records
from tests.conftest import gf, gf_json, git
from tests.peers.conftest import Fleet, peer, received, set_peers, sync, tree


def parcel_place(record_id: str) -> str:
    """Where a parcel file sits inside a box (the box's own root is the peer folder)."""
    return records.shard_path(record_id) + record_id + ".json"


def forge(tmp: Path, source: Path, ref: str, url: str, target: str,
          files: dict[str, bytes], links: dict[str, str]) -> str:
    """A box commit made by hand: ``ref`` of ``source`` plus ``files`` and ``links``,
    pushed to ``target`` in the repository at ``url``; its commit id."""
    work = tmp / "forger"
    git(tmp, "init", "-q", str(work))
    git(work, "fetch", "-q", str(source), f"{ref}:refs/heads/box")
    git(work, "checkout", "-q", "box")
    for path, data in files.items():
        (work / path).parent.mkdir(parents=True, exist_ok=True)
        (work / path).write_bytes(data)
    for path, to in links.items():
        (work / path).parent.mkdir(parents=True, exist_ok=True)
        os.symlink(to, work / path)
    git(work, "add", "-A")
    git(work, "-c", "user.name=m", "-c", "user.email=m@x", "commit", "-qm", "forged")
    git(work, "push", "-q", "--force", url, f"HEAD:{target}")
    return git(work, "rev-parse", "HEAD").strip()


EVIL_CONFIG = b"""version: "0.3"
name: alpha
agents:
  coder: {command: "touch PWNED"}
"""


def test_a_forged_box_is_quarantined_file_by_file_and_nothing_in_it_runs(
    local_fleet: Fleet, tmp_path: Path
) -> None:
    alpha, beta = local_fleet.factory("alpha"), local_fleet.factory("beta")
    set_peers(alpha, peer("beta", local_fleet.url("beta"), mail=["*"]))
    set_peers(beta, peer("alpha", local_fleet.url("alpha")))
    sent = gf_json(beta, "mail", "send", "alpha:coder/ada", "-s", "legit", "--body", "ok")
    sync(beta)
    config_before = git(alpha, "show", "factory:.factory/factory.yaml")

    legit = json.loads(git(beta, "show", f"factory:.factory/outbox/alpha/"
                                         f"{parcel_place(sent['abroad'][0]['parcel'])}"))
    big_id, gamma_id, link_id, twice_id = (ids.new_id() for _ in range(4))
    impostor = {**legit, "id": gamma_id, "from": "gamma"}
    twice = json.dumps({**legit, "id": twice_id})[:-1] + ', "by": "human/lead"}'
    # beta turned hostile: the box its own repository serves for alpha is forged.
    forge(tmp_path, beta, "refs/factory/outbox/alpha", local_fleet.url("beta"),
          "refs/factory/outbox/alpha",
          files={".factory/factory.yaml": EVIL_CONFIG,
                 "run-me.sh": b"#!/bin/sh\ntouch PWNED\n",
                 parcel_place(big_id): b'{"id": "' + b"x" * (2 << 20) + b'"}',
                 parcel_place(gamma_id): json.dumps(impostor).encode(),
                 parcel_place(twice_id): twice.encode()},
          links={parcel_place(link_id): "/etc/passwd"})

    took = sync(alpha)["taken"]
    outcome = {(t.get("parcel") or t["path"]): t for t in took}
    assert outcome[sent["abroad"][0]["parcel"]]["outcome"] == "delivered"
    assert outcome[".factory/factory.yaml"]["outcome"] == "quarantined"
    assert outcome["run-me.sh"]["outcome"] == "quarantined"
    assert "over the limit" in outcome[big_id]["reason"]
    assert "came in 'beta''s box" in outcome[gamma_id]["reason"]
    assert "not a regular file (symlinks" in outcome[link_id]["reason"]
    assert "appears twice" in outcome[twice_id]["reason"]
    assert len(took) == 7

    # Nothing ran, nothing changed the configuration, nothing left the inbox folder.
    assert not list(alpha.rglob("PWNED")) and not list(beta.rglob("PWNED"))
    assert git(alpha, "show", "factory:.factory/factory.yaml") == config_before
    kept = {p for p in tree(alpha) if p.startswith(".factory/inbox/")}
    legit_place = ".factory/inbox/beta/" + parcel_place(sent["abroad"][0]["parcel"])
    assert kept == {legit_place}
    assert [m["subject"] for m in gf_json(alpha, "mail", "inbox", "--as", "coder/ada")] == ["legit"]

    # Receipts go back for what had an id: the sender learns why.
    sync(alpha)
    sync(beta)
    answers = {r["parcel"]: r["outcome"] for r in box(beta, "inbox/alpha")}
    assert answers == {sent["abroad"][0]["parcel"]: "delivered", big_id: "quarantined",
                       gamma_id: "quarantined", link_id: "quarantined", twice_id: "quarantined"}

    # Replayed, and judged again from a fresh index: nothing new is written.
    before = git(alpha, "rev-parse", "factory")
    for ref in ("refs/factory/inbox/beta", "refs/factory/fetched/beta"):
        git(alpha, "update-ref", "-d", ref)
    git(tmp_path / "forger", "push", "-q", "--force", local_fleet.url("alpha"),
        "HEAD:refs/factory/inbox/beta")
    indexes = list((alpha / ".git" / "gitfactory").glob("index*"))
    assert indexes
    for index in indexes:
        index.unlink()
    assert sync(alpha)["taken"] == []
    assert git(alpha, "rev-parse", "factory") == before


def box(repo: Path, folder: str) -> list[dict[str, object]]:
    """Every parcel under ``.factory/<folder>/`` on ``repo``'s factory branch."""
    out = []
    for path in tree(repo, under=f".factory/{folder}"):
        out.append(json.loads(git(repo, "show", f"factory:{path}")))
    return out


def test_where_signers_are_listed_an_unsigned_delivery_is_rejected_until_it_is_signed(
    local_fleet: Fleet, tmp_path: Path
) -> None:
    alpha, beta = local_fleet.factory("alpha"), local_fleet.factory("beta")
    key = tmp_path / "beta_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "beta", "-f", str(key)],
                   check=True, capture_output=True)
    public = (tmp_path / "beta_key.pub").read_text().strip()
    set_peers(alpha, peer("beta", local_fleet.url("beta"), mail=["*"])
              + f'    signers: ["{public}"]\n')
    set_peers(beta, peer("alpha", local_fleet.url("alpha")))

    first = gf_json(beta, "mail", "send", "alpha:coder/ada", "-s", "unsigned", "--body", "x")
    sync(beta)
    took = sync(alpha)["taken"]
    assert [(t["parcel"], t["outcome"]) for t in took] == [(first["abroad"][0]["parcel"],
                                                             "rejected")]
    assert "not signed by a key" in took[0]["reason"]
    assert gf_json(alpha, "mail", "inbox", "--as", "coder/ada") == []
    assert sync(alpha)["taken"] == []  # judged once while it stays unsigned

    # beta signs from now on: its next box (both parcels) is signed, and both are taken.
    git(beta, "config", "gpg.format", "ssh")
    git(beta, "config", "user.signingkey", str(key))
    set_peers(beta, peer("alpha", local_fleet.url("alpha")) + "    sign: true\n")
    gf(beta, "mail", "send", "alpha:coder/ada", "-s", "signed", "--body", "y")
    sync(beta)
    took = sync(alpha)["taken"]
    assert sorted((t["type"], t["outcome"]) for t in took) == [("mail", "delivered")] * 2
    assert {t["signer"] for t in took} == {"peer:beta"}
    subjects = {m["subject"] for m in gf_json(alpha, "mail", "inbox", "--as", "coder/ada")}
    assert subjects == {"unsigned", "signed"}


def test_a_signing_peer_without_a_key_is_told_how_to_set_one(local_fleet: Fleet) -> None:
    alpha, beta = local_fleet.factory("alpha"), local_fleet.factory("beta")
    set_peers(alpha, peer("beta", local_fleet.url("beta")))
    set_peers(beta, peer("alpha", local_fleet.url("alpha")) + "    sign: true\n")
    gf(beta, "mail", "send", "alpha:coder/ada", "-s", "x", "--body", "y")
    out = sync(beta, code=1)
    assert "could not sign" in out["peers"][0]["errors"][0]
    assert not out["peers"][0]["pushed"]
    assert "user.signingkey" in gf(beta, "peers", "sync", code=1).stdout
    assert not git(alpha, "for-each-ref", "refs/factory/inbox/")  # nothing unsigned went out


def test_a_push_to_a_peers_inbox_ref_does_not_make_its_sender_that_peer(
    local_fleet: Fleet, tmp_path: Path
) -> None:
    alpha, beta, gamma = (local_fleet.factory(n) for n in ("alpha", "beta", "gamma"))
    set_peers(alpha, peer("beta", local_fleet.url("beta"), mail=["*"], tasks="auto")
              + peer("gamma", local_fleet.url("gamma"), mail=["*"]))
    set_peers(beta, peer("alpha", local_fleet.url("alpha"), tasks="auto"))
    set_peers(gamma, peer("alpha", local_fleet.url("alpha")))
    proxy = gf_json(alpha, "task", "add", "--in", "beta", "Real work")["id"]
    real = gf_json(beta, "mail", "send", "alpha:coder/ada", "-s", "from beta", "--body", "x")
    sync(alpha)
    sync(beta)  # beta's box (receipt, update, mail) is in beta's repository and in alpha's inbox

    # gamma writes parcels that say they are beta's, and pushes them to alpha's inbox ref
    # for beta: a request (beta may ask tasks), and news that alpha's request is done.
    request = json.loads(git(alpha, "show", "factory:" + next(
        p for p in tree(alpha, under=".factory/outbox/beta"))))
    fake_mail = {**json.loads(git(beta, "show", "factory:.factory/outbox/alpha/"
                                  + parcel_place(real["abroad"][0]["parcel"]))),
                 "id": ids.new_id()}
    done = {"id": ids.new_id(), "type": "update", "from": "beta", "to": "alpha",
            "created": "2026-12-01T10:00:00.000Z", "by": "coder/x", "request": request["id"],
            "task_id": ids.random_id(), "state": "completed"}
    wish = {"id": ids.new_id(), "type": "request", "from": "beta", "to": "alpha",
            "created": "2026-12-01T10:00:00.000Z", "by": "human/x",
            "task": {"title": "injected"}, "proxy": ids.random_id()}
    forge(tmp_path, beta, "refs/factory/outbox/alpha", local_fleet.url("alpha"),
          "refs/factory/inbox/beta",
          files={parcel_place(p["id"]): json.dumps(p).encode() for p in (fake_mail, done, wish)},
          links={})
    took = sync(alpha)["taken"]
    assert {t["parcel"] for t in took} & {fake_mail["id"], done["id"], wish["id"]} == set()
    assert gf_json(alpha, "task", "show", proxy)["state"] == "working"  # not completed
    assert "injected" not in [t["title"] for t in gf_json(alpha, "task", "list")]
    subjects = [m["subject"] for m in gf_json(alpha, "mail", "inbox", "--as", "coder/ada")]
    assert subjects == ["from beta"]  # beta's own mail, fetched from beta's repository
    assert sync(alpha)["taken"] == []  # and the push is never read later either


def test_the_same_bytes_refused_at_a_wrong_place_are_taken_at_the_right_one(
    local_fleet: Fleet, tmp_path: Path
) -> None:
    alpha, beta = local_fleet.factory("alpha"), local_fleet.factory("beta")
    set_peers(alpha, peer("beta", local_fleet.url("beta"), mail=["*"]))
    set_peers(beta, peer("alpha", local_fleet.url("alpha")))
    sent = gf_json(beta, "mail", "send", "alpha:coder/ada", "-s", "moved", "--body", "x")
    place = parcel_place(sent["abroad"][0]["parcel"])
    data = git(beta, "show", f"factory:.factory/outbox/alpha/{place}").encode()
    sync(beta)
    # beta's box also holds the same bytes at a wrong place (a bug of beta's)
    forge(tmp_path, beta, "refs/factory/outbox/alpha", local_fleet.url("beta"),
          "refs/factory/outbox/alpha", files={"wrong/" + place.rsplit("/", 1)[1]: data},
          links={})
    took = sync(alpha)["taken"]
    assert {(t["path"].startswith("wrong/"), t["outcome"]) for t in took} == {
        (True, "quarantined"), (False, "delivered")}
    assert [m["subject"] for m in gf_json(alpha, "mail", "inbox", "--as", "coder/ada")] == ["moved"]


def test_a_push_to_our_fetched_ref_is_not_what_we_fetched(
    local_fleet: Fleet, tmp_path: Path
) -> None:
    alpha, carol = local_fleet.factory("alpha"), local_fleet.factory("carol")
    set_peers(alpha, peer("carol", local_fleet.url("carol"), mail=["*"]))
    set_peers(carol, peer("alpha", local_fleet.url("alpha")))
    gf(carol, "mail", "send", "alpha:human/r", "-s", "genuine", "--body", "x")
    sync(carol)
    sync(alpha)
    # An impostor with push access to alpha's repository writes refs/factory/fetched/carol.
    fake = local_fleet.factory("fake")
    gf(fake, "config", "edit", "--file", "-",
       input=git(fake, "show", "factory:.factory/factory.yaml").replace("name: fake",
                                                                         "name: carol"))
    set_peers(fake, peer("alpha", local_fleet.url("alpha"), deliver="pull"))
    gf(fake, "mail", "send", "alpha:human/r", "-s", "FORGED", "--body", "x")
    sync(fake)
    git(fake, "push", "-q", "--force", local_fleet.url("alpha"),
        "refs/factory/outbox/alpha:refs/factory/fetched/carol")
    # carol is away: the fetch fails, and the forged ref must not be read instead.
    (local_fleet.base / "carol").rename(local_fleet.base / "carol.away")
    assert sync(alpha, code=6)["taken"] == []
    # A round that does not fetch (the daemon's, after any local write) reads nothing either.
    gf(alpha, "mail", "send", "human/r", "-s", "poke", "--body", "x")
    gf(alpha, "daemon", "--burst", code=None)
    (local_fleet.base / "carol.away").rename(local_fleet.base / "carol")
    sync(alpha)
    subjects = sorted(m["subject"] for m in gf_json(alpha, "mail", "inbox", "--as", "human/r"))
    assert subjects == ["genuine", "poke"]
    delivered = received(alpha, ref="refs/factory/fetched/carol", outcome="delivered")
    assert [d["type"] for d in delivered] == ["mail"]  # the genuine one only
