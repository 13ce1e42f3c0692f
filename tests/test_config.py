import dataclasses

import papermill
import pytest

from labkit.config import ParamError, SketchConfig, from_dict, parse_override, read_params_file, schema_for
from conftest import ROOT


def test_unknown_name_is_refused_with_closest_suggestion():
    with pytest.raises(ParamError, match=r"unknown parameter 'lamda_l1' \(did you mean 'lambda_l1'\?\)"):
        from_dict({"lamda_l1": 10.0})


def test_wrong_type_is_refused():
    with pytest.raises(ParamError, match="parameter 'n_epochs' must be int, got str 'ten'"):
        from_dict({"n_epochs": "ten"})
    with pytest.raises(ParamError, match="must be int, got bool"):
        from_dict({"batch_size": True})


def test_yaml_scientific_notation_is_a_float(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("lr: 2e-4\nn_epochs: 3\n")
    params = read_params_file(path)
    assert params == {"lr": 2e-4, "n_epochs": 3}
    assert isinstance(from_dict(params).lr, float)


def test_bad_values_are_refused():
    with pytest.raises(ParamError, match="image_size=48 must be a power of two"):
        SketchConfig(image_size=48)
    with pytest.raises(ParamError, match="fid_backbone='imagenet' is not one of"):
        SketchConfig(fid_backbone="imagenet")


def test_params_file_errors_name_the_file(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("n_epoch: 3\n")
    with pytest.raises(ParamError, match=r"bad.yaml: unknown parameter 'n_epoch' \(did you mean 'n_epochs'\?\)"):
        read_params_file(path)
    path.write_text("a: [unclosed\n")
    with pytest.raises(ParamError, match="bad.yaml: not valid YAML"):
        read_params_file(path)


def test_override_values_are_read_as_yaml():
    assert parse_override("n_epochs=3") == ("n_epochs", 3)
    assert parse_override("data_root=") == ("data_root", "")
    with pytest.raises(ParamError):
        parse_override("n_epochs")


@pytest.mark.parametrize("notebook", sorted(p.stem for p in (ROOT / "notebooks").glob("*.ipynb") if p.stem != "lablog"))
def test_notebook_parameters_match_the_schema(notebook):
    """Each notebook's parameters cell declares every field of its schema, with the schema's
    default or the value its ablation's params file gives (so it runs as that ablation)."""
    declared = papermill.inspect_notebook(str(ROOT / "notebooks" / f"{notebook}.ipynb"))
    assert eval(declared["ablation"]["default"]) == notebook
    schema = schema_for(notebook)
    defaults = {f.name: f.default for f in dataclasses.fields(schema)}
    params_file = ROOT / "params" / f"{notebook}.yaml"
    ablation = read_params_file(params_file) if params_file.is_file() else {}
    assert set(declared) == set(defaults)
    for name, info in declared.items():
        assert eval(info["default"]) in (defaults[name], ablation.get(name, defaults[name])), name


def test_every_params_file_is_valid():
    for path in sorted((ROOT / "params").glob("*.yaml")):
        params = read_params_file(path)
        from_dict(params, source=str(path), schema=schema_for(params["ablation"]))
        assert (ROOT / "notebooks" / f"{params['ablation']}.ipynb").is_file()
