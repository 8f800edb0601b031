"""`gitfactory doctor` and `gitfactory init --agent`: what is missing, and the one
command that fixes it, on real repositories."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import Any

from conftest import commit_on_factory, commit_script, event_path, gf, gf_json, git

CONFIG = ".factory/factory.yaml"


def factory_yaml(agents: str, gates: str, steps: str) -> bytes:
    gates = f"gates:\n{gates}" if gates else "gates: {}\n"
    return f"""protocol: "0.3"
name: test
agents:
{agents}{gates}workflows:
  default:
    start: implement
    steps:
{steps}""".encode()


HEALTHY = factory_yaml(
    agents=f"""  ada:
    role: coder
    command: {sys.executable} -c "print('coding')"
  rex:
    role: reviewer
    command: ./review.sh --strict
""",
    gates=f"""  tests:
    command: {sys.executable} -m pytest -q
""",
    steps="""      implement: {role: coder, on_success: test}
      test: {gate: tests, on_success: review, on_failure: implement}
      review: {role: reviewer, on_success: done}
""",
)


def checks(repo: Path, **kw: Any) -> dict[str, dict[str, Any]]:
    """doctor --json, by check name (exit code 0 or 1)."""
    report = gf_json(repo, "doctor", code=None, **kw)
    return {c["name"]: c for c in report["checks"]}


def with_review_script(repo: Path) -> None:
    commit_script(repo, "review.sh", "#!/bin/sh\necho reviewed\n", "review script")


def test_a_healthy_factory_exits_0_after_the_fix_doctor_names(repo: Path) -> None:
    with_review_script(repo)
    gf(repo, "init", "--name", "test")
    commit_on_factory(repo, {CONFIG: HEALTHY})
    # Only the hook is missing: doctor names it, with the command that fixes it.
    proc = gf(repo, "doctor", code=1)
    assert "PROBLEM  hooks" in proc.stdout and "fix: gitfactory hooks install" in proc.stdout
    assert proc.stdout.count("PROBLEM") == 1 and proc.stdout.rstrip().endswith("1 problem")
    gf(repo, "hooks", "install")
    out = gf(repo, "doctor").stdout
    lines = out.splitlines()
    assert lines[-1] == "no problems"
    assert not any(line.startswith("PROBLEM") for line in lines)
    for name in ("git", "base", "factory", "verify", "hooks", "agent coder/ada",
                 "agent reviewer/rex", "roles", "gate tests", "worktrees", "index"):
        assert any(line.split()[:1] == ["ok"] and f" {name} " in line for line in lines), name
    assert any(line.startswith("note     daemon") for line in lines)  # a note, not a problem
    assert "`./review.sh` is executable in main" in out


def test_an_unborn_repository_is_told_to_make_a_first_commit(empty_repo: Path) -> None:
    out = gf(empty_repo, "init").stdout  # init still succeeds, and says what is missing
    assert "PROBLEM  base" in out and "main has no commit yet" in out
    assert "fix: git commit --allow-empty -m 'first commit'" in out
    base = checks(empty_repo)["base"]
    assert base["ok"] is False and base["fix"] == "git commit --allow-empty -m 'first commit'"
    git(empty_repo, "commit", "--allow-empty", "-qm", "first commit")
    assert checks(empty_repo)["base"]["ok"] is True


def test_an_agent_command_that_is_not_there_is_named(factory_repo: Path) -> None:
    r = factory_repo
    (r / "lazy.sh").write_text("#!/bin/sh\n")  # committed, but not executable
    git(r, "add", "lazy.sh")
    git(r, "commit", "-qm", "lazy")
    agents = """  ada:
    role: coder
    command: MODEL=big env -u DEBUG claud -p "$(cat "$GITFACTORY_PROMPT_FILE")"
  bea:
    role: coder
    command: ./no-such-agent.sh
  cy:
    role: coder
    command: ./lazy.sh
"""
    commit_on_factory(r, {CONFIG: factory_yaml(agents, "", "      implement: {role: coder}\n")})
    proc = gf(r, "doctor", code=1)
    assert "`claud` not found on PATH; did you mean `claude`?" in proc.stdout
    found = checks(r)
    assert found["agent coder/ada"]["ok"] is False
    assert found["agent coder/ada"]["fix"] == "gitfactory config edit"
    assert found["agent coder/bea"]["ok"] is False
    assert "`./no-such-agent.sh` is neither in main nor in" in found["agent coder/bea"]["detail"]
    assert found["agent coder/cy"]["detail"] == "`./lazy.sh` is in main but not executable"
    assert found["agent coder/cy"]["fix"].startswith("chmod +x lazy.sh && git add lazy.sh")
    # config check warns (exit 0) with the same words.
    out = gf(r, "config", "check").stdout
    assert "warning: agent coder/ada: `claud` not found on PATH" in out
    assert "warning: agent coder/cy: `./lazy.sh` is in main but not executable" in out


def test_a_preset_agent_shows_its_version_and_never_its_env(
    factory_repo: Path, tmp_path: Path
) -> None:
    r = factory_repo
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "claude"
    fake.write_text('#!/bin/sh\n[ "$1" = --version ] && echo "9.9.9 (Claude Code)"\n')
    fake.chmod(0o755)
    agents = """  ada:
    role: coder
    preset: claude-code
    env: {ANTHROPIC_API_KEY: sk-secret-value}
"""
    commit_on_factory(r, {CONFIG: factory_yaml(agents, "", "      implement: {role: coder}\n")})
    env = {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    out = gf(r, "doctor", code=None, env=env).stdout
    line = next(x for x in out.splitlines() if "agent coder/ada" in x)
    assert line.startswith("ok") and "9.9.9 (Claude Code)" in line
    assert "sk-secret-value" not in out
    # Without it on PATH, the fix is the preset's install command.
    only_git = tmp_path / "only-git"
    only_git.mkdir()
    (only_git / "git").symlink_to(shutil.which("git") or "/usr/bin/git")
    bare = {"PATH": f"{only_git}{os.pathsep}{Path(sys.executable).parent}"}
    ada = checks(r, env=bare)["agent coder/ada"]
    assert ada["ok"] is False and ada["fix"] == "npm install -g @anthropic-ai/claude-code"


def test_a_role_no_agent_plays_is_named_and_human_steps_are_a_note(factory_repo: Path) -> None:
    r = factory_repo
    agents = f"""  ada:
    role: coder
    command: {sys.executable} -c pass
"""
    steps = """      implement: {role: coder, on_success: review}
      review: {role: reviewer, on_success: approve}
      approve: {role: human, on_success: done}
"""
    commit_on_factory(r, {CONFIG: factory_yaml(agents, "", steps)})
    proc = gf(r, "doctor", code=1)
    assert "PROBLEM  role reviewer" in proc.stdout
    found = checks(r)
    assert "no agent plays the role 'reviewer' that default/review needs" in (
        found["role reviewer"]["detail"]
    )
    assert found["role human"]["ok"] is True and found["role human"]["level"] == "note"
    assert "role coder" not in found


def test_a_gate_that_names_a_missing_command_is_named(factory_repo: Path) -> None:
    r = factory_repo
    agents = f"""  ada:
    role: coder
    command: {sys.executable} -c pass
"""
    gates = """  tests:
    command: no-such-test-runner --all
"""
    steps = """      implement: {role: coder, on_success: test}
      test: {gate: tests, on_success: lint}
      lint: {gate: lintr, on_success: done}
"""
    commit_on_factory(r, {CONFIG: factory_yaml(agents, gates, steps)})
    gf(r, "doctor", code=1)
    found = checks(r)
    assert found["gate tests"]["ok"] is False
    assert found["gate tests"]["detail"] == "`no-such-test-runner` not found on PATH"
    assert found["gate of default/lint"]["ok"] is False  # an undeclared gate runs as a command
    assert "`lintr`" in found["gate of default/lint"]["detail"]


def test_a_python_gate_needs_its_module(factory_repo: Path) -> None:
    # The shipped tests gate is `python -m pytest`: a python without pytest fails
    # every task at the gate, so doctor asks that python for the module.
    r = factory_repo
    python = str(Path(sys.executable).parent / "python")
    agents = f"  ada:\n    role: coder\n    command: {python} -c pass\n"
    steps = "      implement: {role: coder, on_success: test}\n      test: {gate: tests}\n"
    for module, ok in (("pytest", True), ("no_such_module_for_tests", False)):
        gates = f"  tests:\n    command: {python} -m {module} -q\n"
        commit_on_factory(r, {CONFIG: factory_yaml(agents, gates, steps)})
        found = checks(r)["gate tests"]
        assert found["ok"] is ok, found
    assert found["detail"] == f"`{python}` has no module 'no_such_module_for_tests'"
    assert found["fix"].startswith(f"{python} -m pip install no_such_module_for_tests")


def test_json_is_a_list_of_checks_with_an_overall_ok(factory_repo: Path) -> None:
    r = factory_repo
    report = gf_json(r, "doctor", code=1)
    assert set(report) == {"ok", "checks"} and report["ok"] is False
    assert report["ok"] == all(c["ok"] for c in report["checks"])
    for check in report["checks"]:
        assert set(check) == {"name", "ok", "level", "detail", "fix"}
        assert check["level"] in ("ok", "problem", "note")
        assert check["ok"] == (check["level"] != "problem")
        if not check["ok"]:
            assert check["fix"], check  # every problem comes with its fix
    assert [c["name"] for c in report["checks"]][:3] == ["git", "base", "factory"]


def test_records_deleted_by_plain_git_are_a_problem_verify_repair_fixes(
    factory_repo: Path,
) -> None:
    r = factory_repo
    event = gf_json(r, "log", "append", "note", "kept")["id"]
    commit_on_factory(r, {}, remove=[event_path(event)], message="stale checkout")
    verify = checks(r)["verify"]
    assert verify["ok"] is False and verify["fix"] == "gitfactory verify --repair"
    gf(r, "verify", "--repair", code=None)
    assert checks(r)["verify"]["ok"] is True


def test_hooks_a_kept_hook_must_stay_executable_and_a_foreign_hookspath_is_a_note(
    factory_repo: Path, tmp_path: Path
) -> None:
    r = factory_repo
    theirs = r / ".git" / "hooks" / "reference-transaction"
    theirs.write_text("#!/bin/sh\nexit 0\n")
    theirs.chmod(0o755)
    gf(r, "hooks", "install")
    hooks = checks(r)["hooks"]
    assert hooks["ok"] and "running reference-transaction.before-gitfactory first" in (
        hooks["detail"]
    )
    kept = theirs.with_name("reference-transaction.before-gitfactory")
    kept.chmod(0o644)  # git would skip it: the user's hook silently stops running
    hooks = checks(r)["hooks"]
    assert hooks["ok"] is False and hooks["fix"] == f"chmod +x {kept}"
    git(r, "config", "core.hooksPath", str(tmp_path / "shared-hooks"))
    hooks = checks(r)["hooks"]
    assert hooks["level"] == "note" and "core.hooksPath is" in hooks["detail"]


def test_no_factory_yet(repo: Path) -> None:
    factory = checks(repo)["factory"]
    assert factory["ok"] is False and factory["fix"] == "gitfactory init"


# -- init --agent ---------------------------------------------------------------------


def test_init_agent_presets_and_commands_write_a_working_agents_section(repo: Path) -> None:
    out = gf_json(repo, "init", "--agent", "claude-code", "--agent",
                  "reviewer/rex=command:./review.sh --strict", "--agent",
                  "command:FOO=1 ./bin/my-agent.sh", "--agent", "qa/quinn=gemini")  # fmt: skip
    assert out["agents"] == ["coder/claude", "reviewer/rex", "coder/my-agent", "qa/quinn"]
    listed = [(a["agent"], a["preset"]) for a in gf_json(repo, "agents")]
    assert listed == [("coder/claude", "claude-code"), ("reviewer/rex", "command"),
                      ("coder/my-agent", "command"), ("qa/quinn", "gemini")]  # fmt: skip
    text = git(repo, "show", f"factory:{CONFIG}")
    assert "agents:\n  claude:\n    role: coder\n    preset: claude-code\n" in text
    assert "    command: ./review.sh --strict\n" in text
    assert "agents: {}" not in text
    # The rest of the commented template is intact, its examples too.
    template = (Path(__file__).parents[2] / "templates" / "factory.yaml").read_text()
    assert text.replace("agents:\n" + text.split("agents:\n", 1)[1].split("#  ada:")[0], "") == (
        template.replace("__NAME__", "project").replace("agents: {}\n", "")
    )
    # init's own doctor names what the new agents still lack (exit 0 all the same).
    problems = {p["name"]: p for p in out["problems"]}
    assert "`./review.sh` is neither in main nor in" in problems["agent reviewer/rex"]["detail"]


def test_init_agent_with_an_unknown_preset_writes_nothing(repo: Path) -> None:
    proc = gf(repo, "init", "--agent", "claude-code", "--agent", "cluade", code=2)
    assert "--agent 'cluade': 'cluade' is not a preset" in proc.stderr
    assert "claude-code, codex, gemini, aider, opencode" in proc.stderr
    assert git(repo, "branch", "--list", "factory") == ""
    proc = gf(repo, "init", "--agent", "codex", "--agent", "coder/codex=gemini", code=2)
    assert "already an agent named 'codex'" in proc.stderr
    assert git(repo, "branch", "--list", "factory") == ""


def test_init_agent_on_an_existing_factory_points_at_config_edit(repo: Path) -> None:
    gf(repo, "init", "--agent", "codex")
    tip = git(repo, "rev-parse", "factory")
    gf(repo, "init", "--agent", "codex")  # what it already has: nothing to do
    proc = gf(repo, "init", "--agent", "aider", code=1)
    assert "does not have coder/aider" in proc.stderr and "gitfactory config edit" in proc.stderr
    assert git(repo, "rev-parse", "factory") == tip


def test_shell_syntax_around_an_agents_program_is_read_as_sh_reads_it(repo: Path) -> None:
    commit_script(repo, "coder.sh", "#!/bin/sh\necho coded\n", "coder script")
    gf(repo, "init", "--name", "t", "--agent", "command:./coder.sh; echo done",
       "--agent", "reviewer/rex=command:(./coder.sh)")
    found = checks(repo)
    assert found["agent coder/coder"]["ok"] is True  # `./coder.sh;` is ./coder.sh
    assert found["agent reviewer/rex"]["ok"] is True  # a subshell: sh decides, not checked
