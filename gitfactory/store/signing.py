"""Commit signatures (git's ssh signing): who signed a commit, among keys we trust.

Used for mail on the factory's own branches (trust.signers, SPEC §13) and for what
other factories deliver (peers.<name>.signers, SPEC §20). Git runs with every program
it could be configured to run pinned: the repository's configuration is writable by
agents, and a signature check must not become a way to run something.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gitfactory.store.factory import Factory

_GOOD = re.compile(r'Good "git" signature for (\S+) with')


def safe_options() -> list[str] | None:
    """``-c`` options that leave git nothing of its configuration to run but
    ssh-keygen; None when there is no ssh-keygen (nothing can be verified)."""
    keygen = shutil.which("ssh-keygen")
    if keygen is None:
        return None
    return ["-c", "core.hooksPath=/dev/null", "-c", "core.fsmonitor=false",
            "-c", f"gpg.ssh.program={keygen}", "-c", "gpg.program=false",
            "-c", "gpg.x509.program=false", "-c", "gpg.ssh.revocationFile=/dev/null"]  # fmt: skip


def signer(factory: Factory, commit: str, keys: dict[str, tuple[str, ...]]) -> str | None:
    """The principal (a key of ``keys``) one of whose public keys signed ``commit``,
    or None: unsigned, signed by another key, or no ssh-keygen to check with."""
    from gitfactory.store.git import main_top, run_git

    safe = safe_options()
    if not keys or safe is None:
        return None
    fd, allowed = tempfile.mkstemp(prefix="gitfactory-signers-")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            for who, lines in keys.items():
                fh.writelines(f"{who} {key}\n" for key in lines)
        proc = run_git([*safe, "-c", f"gpg.ssh.allowedSignersFile={allowed}", "verify-commit",
                        commit], main_top(factory.paths), check=False)  # fmt: skip
    finally:
        with contextlib.suppress(OSError):
            os.unlink(allowed)
    good = _GOOD.search(proc.stderr.decode("utf-8", "replace"))
    if proc.returncode != 0 or good is None or good.group(1) not in keys:
        return None
    return good.group(1)
