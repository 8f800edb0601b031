"""gitfactory demo (filled in below)."""

from __future__ import annotations

COMMANDS: list[object] = []
