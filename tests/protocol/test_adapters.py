"""The conformance runner (protocol/conformance/run) with two implementations: this one,
through its adapter of CLI calls, and a minimal one written with git and python's json."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2] / "protocol" / "conformance"


def run(adapter: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(ROOT / "run"), str(ROOT / "adapters" / adapter)],
                          capture_output=True, text=True, env={**os.environ, **(env or {})},
                          check=False)


def fixtures() -> list[str]:
    return sorted(p.name for p in ROOT.iterdir() if (p / "expected.json").is_file())


def test_gitfactory_passes_every_fixture_through_its_adapter() -> None:
    proc = run("gitfactory", {"GITFACTORY": f"{sys.executable} -m gitfactory"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    passed = [line.split()[1] for line in proc.stdout.splitlines() if line.startswith("ok")]
    assert passed == [*fixtures(), "writes"]


def test_a_minimal_second_implementation_passes_the_read_side_and_writes_events() -> None:
    proc = run("minimal.sh")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "reads log, invalid, tasks; kinds event; writes event" in proc.stdout
    passed = [line.split()[1] for line in proc.stdout.splitlines() if line.startswith("ok")]
    assert passed == [*fixtures(), "writes"]


def test_the_runner_fails_an_adapter_that_folds_wrong(tmp_path: Path) -> None:
    # The minimal adapter with one rule broken: the lower seq does not come first.
    broken = tmp_path / "broken.sh"
    text = (ROOT / "adapters" / "minimal.sh").read_text()
    assert "key=lambda e: (seq(e), e[\"id\"])" in text
    broken.write_text(text.replace("key=lambda e: (seq(e), e[\"id\"])",
                                   "key=lambda e: e[\"id\"]"))
    broken.chmod(0o755)
    proc = subprocess.run([str(ROOT / "run"), str(broken)], capture_output=True, text=True,
                          check=False)
    assert proc.returncode == 1
    assert any(line.startswith("FAIL") and "tasks" in line for line in proc.stdout.splitlines())
