"""The daemon checks the factory branch's integrity on every tick and tells the
people (human/*) once of each commit that lost records (issue 11)."""

from __future__ import annotations

from pathlib import Path

from conftest import gf, gf_json, git


def test_the_daemon_tells_humans_once_of_lost_records(factory_repo: Path) -> None:
    r = factory_repo
    gf(r, "daemon", "--burst")  # verified up to here
    for i in range(4):
        gf(r, "log", "append", "note", f"n{i}")
    tree = git(r, "rev-parse", "factory~4^{tree}").strip()
    bad = git(r, "commit-tree", tree, "-p", "factory", "-m", "from a stale checkout").strip()
    git(r, "-c", "core.hooksPath=/dev/null", "update-ref", "refs/heads/factory", bad)
    out = gf(r, "daemon", "--burst").stdout
    assert "integrity: 4 record(s) deleted or changed" in out
    [told] = gf_json(r, "mail", "inbox", "--as", "human/lead")
    assert "4 record(s) deleted or changed" in told["subject"] and told["priority"] == "high"
    body = gf(r, "mail", "read", told["id"], "--as", "human/lead").stdout
    assert bad[:10] in body and "gitfactory verify --repair" in body
    gf(r, "daemon", "--burst")  # a restarted daemon does not tell them again
    assert len(gf_json(r, "mail", "inbox", "--as", "human/lead")) == 1
    gf(r, "verify", "--repair")
    assert "integrity" not in gf(r, "daemon", "--burst").stdout
    assert len(gf_json(r, "mail", "inbox", "--as", "human/lead")) == 1
