"""Rules the code keeps, read from the code itself: every recorded name is written in keys.py."""

import ast
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
            if position is None or len(node.args) <= position:
                continue
            found += [
                f"{path.relative_to(ROOT)}:{name.lineno} {ast.unparse(name)}"
                for name in _literal_names(node.args[position])
            ]
    assert found == [], "recorded names written outside keys.py:\n" + "\n".join(found)
