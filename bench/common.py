"""What the benchmark scripts share: a pinned git environment and CLI timing."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

GIT_ENV = {
    **os.environ,
    "GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@example.com",
    "GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "bench@example.com",
    "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull,
}  # fmt: skip


def cli() -> list[str]:
    """The installed `gitfactory` script beside this Python, else `python -m gitfactory`."""
    script = Path(sys.executable).with_name("gitfactory")
    return [str(script)] if script.exists() else [sys.executable, "-m", "gitfactory"]


def median_ms(cmd: list[str], cwd: Path, runs: int = 11) -> float:
    """Median wall time of running ``cmd`` in ``cwd``, in milliseconds."""
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(cmd, cwd=cwd, check=True, capture_output=True, env=GIT_ENV)
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)
