"""Mail that arrives by plain git (DESIGN I7): delivered once, invalid files
quarantined with the reason and the sender told; overdue acknowledgements escalated."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from conftest import commit_on_factory, gf, gf_json, git, message_path

EXAMPLES = Path(__file__).resolve().parents[2] / "protocol" / "examples"


def message_bytes(mid: str, **fields: str) -> bytes:
    front = {"id": f'"{mid}"', "from": "human/plain", "to": '["coder/ada"]',
             "subject": "by hand", "created": "2026-11-22T10:00:00Z", **fields}
    lines = "".join(f"{k}: {v}\n" for k, v in front.items())
    return f"---\n{lines}---\n\nWritten with an editor.\n".encode()


def shell(script: str, repo: Path, *args: str, input: str = "") -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GITFACTORY")}
    proc = subprocess.run(["bash", str(EXAMPLES / script), *args], cwd=repo, input=input,
                          capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_plain_git_sends_a_message_and_reads_an_inbox(factory_repo: Path) -> None:
    r = factory_repo
    before = (r / ".git" / "index").read_bytes()
    mid = shell("send-message.sh", r, "coder/*", 'Build "red" \\o/', "ops/shell",
                input="The *build* is red.\n").strip()
    [row] = gf_json(r, "mail", "inbox", "--as", "coder/ada")
    assert row["id"] == mid and row["subject"] == 'Build "red" \\o/' and row["from"] == "ops/shell"
    detail = gf_json(r, "mail", "read", mid, "--as", "coder/ada")
    assert detail["body"] == "The *build* is red.\n"
    assert (r / ".git" / "index").read_bytes() == before  # the user's index is untouched

    # The other way round: gitfactory writes, plain git reads.
    sent = gf_json(r, "mail", "send", "coder/ada", "-s", "second", "--as", "human/lead")
    listing = shell("read-inbox.sh", r, "coder/ada").splitlines()
    assert listing == [f'{mid} ops/shell Build "red" \\o/', f"{sent['id']} human/lead second"]
    assert shell("read-inbox.sh", r, "reviewer/ann") == ""

    # The plain-git message has no delivery receipt until the postmaster passes, once.
    first = gf_json(r, "mail", "ingest")
    assert first["delivered"] == [mid] and first["quarantined"] == []
    assert gf_json(r, "mail", "ingest")["delivered"] == []
    later = shell("send-message.sh", r, "coder/ada", "later", input="x\n").strip()
    assert gf_json(r, "mail", "ingest")["delivered"] == [later]  # passes resume, never skip
    receipts = [x for x in detail["receipts"] if x["kind"] == "mail.delivered"]
    assert receipts == []
    delivered = gf_json(r, "log", "--kind", "mail.delivered")
    assert sorted(e["data"]["message"] for e in delivered) == sorted([mid, sent["id"], later])


def test_messages_committed_on_watched_branches_are_delivered_once(
    factory_repo: Path, tmp_path: Path
) -> None:
    r = factory_repo
    # An agent in its own linked worktree commits a message file on its branch.
    wt = tmp_path / "agent-wt"
    git(r, "worktree", "add", "-q", "-b", "agent/ada", str(wt))
    mid = "01m80000000000000000000001"
    path = wt / message_path(mid)
    path.parent.mkdir(parents=True)
    path.write_bytes(message_bytes(mid, **{"from": "coder/ada", "to": '["human/lead"]'}))
    git(wt, "add", ".factory")
    git(wt, "commit", "-qm", "tell the lead")
    # The same file reaches a second branch (a merge, a cherry-pick): still one message.
    git(r, "branch", "agent/copy", "agent/ada")

    report = gf_json(r, "mail", "ingest")
    assert report["delivered"] == [mid] and "agent/ada" in report["branches"]
    assert [m["id"] for m in gf_json(r, "mail", "inbox", "--as", "human/lead")] == [mid]
    on_factory = git(r, "show", f"factory:{message_path(mid)}").encode()
    assert on_factory == path.read_bytes()  # byte for byte
    receipt = gf_json(r, "log", "--kind", "mail.delivered")[0]
    assert receipt["actor"] == "factory/mail" and receipt["data"]["via"] in ("agent/ada", "agent/copy")

    # Seen again (new commits on the branch, a fresh index): nothing more happens.
    (wt / "code.py").write_text("x = 1\n")
    git(wt, "add", "code.py")
    git(wt, "commit", "-qm", "code")
    assert gf_json(r, "mail", "ingest")["delivered"] == []
    (r / ".git" / "gitfactory" / "index.sqlite").unlink()
    assert gf_json(r, "mail", "ingest")["delivered"] == []
    assert len(gf_json(r, "mail", "inbox", "--as", "human/lead")) == 1
    # The user's own checkout never saw any of it.
    assert not (r / ".factory").exists()


def test_invalid_messages_are_quarantined_with_the_reason_and_the_sender_told(
    factory_repo: Path,
) -> None:
    r = factory_repo
    good = "01m80000000000000000000010"
    bad_to = "01m80000000000000000000011"
    remote = "01m80000000000000000000012"
    taken = gf_json(r, "mail", "send", "coder/ada", "-s", "original", "--as", "human/lead")["id"]
    files = {
        message_path(good): message_bytes(good),
        message_path(bad_to): message_bytes(bad_to, to='["Coder Ada"]'),
        message_path(remote): message_bytes(remote, **{"from": "factory:evil/bot"}),
        message_path(taken): message_bytes(taken, subject="an impostor"),
        ".factory/mail/notes.md": b"---\nfrom: human/plain\n---\nno id\n",
    }
    commit_on_factory(r, files, ref="refs/heads/agent/x",
                      symlinks={message_path("01m80000000000000000000013"): "/etc/passwd"})

    report = gf_json(r, "mail", "ingest", "--branch", "agent/x")
    assert report["delivered"] == [good]
    reasons = {q["path"]: (q["field"], q["reason"]) for q in report["quarantined"]}
    assert set(reasons) == {message_path(bad_to), message_path(remote), message_path(taken),
                            ".factory/mail/notes.md", message_path("01m80000000000000000000013")}
    assert reasons[message_path(bad_to)][0] == "to.0"
    assert "only arrives through a peer" in reasons[message_path(remote)][1]
    assert "already on the factory branch" in reasons[message_path(taken)][1]
    assert "symlinks are refused" in reasons[message_path("01m80000000000000000000013")][1]
    assert "file name" in reasons[".factory/mail/notes.md"][1]

    # Every refusal is a record that keeps the content; nothing else was affected.
    records = gf_json(r, "log", "--kind", "mail.quarantined")
    assert len(records) == 5
    kept = next(e for e in records if e["data"]["path"] == message_path(bad_to))
    assert "Coder Ada" in kept["data"]["content"] and kept["data"]["branch"] == "agent/x"
    lead = gf_json(r, "mail", "inbox", "--as", "coder/ada")
    assert sorted(m["id"] for m in lead) == sorted([good, taken])
    assert gf_json(r, "mail", "read", taken, "--as", "coder/ada")["subject"] == "original"
    # The senders that could be read were told (not the remote one, not the nameless).
    notices = gf_json(r, "mail", "inbox", "--as", "human/plain")
    assert len(notices) == 3 and all(n["from"] == "factory/mail" for n in notices)
    assert all(n["subject"].startswith("Undeliverable: ") for n in notices)
    body = gf_json(r, "mail", "read", notices[0]["id"], "--as", "human/plain")["body"]
    assert "agent/x" in body and "quarantine record" in body
    # Quarantined once: a second pass finds nothing new.
    again = gf_json(r, "mail", "ingest", "--branch", "agent/x")
    assert again["quarantined"] == [] and again["delivered"] == []


def test_an_invalid_message_on_the_factory_branch_is_quarantined_and_hidden(
    factory_repo: Path,
) -> None:
    r = factory_repo
    bad = "01m80000000000000000000020"
    ok = "01m80000000000000000000021"
    commit_on_factory(r, {message_path(bad): message_bytes(bad, priority='"asap"'),
                          message_path(ok): message_bytes(ok)})
    assert [m["id"] for m in gf_json(r, "mail", "inbox", "--as", "coder/ada")] == [ok]
    status = json.loads(gf(r, "status", "--json", code=4).stdout)  # 4: invalid records
    assert [i["path"] for i in status["invalid"]] == [message_path(bad)]
    report = gf_json(r, "mail", "ingest")
    assert report["delivered"] == [ok]
    assert [q["field"] for q in report["quarantined"]] == ["priority"]
    assert gf_json(r, "mail", "ingest")["quarantined"] == []


def test_only_watched_branches_are_ingested(factory_repo: Path) -> None:
    r = factory_repo
    mid = "01m80000000000000000000030"
    commit_on_factory(r, {message_path(mid): message_bytes(mid)}, ref="refs/heads/private/x")
    config = git(r, "show", "factory:.factory/factory.yaml").replace(
        'watch:\n  - "*"', 'watch:\n  - "agent/*"'
    )
    commit_on_factory(r, {".factory/factory.yaml": config.encode()})
    report = gf_json(r, "mail", "ingest")
    assert report["delivered"] == [] and report["branches"] == []
    git(r, "branch", "agent/y", "private/x")
    assert gf_json(r, "mail", "ingest")["delivered"] == [mid]


def test_overdue_acknowledgements_are_escalated_once(factory_repo: Path) -> None:
    r = factory_repo
    at = {"GITFACTORY_NOW": "2026-11-22T10:00:00Z"}
    urgent = gf_json(r, "mail", "send", "coder/ada", "reviewer/*", "-s", "Freeze main",
                     "--ack-required", "--as", "human/lead", env=at)["id"]
    done = gf_json(r, "mail", "send", "reviewer/*", "-s", "All acked", "--ack-required",
                   "--as", "human/lead", env=at)["id"]
    gf(r, "mail", "ack", done, "--as", "reviewer/ann")  # anyone of the role answers for it
    gf(r, "mail", "ack", urgent, "--as", "reviewer/bo")
    gf(r, "mail", "send", "coder/ada", "-s", "no ack needed", "--as", "human/lead", env=at)

    early = {"GITFACTORY_NOW": "2026-11-22T10:59:00Z"}
    assert gf_json(r, "mail", "escalate", env=early)["escalated"] == []
    late = {"GITFACTORY_NOW": "2026-11-22T11:01:00Z"}
    assert gf_json(r, "mail", "escalate", env=late)["escalated"] == [urgent]
    assert gf_json(r, "mail", "escalate", env=late)["escalated"] == []  # once

    [record] = gf_json(r, "log", "--kind", "mail.escalated")
    assert record["data"]["unacked"] == ["coder/ada"] and record["data"]["message"] == urgent
    [notice] = gf_json(r, "mail", "inbox", "--as", "human/lead")
    assert notice["subject"] == "Not acknowledged: Freeze main" and notice["thread"] == urgent
    assert notice["priority"] == "high"
    assert "- coder/ada" in gf_json(r, "mail", "read", notice["id"], "--as", "human/lead")["body"]
