"""Scenario files: the small user journeys under ``.factory/scenarios/`` that QA agents play.

Each ``<name>.md`` on the factory branch is one journey in plain markdown: a title,
what the user wants, the steps, what the user must see. A scenario gate
(:mod:`gitfactory.qa.gates`) has an agent of its role play each one it picks, alone, and
judge it. The files change in place like the living documents (one
:class:`~gitfactory.store.folder.Folder` logic for both), so ``git log -p factory --
.factory/scenarios`` is their whole history, and they are data, never code: what runs
is decided by factory.yaml only (DESIGN I5).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from gitfactory.errors import UsageError
from gitfactory.store.folder import Folder
from gitfactory.store.records import FACTORY_DIR

if TYPE_CHECKING:
    from gitfactory.store.branch import Commit
    from gitfactory.store.factory import Factory

SCENARIOS_DIR = f"{FACTORY_DIR}/scenarios"
MAX_BYTES = 64 * 1024  # one small journey, played by an agent in one prompt


class ScenarioNotFoundError(UsageError):
    """No scenario of that name on the factory branch."""


FOLDER = Folder(
    SCENARIOS_DIR, noun="scenario", command="gitfactory scenario", subject="scenarios",
    name=re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$"),
    name_hint="a scenario name is letters, digits, '.', '_' and '-', starting with a "
    "letter or digit, at most 100 characters (e.g. login or checkout-guest); never a path",
    max_bytes=MAX_BYTES,
    size_hint="a scenario is one small user journey that an agent plays in one go: "
    "split a long one into several",
    missing=ScenarioNotFoundError,
)  # fmt: skip

_HEADING = re.compile(r"^ {0,3}#{1,6}[ \t]+(.+?)(?:[ \t]+#+)?[ \t]*$", re.MULTILINE)


@dataclass(frozen=True)
class ScenarioFile:
    name: str  # without .md
    path: str
    size: int
    title: str  # the first markdown heading, "" if none

    def to_json(self) -> dict[str, object]:
        return {"name": self.name, "path": self.path, "size": self.size, "title": self.title}


def title_of(data: bytes) -> str:
    """The text of the first markdown heading in ``data``, or ""."""
    found = _HEADING.search(data.decode("utf-8", "replace"))
    return found.group(1).strip() if found else ""


def check_name(name: str) -> str:
    """The scenario name in ``name`` (a trailing ``.md`` is dropped), or a usage error."""
    return FOLDER.check_name(name)


def path_of(name: str) -> str:
    return FOLDER.path_of(name)


def listing(factory: Factory) -> list[ScenarioFile]:
    """The scenarios at the branch tip, by name."""
    return [
        ScenarioFile(name, path_of(name), len(data), title_of(data))
        for name, data in FOLDER.at_tip(factory).items()
    ]


def read(factory: Factory, name: str) -> bytes:
    """A scenario's bytes as committed."""
    return FOLDER.read(factory, name)


def current(factory: Factory, name: str) -> bytes | None:
    """A scenario's bytes as committed, or None if there is none of that name."""
    return FOLDER.at_tip(factory).get(FOLDER.check_name(name))


def write(factory: Factory, name: str, data: bytes, actor: str) -> Commit | None:
    """Commit ``data`` as the scenario ``name`` (created if new); None if unchanged."""
    wanted = FOLDER.check_name(name)
    if not data.strip():
        raise UsageError(
            f"{wanted}: the scenario is empty; nothing was committed",
            hint=f"write the journey (`gitfactory scenario edit {wanted}` opens a template), "
            f"or remove it with `gitfactory scenario rm {wanted}`",
        )
    return FOLDER.write(factory, wanted, data, actor)


def remove(factory: Factory, name: str, actor: str) -> Commit:
    """Delete the scenario ``name`` in one commit (git keeps its history)."""
    return FOLDER.remove(factory, name, actor)


def template(name: str) -> str:
    """What a new scenario starts as in the editor."""
    return (
        f"# {name.replace('-', ' ').replace('_', ' ').capitalize()}\n\n"
        "Goal: what the user wants to get done, in one sentence.\n\n"
        "## Steps\n\n"
        "1. The first thing the user does (a command to run, a page to open).\n"
        "2. What they do next.\n\n"
        "## The user must see\n\n"
        "- What tells the user it worked (an output, a message, a file).\n"
    )
