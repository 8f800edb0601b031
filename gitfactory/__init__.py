"""gitfactory: the coordination base for software factories, built on plain git.

Kept import-free on purpose: console scripts import this package first, and
``gitfactory --version`` must answer without loading pygit2 or click.
"""

__version__ = "0.1.0"
