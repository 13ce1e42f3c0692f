"""The reference pages, written from the code: every parameter from the schemas (labkit.config),
every command from the CLI's parser, every recorded name from labkit.keys. `labkit params` prints
the first; the docs site's hook (labkit.docs_hook) puts each where a page says
`<!-- labkit:NAME -->`, so the pages cannot drift from what the lab does."""

from __future__ import annotations

import argparse
import dataclasses
import io
import re
import tokenize
from pathlib import Path

from . import keys


def _cell(text) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _type_name(field) -> str:
    return field.type if isinstance(field.type, str) else field.type.__name__


def _allowed(field, markdown: bool = True) -> str:
    rule = field.metadata
    if rule.get("choices"):
        return (" \\| " if markdown else " | ").join(f"`{c}`" if markdown else str(c) for c in rule["choices"])
    if rule.get("at_least") is not None:
        return f"≥ {rule['at_least']}"
    if rule.get("above") is not None:
        return f"> {rule['above']}"
    return "not empty" if rule.get("required") else ""


def parameter_rows(
    schema, notebook_values: dict | None = None, markdown: bool = True
) -> list[tuple[str, str, str, str, str]]:
    """(name, default, type, allowed, help) per parameter of a schema; where a notebook's
    parameters cell sets one, its default is the notebook's (the schema's is said beside it)."""
    rows = []
    for field in dataclasses.fields(schema):
        default = repr(field.default)
        if notebook_values and field.name in notebook_values and notebook_values[field.name] != field.default:
            default = f"{notebook_values[field.name]!r} (schema: {default})"
        help_ = field.metadata.get("help", "")
        if not field.metadata.get("computes", True):
            help_ = "; ".join(
                filter(None, (help_, "where or how fast the run computes, not what (not in its identity)"))
            )
        rows.append((field.name, default, _type_name(field), _allowed(field, markdown), help_))
    return rows


def parameters_text(ablation: str) -> str:
    """What `labkit params ABLATION` prints: each parameter with its default there, type, bounds,
    help; those its objective or variant does not read as it stands come last, apart."""
    from .config import schema_for
    from .plan import notebook_defaults, notebook_path

    schema = schema_for(ablation)
    own = notebook_defaults(notebook_path(ablation), schema)
    idle = schema.from_values(own, f"notebooks/{ablation}.ipynb").not_applying()
    rows = parameter_rows(schema, own, markdown=False)
    width = max(len(name) for name, *_ in rows)
    lines = [f"{ablation} ({schema.lab}): set any of these in a params file, with --set NAME=VALUE or papermill -p"]
    for title, group in (
        ("", [r for r in rows if r[0] not in idle]),
        (
            "not read by this ablation as it stands (another loss term's, another variant's):",
            [r for r in rows if r[0] in idle],
        ),
    ):
        lines += ["", *([title] if title and group else [])]
        for name, default, type_name, allowed, help_ in group:
            lines.append(f"  {name:<{width}}  {default}  [{type_name}{', ' + allowed if allowed else ''}]")
            lines += [f"  {'':<{width}}  {help_.strip()}"] if help_ else []
    return "\n".join(lines).rstrip()


def parameters_markdown() -> str:
    """Per schema, a table of every parameter, then which notebook sets what."""
    from .config import SCHEMAS
    from .plan import notebook_defaults, notebook_path

    out = []
    for schema in SCHEMAS:
        out += [f"## {schema.__name__}: {schema.lab}", "", "| name | default | type | allowed | what it does |"]
        out.append("|---|---|---|---|---|")
        out += [f"| `{n}` | `{_cell(d)}` | {t} | {a} | {_cell(h)} |" for n, d, t, a, h in parameter_rows(schema)]
        out += ["", "What each notebook's `parameters` cell sets (on top of the defaults above):", ""]
        for ablation in schema.ablations():
            own = notebook_defaults(notebook_path(ablation), schema)
            shown = ", ".join(f"`{k} = {v!r}`" for k, v in own.items() if k != "ablation") or "nothing else"
            out.append(f"- `{ablation}`: {shown}")
        out.append("")
    return "\n".join(out)


def _walk(parser: argparse.ArgumentParser, name: str):
    yield name, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub_name, sub in action.choices.items():
                yield from _walk(sub, f"{name} {sub_name}")


def commands_markdown(parser: argparse.ArgumentParser) -> str:
    """Every command of `labkit` (its parser), its usage and each argument with its help and default."""
    out = []
    for name, command in _walk(parser, "labkit"):
        formatter = command._get_formatter()
        usage = " ".join(command.format_usage().split())[len("usage: ") :]
        out += [f"## `{name}`", "", command.description or "", ""]
        out += ["```", usage, "```", "", "| argument | what it does |", "|---|---|"]
        for action in command._actions:
            if isinstance(action, argparse._SubParsersAction):
                for choice in action._choices_actions:
                    out.append(f"| `{choice.dest}` | {_cell(choice.help)} |")
                continue
            if action.help == argparse.SUPPRESS:
                continue
            label = ", ".join(action.option_strings) or action.dest
            if action.metavar and action.option_strings:
                label += f" {action.metavar}"
            out.append(f"| `{label}` | {_cell(formatter._expand_help(action) if action.help else '')} |")
        out.append("")
    return "\n".join(out)


def recorded_markdown() -> str:
    """Every name in labkit.keys, grouped by its section comment, with the comment that explains it."""
    source = Path(keys.__file__).read_text(encoding="utf-8")
    comments = {
        tok.start[0]: tok.string.lstrip("# ").strip()
        for tok in tokenize.generate_tokens(io.StringIO(source).readline)
        if tok.type == tokenize.COMMENT
    }
    out, section = [], None
    for number, line in enumerate(source.splitlines(), 1):
        heading = re.match(r"# --- (.*)", line)
        if heading:
            section = heading.group(1)
            out += [
                "",
                f"## {section[0].upper()}{section[1:]}",
                "",
                "| constant | name | what it is |",
                "|---|---|---|",
            ]
            continue
        assigned = re.match(r"([A-Z][A-Z0-9_, ]*) = (.*)", line)
        if not (section and assigned):
            continue
        names = [n.strip() for n in assigned.group(1).split(",")]
        for constant in names:
            value = getattr(keys, constant, None)
            if isinstance(value, str):
                out.append(f"| `{constant}` | `{_cell(value)}` | {_cell(comments.get(number, ''))} |")
    return "\n".join(out).lstrip() + "\n"
