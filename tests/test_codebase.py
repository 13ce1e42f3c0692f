"""Rules the code keeps, read from the code itself: recorded names in keys.py, the floor table,
no import cycles, short functions, and the docs' ablation table as the terms make it."""

import ast
import re
from pathlib import Path

from conftest import ROOT

PACKAGE = ROOT / "labkit"
# what records a name in MLflow, and which of its arguments is the name (a dict: its keys)
RECORDING = {
    **dict.fromkeys(["log_metrics", "log_metric", "set_tags", "set_tag", "log_param", "log_params"], 0),
    **dict.fromkeys(["log_view", "log_text", "log_image", "log_image_file", "log_file", "log_arrays"], 1),
    **dict.fromkeys(["log_artifact", "log_figure", "log_dict", "log_table", "set_experiment_tag"], 1),
}


def _modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def _literal_names(node: ast.expr) -> list[ast.expr]:
    """The string literals (and f-strings) an argument holds as a name: itself, or a dict's keys."""
    if isinstance(node, ast.Dict):
        return [k for k in node.keys if k is not None and isinstance(k, ast.Constant | ast.JoinedStr)]
    literal = isinstance(node, ast.JoinedStr) or (isinstance(node, ast.Constant) and isinstance(node.value, str))
    return [node] if literal else []


def test_every_recorded_name_is_written_in_keys():
    """A metric, tag, image key or artifact path written as a literal outside keys.py is a name
    another module cannot find (and that drifts from what the docs and compare read)."""
    found = []
    for path in _modules():
        if path.name == "keys.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                continue
            position = RECORDING.get(node.func.attr)
            if position is None:
                continue
            if node.args and "run_id" in ast.unparse(node.args[0]):  # MlflowClient's calls name the run first
                position += 1
            if len(node.args) <= position:
                continue
            found += [
                f"{path.relative_to(ROOT)}:{name.lineno} {ast.unparse(name)}"
                for name in _literal_names(node.args[position])
            ]
    assert found == [], "recorded names written outside keys.py:\n" + "\n".join(found)


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, modules: set[str]) -> set[str]:
    """The labkit modules a module imports, at its top or inside a function."""
    name, found = _module_name(path), set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(parent + ([node.module] if node.module else []))
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
        else:
            continue
        for target in targets:
            while target not in modules and "." in target:
                target = target.rpartition(".")[0]
            if target in modules and target != name:
                found.add(target)
    return found


def _floors() -> dict[str, int]:
    """Each module's floor, from ARCHITECTURE.md's table (a path names a module, a folder every
    module in it that no path names)."""
    rows = re.findall(r"^\| (\d) [^|]*\| ([^|]*) \|", (ROOT / "ARCHITECTURE.md").read_text(), re.MULTILINE)
    named = {entry: int(floor) for floor, cell in rows for entry in re.findall(r"`([\w/]+(?:\.py|/))`", cell)}
    floors = {}
    for path in _modules():
        relative = path.relative_to(PACKAGE).as_posix()
        folders = [f for f in named if f.endswith("/") and relative.startswith(f)]
        entry = relative if relative in named else max(folders, key=len, default=None)
        if entry is not None:
            floors[_module_name(path)] = named[entry]
    return floors


def test_every_module_has_a_floor_and_imports_none_above_it():
    floors = _floors()
    unplaced = [_module_name(p) for p in _modules() if _module_name(p) not in floors]
    assert unplaced == [], f"modules ARCHITECTURE.md's floor table does not place: {unplaced}"
    upward = [
        f"{name} (floor {floors[name]}) imports {target} (floor {floors[target]})"
        for path in _modules()
        for name in [_module_name(path)]
        for target in sorted(_imports(path, set(floors)))
        if floors[target] > floors[name]
    ]
    assert upward == [], "imports up a floor:\n" + "\n".join(upward)


def test_no_import_cycles():
    modules = {_module_name(p) for p in _modules()}
    graph = {_module_name(p): _imports(p, modules) for p in _modules()}
    cycles = []

    def visit(name: str, path: list[str], seen: set[str]) -> None:
        for target in sorted(graph[name]):
            if target == path[0]:
                cycles.append(" -> ".join(path + [target]))
            elif target not in seen and target > path[0]:  # each cycle once, from its smallest module
                seen.add(target)
                visit(target, path + [target], seen)

    for name in sorted(graph):
        visit(name, [name], {name})
    assert cycles == [], "import cycles:\n" + "\n".join(cycles)


def test_the_docs_ablation_table_is_what_the_terms_make():
    """Each row's objective is the loss formula of its params file; every face ablation has a row."""
    from labkit.config import SketchConfig
    from labkit.plan import plan
    from labkit.terms import loss_formula

    readme = (ROOT / "docs" / "methods" / "ablations.md").read_text()
    table = readme[readme.index("| params file | generator objective | trained on |") :].split("\n\n")[0]
    rows = {m[0]: m[1] for m in re.findall(r"^\| `(\w+)` \| ([^|]+?) \|", table, re.MULTILINE)}
    made = {
        name: loss_formula(plan([str(ROOT / "params" / f"{name}.yaml")], overrides=["fid_backbone=random-init"])[0].cfg)
        for name in rows
    }
    assert rows == made
    assert set(SketchConfig.ablations()) <= set(rows)


def test_no_function_is_longer_than_60_lines():
    """A function that does not fit on a screen does several things: each gets a name."""
    long = [
        f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({node.end_lineno - node.lineno + 1} lines)"
        for path in _modules()
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.end_lineno - node.lineno + 1 > 60
    ]
    assert long == [], "functions over 60 lines:\n" + "\n".join(long)
