"""The documentation: the reference pages hold everything the code defines, the README stays
short and its links land on pages that exist. (`make test` builds the site with --strict first.)"""

import argparse
import dataclasses
import re

from conftest import ROOT

from labkit import cli, keys, reference
from labkit.config import SCHEMAS


def test_the_reference_pages_hold_every_parameter_command_and_recorded_name():
    parameters, commands, recorded = (
        reference.parameters_markdown(),
        reference.commands_markdown(cli.parser()),
        reference.recorded_markdown(),
    )
    for schema in SCHEMAS:
        for field in dataclasses.fields(schema):
            assert f"| `{field.name}` |" in parameters, field.name
    sections = dict(re.findall(r"## `([^`]+)`\n(.*?)(?=\n## `|\Z)", commands, re.DOTALL))
    for name, command in reference._walk(cli.parser(), "labkit"):
        assert name in sections, name
        for action in command._actions:
            for option in action.option_strings if action.help != argparse.SUPPRESS else ():  # (an old spelling)
                assert option in sections[name], (name, option)
    constants = [v for k, v in vars(keys).items() if k.isupper() and isinstance(v, str)]
    missing = [v for v in constants if f"`{v}`" not in recorded]
    assert missing == []


def test_labkit_params_lists_what_an_ablation_takes_with_its_notebooks_values(capsys):
    assert cli.main(["params", "glad"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"lambda_glad\s+100\.0 \(schema: 0\.0\)\s+\[float, ≥ 0\]", out)
    assert "n_epochs" in out and "epochs at the initial learning rate" in out
    assert cli.main(["params", "gald"]) == 2
    assert "did you mean 'glad'" in capsys.readouterr().err


def test_the_readme_is_short_and_its_links_land():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 150
    links = re.findall(r"\]\(([^)#]+)\)", readme)
    assert links and [link for link in links if not (ROOT / link).is_file()] == []
    nav = (ROOT / "mkdocs.yml").read_text()
    pages = {p.relative_to(ROOT / "docs").as_posix() for p in (ROOT / "docs").rglob("*.md")}
    assert {page for page in pages if page not in nav} == set()  # every page is in the site's menu
