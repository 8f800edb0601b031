"""The prompt an agent starts with, rendered from ``templates/prompts/step.md``.

Placeholders are ``{{name}}``; every value is inserted as plain text. Task titles,
bodies and messages come from people and other agents: they are data in the prompt
and never reach a shell (the agent's command line comes from factory.yaml only).
"""

from __future__ import annotations

import re

from gitfactory.resources import template_file

_PLACEHOLDER = re.compile(r"\{\{([a-z_]+)\}\}")


def render(values: dict[str, str], template: str = "step.md") -> str:
    text = template_file("prompts", template).read_text("utf-8")
    return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), text)
