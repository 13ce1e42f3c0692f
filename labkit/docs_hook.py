"""The docs site's hook (mkdocs.yml): each `<!-- labkit:NAME -->` in a page becomes its part of the
reference (labkit.reference), and `<!-- labkit:include FILE -->` a file of the repository
(ARCHITECTURE.md, CONTRIBUTING.md). Imports are absolute: mkdocs loads a hook as a file."""

import re

from labkit import cli, reference
from labkit.paths import project_root

PARTS = {
    "parameters": reference.parameters_markdown,
    "commands": lambda: reference.commands_markdown(cli.parser()),
    "recorded": reference.recorded_markdown,
}


def on_page_markdown(markdown: str, **_) -> str:
    def fill(match: re.Match) -> str:
        name, _, argument = match.group(1).partition(" ")
        if name == "include":
            return (project_root() / argument.strip()).read_text(encoding="utf-8")
        return PARTS[name]()

    return re.sub(r"<!-- labkit:([a-z]+(?: [^>]*?)?) -->", fill, markdown)
