"""Where the files shipped beside the code live: ``protocol/`` and ``templates/``.

An installed wheel carries them inside the package (``gitfactory/_data``); a source
checkout or an editable install reads them from the top of the repository.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


@cache
def data_root(top: str) -> Path:
    for candidate in (_PACKAGE / "_data" / top, _PACKAGE.parent / top):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"gitfactory is installed without its {top}/ directory")


def protocol_file(*parts: str) -> Path:
    return data_root("protocol").joinpath(*parts)


def template_file(*parts: str) -> Path:
    return data_root("templates").joinpath(*parts)
