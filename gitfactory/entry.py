"""Console-script entry point: answers ``--version`` before importing anything heavy."""

from __future__ import annotations

import sys


def main() -> None:
    if sys.argv[1:] == ["--version"]:
        from gitfactory import __version__

        sys.stdout.write(f"gitfactory {__version__}\n")
        return
    from gitfactory.cli import main as cli_main

    cli_main()
