import shutil
import threading
import time

import pytest
import yaml
from conftest import ROOT

from labkit import plan
from labkit.config import (
    ParamError,
    SketchConfig,
    StyleConfig,
    all_ablations,
    from_namespace,
    parse_override,
    read_params_file,
    schema_for,
)
from labkit.plan import notebook_defaults


def test_unknown_name_is_refused_with_closest_suggestion():
    with pytest.raises(ParamError, match=r"unknown parameter 'lamda_l1' \(did you mean 'lambda_l1'\?\)"):
        SketchConfig.from_values({"lamda_l1": 10.0})


def test_wrong_type_is_refused():
    with pytest.raises(ParamError, match="parameter 'n_epochs' must be int, got str 'ten'"):
        SketchConfig.from_values({"n_epochs": "ten"})
    with pytest.raises(ParamError, match="must be int, got bool"):
        SketchConfig.from_values({"batch_size": True})


def test_yaml_scientific_notation_is_a_float(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("lr: 2e-4\nn_epochs: 3\n")
    params = read_params_file(path)
    assert params == {"lr": 2e-4, "n_epochs": 3}
    assert isinstance(SketchConfig.from_values(params).lr, float)


def test_bad_values_are_refused():
    with pytest.raises(ParamError, match="image_size=48 must be a power of two"):
        SketchConfig(image_size=48)
    with pytest.raises(ParamError, match="fid_backbone='imagenet' is not one of"):
        SketchConfig(fid_backbone="imagenet")
    for schema in (SketchConfig, StyleConfig):
        with pytest.raises(ParamError, match="precision='fp16' needs CUDA"):
            schema(precision="fp16", device="cpu")
    with pytest.raises(ParamError, match="scales='0,1': every scale must be greater than 0"):
        StyleConfig(scales="0,1")


def test_params_file_errors_name_the_file(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("ablation: baseline\nn_epoch: 3\n")
    with pytest.raises(ParamError, match=r"bad.yaml: unknown parameter 'n_epoch' \(did you mean 'n_epochs'\?\)"):
        plan.plan([path])
    path.write_text("a: [unclosed\n")
    with pytest.raises(ParamError, match="bad.yaml: not valid YAML"):
        read_params_file(path)


def test_override_values_are_read_as_yaml():
    assert parse_override("n_epochs=3") == ("n_epochs", 3)
    assert parse_override("data_root=") == ("data_root", "")
    with pytest.raises(ParamError):
        parse_override("n_epochs")


VIEWS = ("lablog", "explore")  # notebooks that show the lab (its log, its runs), not ablations
NOTEBOOKS = sorted(p.stem for p in (ROOT / "notebooks").glob("*.ipynb") if p.stem not in VIEWS)


@pytest.mark.parametrize("notebook", NOTEBOOKS)
def test_each_notebook_is_its_ablation_with_valid_knobs(notebook):
    """A notebook's parameters cell names its own ablation and only names its schema knows, with
    valid values; every other name of the schema can still be injected."""
    schema = schema_for(notebook)
    values = notebook_defaults(ROOT / "notebooks" / f"{notebook}.ipynb", schema)
    assert values["ablation"] == notebook
    assert schema.from_values(values).ablation == notebook
    assert set(values) < set(schema.names())  # the knobs, not the whole schema


def test_a_notebook_saved_in_place_meanwhile_is_still_its_ablation(tmp_path, monkeypatch):
    """JupyterLab saves a notebook in place: a command reading it half written waits for the save;
    a notebook that never reads, or sets no ablation, is named as such."""
    (tmp_path / "notebooks").mkdir()
    for name in ("baseline", "lablog"):
        shutil.copy(ROOT / "notebooks" / f"{name}.ipynb", tmp_path / "notebooks")
    monkeypatch.setenv("LABKIT_ROOT", str(tmp_path))
    notebook = (tmp_path / "notebooks" / "baseline.ipynb").read_bytes()

    def save_slowly():
        with open(tmp_path / "notebooks" / "baseline.ipynb", "wb") as f:
            f.write(notebook[: len(notebook) // 2])
            f.flush()
            time.sleep(0.4)
            f.write(notebook[len(notebook) // 2 :])

    saving = threading.Thread(target=save_slowly)
    saving.start()
    time.sleep(0.1)
    assert schema_for("baseline") is SketchConfig
    saving.join()
    (tmp_path / "notebooks" / "glad.ipynb").write_text('{"cells": [')
    with pytest.raises(ParamError, match=r"glad.ipynb does not read as a notebook \(restore it"):
        schema_for("glad")
    with pytest.raises(ParamError, match=r"lablog.ipynb has no cell tagged `parameters` that sets ablation = 'lablog'"):
        schema_for("lablog")


def _weights_in_the_hub_cache():
    """The paper settings name real weights: empty files where the hub cache keeps them (their
    presence is what is checked before a run)."""
    from labkit.weights import FID_INCEPTION_URL, VGG19_URL, hub_path

    for url in (FID_INCEPTION_URL, VGG19_URL):
        path = hub_path(url.rsplit("/", 1)[-1])
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")


def test_every_params_file_plans_with_its_base(lab, tmp_path):
    """... the papers' own settings given what only their user has (image folders laid out as
    MSCOCO and WikiArt, Caffe's VGG19, APDrawingGAN's pre-training), and refused without it."""
    _weights_in_the_hub_cache()
    for folder in ("coco", "wikiart", "pretraining"):
        (tmp_path / folder).mkdir()
    (tmp_path / "vgg19-caffe.pth").write_bytes(b"")
    caffe, folders = [f"vgg_weights={tmp_path / 'vgg19-caffe.pth'}"], [f"content_dir={tmp_path / 'coco'}"]
    folders += [f"style_dir={tmp_path / 'wikiart'}"]
    needs = {
        "decoder_chen_schmidt": caffe + folders,
        "decoder_avatar": caffe + folders,
        "swap_chen_schmidt": caffe,
        "local_apdrawing": [f"init_from={tmp_path / 'pretraining'}"],
    }
    runnable = [p for p in sorted((ROOT / "params").glob("*.yaml")) if "ablation" in read_params_file(p)]
    jobs = {j.label: j.cfg for j in plan.plan([p for p in runnable if p.stem not in needs])}
    for name, given in needs.items():
        with pytest.raises(ParamError):
            plan.plan([ROOT / "params" / f"{name}.yaml"])
        jobs.update({j.label: j.cfg for j in plan.plan([ROOT / "params" / f"{name}.yaml"], overrides=given)})
    assert set(jobs) == {p.stem for p in runnable}
    apdrawing = jobs["local_apdrawing"]
    assert (apdrawing.image_size, apdrawing.n_epochs, apdrawing.n_epochs_decay, apdrawing.crop_jitter) == (
        512,
        300,
        0,
        False,
    )
    assert jobs["glad"].lambda_glad == 100.0 and jobs["glad"].image_size == 256  # notebook, then base file
    assert jobs["baseline"].lambda_glad == 0.0 and jobs["local_glad"].local
    assert jobs["swap_multilayer"].decoder_kind == "relu4_1+relu3_1" and jobs["decoder_train_inject"].steps == 20000
    with pytest.raises(ParamError, match="style.yaml: names no ablation"):
        plan.plan([ROOT / "params" / "style.yaml"])


def test_the_weights_checked_before_a_run_are_the_files_the_libraries_load(tmp_path, monkeypatch):
    """A params file's weights are checked without importing torch: the addresses and the hub
    cache's place are labkit's copies of pytorch-fid's, torchvision's and torch.hub's own."""
    import subprocess
    import sys

    import torch
    import torchvision
    from pytorch_fid.inception import FID_WEIGHTS_URL

    from labkit.weights import FID_INCEPTION_URL, VGG19_URL

    assert FID_INCEPTION_URL == FID_WEIGHTS_URL and torchvision.models.VGG19_Weights.IMAGENET1K_V1.url == VGG19_URL
    for env in ({"TORCH_HOME": str(tmp_path / "th")}, {"XDG_CACHE_HOME": str(tmp_path / "xdg")}, {}):
        for name in ("TORCH_HOME", "XDG_CACHE_HOME"):
            monkeypatch.delenv(name, raising=False)
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        code = (
            "import sys; from labkit.weights import hub_path; print(hub_path('w.pth')); print('torch' in sys.modules)"
        )
        without_torch = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        monkeypatch.setattr(torch.hub, "_hub_dir", None)
        assert without_torch.stdout.split() == [f"{torch.hub.get_dir()}/checkpoints/w.pth", "False"]


def test_params_file_faults_are_refused_naming_the_file(lab, tmp_path):
    def refused(text: bytes | str, match: str):
        path = tmp_path / "p.yaml"
        path.write_bytes(text if isinstance(text, bytes) else text.encode())
        with pytest.raises(ParamError, match=match):
            plan.plan([path])

    refused("", r"p.yaml: the params file is empty")
    refused("# only a comment\n", r"p.yaml: the params file is empty")
    refused("ablation: glad\nlr: 1e-4\nlr: 2e-4\n", r"p.yaml: 'lr' is given twice \(lines 2 and 3\)")
    refused("ablation: glad\n# 学习率\n".encode("gbk"), r"p.yaml: not UTF-8.*iconv -f GBK")
    refused("ablation: glad\nlr: -0.1\n", r"p.yaml: .*lr=-0.1 must be greater than 0")
    refused("ablation: glad\nlr: .nan\n", r"p.yaml: .*lr=nan must be a finite number")
    refused("ablation: gald\n", r"unknown ablation 'gald' \(did you mean 'glad'\?\)")
    refused(f"ablation: glad\ndata_root: {tmp_path / 'nowhere'}\n", r"data_root=.*nowhere.*no such folder")
    (tmp_path / "empty").mkdir()
    refused(f"ablation: glad\ndata_root: {tmp_path / 'empty'}\n", r"data_root=.*the folder is empty")
    refused("ablation: glad\nbase: p.yaml\n", r"its `base:` chain comes back to itself")


def test_inception_without_its_weights_is_refused_before_a_run_exists(bare_lab, tmp_path, monkeypatch):
    from labkit import weights as weights_module

    monkeypatch.setattr(weights_module, "_download", lambda *a, **k: (_ for _ in ()).throw(OSError("offline")))
    path = tmp_path / "p.yaml"
    path.write_text("ablation: baseline\nfid_backbone: inception\n")
    with pytest.raises(ParamError, match=r"(?s)fid_backbone='inception'.*pt_inception-2015-12-05-6726825d.pth"):
        plan.plan([path])
    assert not (bare_lab / "mlflow.db").exists()


def test_typos_in_a_notebook_are_refused_before_any_work():
    """papermill passes unknown names on (and only warns); the notebook's first cell refuses them,
    from its parameters cell or from papermill's injected one."""
    injected = "# Parameters\nlamda_l1 = 5\n"
    with pytest.raises(ParamError, match=r"unknown parameter 'lamda_l1' \(did you mean 'lambda_l1'\?\)"):
        from_namespace({"ablation": "glad", "In": ["", injected], "lamda_l1": 5})
    cfg = from_namespace(
        {"ablation": "glad", "In": ["", "# Parameters\nlambda_l1 = 5\nrun_id = 'abc'\n"], "lambda_l1": 5}
    )
    assert cfg.lambda_l1 == 5.0


def test_plain_papermill_with_a_params_file_runs_what_labkit_ablate_runs():
    """`papermill notebooks/glad.ipynb out.ipynb -f params/glad.yaml` injects the file as it is,
    its `base:` included: the notebook takes the base's values, as `labkit ablate` does."""
    import nbformat
    from papermill.translators import translate_parameters

    notebook = nbformat.read(ROOT / "notebooks" / "glad.ipynb", as_version=4)
    cell = next(c for c in notebook.cells if "parameters" in c.metadata.get("tags", []))
    # (the real Inception is not here: both take the smoke backbone)
    given = {**yaml.safe_load((ROOT / "params" / "glad.yaml").read_text()), "fid_backbone": "random-init"}
    injected = translate_parameters("python3", "python", given, "Parameters")
    namespace = {}
    exec(cell.source + "\n" + injected, namespace)
    cfg = from_namespace({**namespace, "In": ["", cell.source, injected]})
    planned = plan.plan([ROOT / "params" / "glad.yaml"], overrides=["fid_backbone=random-init"])[0].cfg
    assert cfg == planned
    assert (cfg.image_size, cfg.ngf, cfg.lambda_glad) == (256, 64, 100.0)


def test_a_notebook_cell_sets_what_makes_its_ablation_and_restates_no_default():
    """A value in a parameters cell that equals the schema's default would stop following the
    schema when the default changes (and its copied help would drift): the cells hold their
    ablation's name and what differs from the defaults, nothing else."""
    checked = 0
    for notebook in sorted((ROOT / "notebooks").glob("*.ipynb")):
        if notebook.stem not in all_ablations():
            continue  # a view of the lab (the lab log), not an ablation
        schema = schema_for(notebook.stem)
        values, defaults = notebook_defaults(notebook, schema), schema().to_dict()
        assert values.pop("ablation") == notebook.stem, notebook.name
        restated = sorted(name for name, value in values.items() if value == defaults[name])
        assert restated == [], f"{notebook.name} restates the defaults of {restated}"
        checked += 1
    assert checked == len(all_ablations())


def test_every_problem_of_a_file_and_the_command_line_at_once_each_named_by_its_source(lab, tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("ablation: baseline\nlamda_l1: 5\nn_epochs: ten\nlr: -0.1\nngf: 0\n")
    with pytest.raises(ParamError) as refused:
        plan.plan([path], overrides=["seed=-1", "experiment="])
    lines = str(refused.value).splitlines()
    assert f"{path}: unknown parameter 'lamda_l1' (did you mean 'lambda_l1'?)" in lines
    assert f"{path}: parameter 'n_epochs' must be int, got str 'ten'" in lines
    assert f"{path}: invalid parameters: ngf=0 must be at least 1; lr=-0.1 must be greater than 0" in lines
    assert "--set: invalid parameters: experiment must not be empty; seed=-1 must be at least 0" in lines
    with pytest.raises(ParamError, match=r"^--set lr=\[1: '\[1' is not a value YAML can read .*; quote it"):
        plan.plan(["baseline"], overrides=["lr=[1"])


def test_yaml_booleans_leave_the_lab_words_alone(lab, tmp_path):
    """YAML 1.1 reads on / off / yes / no as booleans; the lab reads them as the words they are
    (compile: on), and a yes/no parameter takes them as well as true / false."""
    path = tmp_path / "p.yaml"
    path.write_text("ablation: baseline\ncompile: on\nlr: 2e-4\n")
    (job,) = plan.plan([path])
    assert job.cfg.compile == "on" and job.cfg.lr == 2e-4
    assert parse_override("compile=off") == ("compile", "off") and parse_override("fast=true") == ("fast", True)
    assert SketchConfig.from_values({"fast": "no"}).fast is False and SketchConfig.from_values({"fast": "on"}).fast
    (job,) = plan.plan(["baseline"], overrides=["compile=on"])
    assert job.cfg.compile == "on"


def test_a_data_folder_s_bad_files_are_refused_before_a_run_exists(bare_lab, tmp_path):
    """Empty, damaged, oversized and unpaired files each once started a kernel and left a FAILED
    run; the data folder is read before any run exists, every problem listed."""
    from PIL import Image

    from labkit.data import write_synthetic_set

    root = write_synthetic_set(tmp_path / "faces", count=8, progress=False)
    (root / "sketches" / "ar-0001.png").write_bytes(b"")
    (root / "photos" / "cuhk-0000.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    Image.new("1", (12_000, 12_000)).save(root / "photos" / "xm2vts-0002.png")  # 144 Mpx: past PIL's bomb limit
    path = tmp_path / "p.yaml"
    path.write_text(f"ablation: baseline\ndata_root: {root}\n")
    with pytest.raises(ParamError) as refused:
        plan.plan([path])
    text = str(refused.value)
    assert f"{path}: data_root='{root}': {root}: 3 image file(s) a run cannot read:" in text
    assert "ar-0001.png: an empty file (0 bytes)" in text and "cuhk-0000.png: cannot read this image" in text
    assert "xm2vts-0002.png: too large (Image size (144000000 pixels) exceeds limit" in text
    assert "set skip_bad_files to leave them out" in text
    (job,) = plan.plan([path], overrides=["skip_bad_files=true"])  # the run lists and leaves them out
    Image.new("RGB", (64, 64)).save(root / "photos" / "lonely.png")
    with pytest.raises(ParamError, match=r"1 unpaired file\(s\):\n  photo photos/lonely.png has no sketch"):
        plan.plan([path])
    assert not (bare_lab / "mlflow.db").exists()


def test_a_device_this_machine_has_not_is_refused_before_a_run_exists(bare_lab):
    from labkit.provenance import gpu_count

    with pytest.raises(ParamError, match=r"--set: invalid parameters: device='gpu' is not auto, cpu, cuda"):
        plan.plan(["baseline"], overrides=["device=gpu"])
    if gpu_count():
        pytest.skip("this machine has a GPU: cuda and fp16 are its to run")
    with pytest.raises(ParamError, match=r"device='cuda': no GPU\(s\) visible here"):
        plan.plan(["baseline"], overrides=["device=cuda"])
    with pytest.raises(ParamError, match=r"precision='fp16' needs CUDA, and no GPU is visible here"):
        plan.plan(["baseline"], overrides=["precision=fp16"])
    assert not (bare_lab / "mlflow.db").exists()


def test_a_run_records_the_parameters_that_apply_and_its_settings_apart():
    """MLflow's params hold what a run computes and its ablation reads; where and how fast it
    computes are tags; an extension that is off (lambda_local on the baseline) is not there."""
    from labkit.config import SketchConfig, StyleConfig

    params, settings = SketchConfig(ablation="baseline").recorded()
    assert {"lambda_l1", "ngf", "seed"} <= set(params) and not {"lambda_local", "lambda_glad", "device"} & set(params)
    assert {"device", "stall_minutes", "max_restarts", "nproc", "precision"} <= set(settings)
    assert "lambda_glad" in SketchConfig(ablation="glad", lambda_glad=100.0).recorded()[0]
    softmax, _ = StyleConfig(ablation="swap_softmax").recorded()
    assert "temperature" in softmax and "usage_limit" not in softmax and "swap_layer" in softmax
