"""Params files -> jobs. Every params file (or bare ablation name) is resolved and checked before
anything runs: field defaults <- the notebook's parameters cell <- the file (and its bases) <-
`--set` (or a grid point); unknown names, wrong types, out-of-range values, a missing data folder
or weights file are all reported at once, naming their file. Identical jobs are one job."""

from __future__ import annotations

import ast
import dataclasses
import itertools
import typing
from pathlib import Path

import nbformat

from .config import (
    Config,
    ParamError,
    closest,
    outside_the_lab,
    parse_override,
    read_params_file,
    schema_for,
    yaml_value,
)
from .jobs import Job
from .paths import project_root


def notebook_path(ablation: str) -> Path:
    return project_root() / "notebooks" / f"{ablation}.ipynb"


def notebook_defaults(notebook: Path, schema) -> dict:
    """The values of a notebook's parameters cell (read with Python's own parser: papermill's
    line parser skips lines whose comments hold quotes), checked against its schema."""
    cells = [c for c in nbformat.read(notebook, as_version=4).cells if "parameters" in c.metadata.get("tags", [])]
    if not cells:
        raise ParamError(f"{notebook}: no cell is tagged 'parameters'")
    values = {}
    for node in ast.parse(cells[0].source).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            try:
                values[node.targets[0].id] = ast.literal_eval(node.value)
            except ValueError:
                raise ParamError(f"{notebook}: parameter '{node.targets[0].id}' is not a plain value") from None
    clean, problems = schema.coerce(values, str(notebook))
    if problems:
        raise ParamError("\n".join(problems))
    return clean


def _resolve(spec: str, extra: dict, given: str = "--set") -> tuple[str, str, Path, Config, str]:
    """(label, source, notebook, config, params file) of one spec: a params file, or an ablation name."""
    is_file = spec.endswith((".yaml", ".yml")) or Path(spec).exists()  # a folder is refused as a params file
    raw = read_params_file(spec) if is_file else {"ablation": spec}
    label, source = (Path(spec).stem, spec) if is_file else (spec, f"ablation '{spec}'")
    if "ablation" not in raw:
        raise ParamError(f"{source}: names no ablation; add `ablation: NAME` (its notebook is notebooks/NAME.ipynb)")
    schema = schema_for(str(raw["ablation"]), source)
    notebook = notebook_path(raw["ablation"])
    if not notebook.is_file():
        outside_the_lab()
        raise ParamError(f"{source}: ablation '{raw['ablation']}' has no notebook at {notebook}")
    values, problems = schema.coerce(raw, source)
    overrides, more = schema.coerce(extra, given)
    try:  # the values that are well typed checked too: every problem at once, each named by its source
        cfg = schema.from_values(
            {**notebook_defaults(notebook, schema), **values, **overrides}, source, dict.fromkeys(overrides, given)
        )
    except ParamError as exc:
        problems.append(str(exc))
    if problems or more:
        raise ParamError("\n".join(problems + more))
    return label, source, notebook, cfg, spec if is_file else ""


def plan(
    specs: list[str | Path], seeds: int | None = None, overrides: list[str] = (), grid: dict[str, list] | None = None
) -> list[Job]:
    """The jobs for these params files (or ablation names), each at every point of the grid
    ({name: values}) and for each seed, or one ParamError listing every problem found. A job
    identical to an earlier one (same parameters) is left out."""
    problems, jobs, extra = [], [], {}
    for text in overrides:
        try:
            name, value = parse_override(text)
            extra[name] = value
        except ParamError as exc:
            problems.append(str(exc))
    problems += [f"{name} is given by --set and by --grid: keep one" for name in grid or {} if name in extra]
    for spec in map(str, specs):
        for point in points(grid or {}):
            try:
                label, source, notebook, cfg, params_file = _resolve(
                    spec, {**extra, **point}, "--grid" if grid else "--set"
                )
            except ParamError as exc:
                problems.append(str(exc))
                break  # the other points of this file would repeat its problem
            problems += [f"{source}: {p}" for p in cfg.check_inputs()]
            for seed in [cfg.seed + i for i in range(seeds)] if seeds else [cfg.seed]:
                jobs.append(
                    Job(
                        point_label(label, point),
                        source,
                        notebook,
                        dataclasses.replace(cfg, seed=seed),
                        params_file,
                        factors=point,
                    )
                )
    if problems:
        raise ParamError("\n".join(dict.fromkeys(problems)))
    if not jobs:
        raise ParamError("no params files given")
    unique = {}
    for job in jobs:
        unique.setdefault(job.cfg.run_key(), job)
    return list(unique.values())


def parse_grid(texts: list[str]) -> dict[str, list]:
    """`NAME=V1,V2,...` each (values read as YAML: 1e-4 is a number) -> {name: values}."""
    grid, problems = {}, []
    for text in texts:
        name, _, values = text.partition("=")
        name = name.strip()
        parsed = [yaml_value(v, f"--grid {text}") for v in values.split(",") if v.strip()]
        if not name or not parsed:
            problems.append(f"--grid {text!r}: write NAME=V1,V2,... (e.g. --grid lambda_local=10,25,50)")
        elif name in grid:
            problems.append(f"--grid {name} is given twice; put all its values in one --grid")
        elif len(set(map(str, parsed))) < len(parsed):
            problems.append(f"--grid {text!r}: a value is given twice")
        else:
            grid[name] = parsed
    if problems:
        raise ParamError("\n".join(problems))
    return grid


def parse_ranges(texts: list[str], schema) -> dict[str, tuple]:
    """`NAME=LOW:HIGH[:log]` each -> {name: (low, high, log)}, for numeric fields of the schema."""
    ranges, problems = {}, []
    hints = typing.get_type_hints(schema)
    for text in texts:
        name, _, spec = text.partition("=")
        name, parts = name.strip(), spec.split(":")
        if name not in hints:
            problems.append(f"--range {name}: unknown parameter{closest(name, schema.names())}")
            continue
        if hints[name] not in (int, float):
            problems.append(
                f"--range {name}: a range needs a number parameter ({name} is {hints[name].__name__}); "
                "use --grid for its values"
            )
            continue
        try:
            low, high = (hints[name](yaml_value(p, f"--range {text}")) for p in parts[:2])
            log = parts[2:] == ["log"]
            if len(parts) not in (2, 3) or (len(parts) == 3 and not log) or not low < high or (log and low <= 0):
                raise ValueError
        except (ValueError, TypeError):
            problems.append(
                f"--range {text!r}: write NAME=LOW:HIGH or NAME=LOW:HIGH:log with LOW < HIGH (and "
                "LOW > 0 for log), e.g. --range lr=1e-5:1e-3:log"
            )
            continue
        ranges[name] = (low, high, log)
    if problems:
        raise ParamError("\n".join(problems))
    return ranges


def plan_search(
    specs: list[str], ranges: list[str], seeds: int | None, overrides: list[str]
) -> tuple[list[Job], dict[str, tuple]]:
    """The jobs a search starts from and its ranges ({name: (low, high, log)}), every file and
    range checked, the ranges' ends against the schema's bounds too."""
    if not ranges:
        raise ParamError(
            "--sample N needs what to search: one --range NAME=LOW:HIGH[:log] or more, e.g. --range lr=1e-5:1e-3:log"
        )
    base = plan(specs, seeds=seeds, overrides=overrides)
    parsed = parse_ranges(ranges, type(base[0].cfg))
    for name, (low, high, _) in parsed.items():
        plan(specs, seeds=1, overrides=overrides, grid={name: [low, high]})
    return base, parsed


def points(grid: dict[str, list]) -> list[dict]:
    """Every combination of the grid's values, in the order given ([{}] without a grid)."""
    return [dict(zip(grid, values)) for values in itertools.product(*grid.values())]


def point_label(stem: str, factors: dict) -> str:
    """The run name's stem of a sweep point: `local-lambda_local=10-lr=0.0001`."""
    return stem + "".join(
        f"-{name}={value:.4g}" if isinstance(value, float) else f"-{name}={value}" for name, value in factors.items()
    )
