"""Every parameter of a run, defined once: its default, type, allowed values and help.

Two schemas: `SketchConfig` (face photo -> sketch, the pix2pix ablations) and `StyleConfig`
(the style-swap lab: decoder training and the swap variants). A field's default is the
notebook setting, a small run that finishes in minutes on a CPU. Where a value comes from,
later sources win:

    field defaults  <-  the notebook's `parameters` cell (what defines its ablation, and the
                        knobs its user turns)  <-  the params file (only what differs; `base:`
                        names a file it starts from)  <-  `--set NAME=VALUE`

Every name of the schema can be set from any of them, not only the names a notebook's cell
shows. Values are checked here whatever their source (params files, `--set`, papermill's
injected cell, a notebook run by hand): unknown names get the closest valid one, wrong types
and out-of-range values are refused with the file they came from.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import hashlib
import json
import math
import re
import time
import typing
from dataclasses import dataclass
from pathlib import Path

import yaml

from . import terms
from .knobs import knob
from .paths import project_root
from .registry import closest
from .style import variants

# The run a notebook logs to is not a parameter of what it computes: the runner injects it.
RUN_ID = "run_id"
# A params file's `base:` (the file it starts from, in params/): plain papermill injects it as a name
BASE = "base"


class ParamError(ValueError):
    """A parameter file or value the lab refuses; the message names the source and the fix."""


class InvalidValues(ParamError):
    """Values out of their range or in conflict: `problems` holds (parameter, problem) pairs, the
    parameter empty where the problem is between several."""

    def __init__(self, problems: list[tuple[str, str]]):
        self.problems = problems
        super().__init__("invalid parameters: " + "; ".join(text for _, text in problems))


@dataclass(frozen=True)
class Config:
    """What both schemas share: how a run is watched, construction from any source, validation,
    identity."""

    # liveness (labkit ablate): a run that stops beating is restarted from its last checkpoint
    stall_minutes: float = knob(
        15.0,
        "minutes without a heartbeat while training before the kernel is called hung, killed and restarted",
        above=0,
        computes=False,
    )
    stall_minutes_slow: float = knob(
        60.0, "the same allowance while starting (data, weights) or evaluating FID", above=0, computes=False
    )
    max_restarts: int = knob(2, "restarts of a hung kernel before the run is failed", at_least=0, computes=False)
    # device and speed (labkit.speed): where and how the run computes, not what
    device: str = knob("auto", "auto | cpu | cuda | cuda:N", computes=False)
    fast: bool = knob(
        True,
        "mixed precision where native, fused Adam, and on CUDA channels_last, cuDNN autotuning "
        "and torch.compile; false: the reference formulation (fp32, eager, plain Adam)",
        computes=False,
    )
    precision: str = knob(
        "auto",
        "auto (bf16 where the device computes it natively, with fast) | fp32 | bf16 | fp16",
        choices=("auto", "fp32", "bf16", "fp16"),
        computes=False,
    )
    compile: str = knob(
        "auto",
        "torch.compile of the networks: auto (with fast, on CUDA, one process, no part networks) | on | off",
        choices=("auto", "on", "off"),
        computes=False,
    )

    @property
    def processes(self) -> int:
        """How many processes (and GPUs, where there are GPUs) one run takes: nproc where the
        schema has it."""
        return getattr(self, "nproc", 1)

    @classmethod
    def ablations(cls) -> tuple[str, ...]:
        raise NotImplementedError

    def __post_init__(self):
        problems = []
        if self.ablation not in self.ablations():
            problems.append(
                ("ablation", f"unknown ablation '{self.ablation}'{closest(self.ablation, self.ablations())}")
            )
        for f in dataclasses.fields(self):
            value, rule = getattr(self, f.name), f.metadata
            if isinstance(value, float) and not math.isfinite(value):
                problems.append((f.name, f"{f.name}={value} must be a finite number"))
            elif rule.get("required") and not str(value).strip():
                problems.append((f.name, f"{f.name} must not be empty"))
            elif rule.get("choices") and value not in rule["choices"]:
                problems.append((f.name, f"{f.name}={value!r} is not one of {list(rule['choices'])}"))
            elif rule.get("at_least") is not None and value < rule["at_least"]:
                problems.append((f.name, f"{f.name}={value} must be at least {rule['at_least']}"))
            elif rule.get("above") is not None and value <= rule["above"]:
                problems.append((f.name, f"{f.name}={value} must be greater than {rule['above']}"))
        problems += [("", text) for text in self.rules()]
        if problems:
            raise InvalidValues(problems)

    def rules(self) -> list[str]:
        """Problems that involve more than one field (each schema adds its own)."""
        if not re.fullmatch(r"auto|cpu|cuda(:\d+)?", self.device):
            return [f"device={self.device!r} is not auto, cpu, cuda or cuda:N (a GPU is 'cuda'; the second 'cuda:1')"]
        if self.precision == "fp16" and self.device == "cpu":
            return ["precision='fp16' needs CUDA (device='cpu'): use 'bf16' or 'fp32'"]
        return []

    @classmethod
    def names(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def not_applying(self) -> set[str]:
        """The parameters this run's ablation does not read (an extension's that is off): each schema
        says which."""
        return set()

    def recorded(self) -> tuple[dict, dict]:
        """(params, settings): what the run computes, as MLflow params (the ones that apply), and
        where and how fast it computes, recorded in one tag (labkit.keys.SETTINGS)."""
        kept = {k: v for k, v in self.to_dict().items() if k not in self.not_applying()}
        identity = self.identity()
        return {k: v for k, v in kept.items() if k in identity}, {k: v for k, v in kept.items() if k not in identity}

    def identity(self) -> dict:
        """The parameters that decide what the run computes: two configs with the same identity
        are the same run (a rerun resumes it; a checkpoint of another identity is refused)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.metadata.get("computes", True)}

    def run_key(self) -> str:
        """A short hash of the identity: how a rerun finds its run."""
        return hashlib.sha256(json.dumps(self.identity(), sort_keys=True, default=str).encode()).hexdigest()[:16]

    def differences(self, other: dict) -> list[str]:
        """The identity parameters where `other` (a logged or checkpointed config) differs."""
        mine = self.identity()
        return [
            f"{k}: {other[k]!r} there, {v!r} here" for k, v in mine.items() if k in other and str(other[k]) != str(v)
        ]

    @classmethod
    def coerce(cls, values: dict, source: str) -> tuple[dict, list[str]]:
        """Values as the schema's types, and every problem: unknown names (with the closest
        valid one) and wrong types."""
        if not isinstance(values, dict):
            return {}, [f"{source}: expected a mapping of parameter names to values, got {type(values).__name__}"]
        hints = typing.get_type_hints(cls)
        clean, problems = {}, []
        for name, value in values.items():
            if name not in cls.names():
                other = next((schema for schema in SCHEMAS if name in schema.names()), None)
                problems.append(
                    f"{source}: unknown parameter '{name}'"
                    + (f": it is one of {other.lab}'s, not of {cls.lab}'s" if other else closest(name, cls.names()))
                )
                continue
            try:
                clean[name] = _coerce(value, hints[name])
            except TypeError:
                problems.append(
                    f"{source}: parameter '{name}' must be {hints[name].__name__}, got {type(value).__name__} {value!r}"
                )
        return clean, problems

    @classmethod
    def from_values(cls, values: dict, source: str = "parameters", origins: dict[str, str] | None = None):
        """The config of these values, or every problem at once: unknown names, wrong types and,
        among the values that are well typed, those out of range, each blamed on where its value
        came from (`origins`: a parameter's source where it is not `source`, e.g. --set)."""
        clean, problems = cls.coerce(values, source)
        try:
            config = cls(**clean)
        except InvalidValues as exc:
            by_source = {}
            for name, text in exc.problems:  # a problem between values: blamed where they all came from
                named = [name] if name else [n for n in cls.names() if re.search(rf"\b{n}=", text)]
                where = {(origins or {}).get(n, source) for n in named}
                by_source.setdefault(where.pop() if len(where) == 1 else source, []).append(text)
            problems += [f"{where}: invalid parameters: {'; '.join(texts)}" for where, texts in by_source.items()]
        if problems:
            raise ParamError("\n".join(problems))
        return config

    @classmethod
    def from_logged(cls, logged: dict[str, str]):
        """A config back from an MLflow run's params (all logged as strings)."""
        hints = typing.get_type_hints(cls)
        return cls.from_values(
            {k: v if hints[k] is str else yaml_value(v, f"logged {k}") for k, v in logged.items() if k in hints},
            source="logged params",
        )

    def check_inputs(self) -> list[str]:
        """Problems with what the run will read or compute on (folders, weight files, the GPUs
        this machine has), found before it starts."""
        from .provenance import gpu_count

        gpus = gpu_count()
        if self.device.startswith("cuda") and int(self.device.partition(":")[2] or 0) >= gpus:
            return [
                f"device={self.device!r}: {gpus or 'no'} GPU(s) visible here (the driver, CUDA_VISIBLE_DEVICES); "
                "use device='auto' or 'cpu'"
            ]
        if self.precision == "fp16" and not gpus:
            return [
                f"precision='fp16' needs CUDA, and no GPU is visible here (device={self.device!r}): use 'bf16' or "
                "'fp32'"
            ]
        return []


@dataclass(frozen=True)
class SketchFields(Config):
    """A face photo -> sketch run: pix2pix and its ablations. SketchConfig adds the parameters of
    the loss terms (labkit.terms)."""

    lab = "the face-sketch lab"  # a class attribute, not a parameter: how messages name the schema
    ablation: str = knob("baseline", "the notebook: notebooks/<ablation>.ipynb")
    experiment: str = knob("faces", "MLflow experiment", required=True)
    seed: int = knob(0, at_least=0)
    # data
    data_root: str = knob("", "face data folder (empty: the synthetic set)")
    synthetic_count: int = knob(48, "faces in the synthetic set", at_least=2)
    synthetic_misalign: float = knob(
        0.0, "px of sketch-vs-photo misalignment in the synthetic set (a smooth deformation per region)", at_least=0
    )
    image_size: int = knob(64, "network size; 256 is the paper setting", at_least=32)
    sketch_channels: int = knob(1, "1 or 3 (FID always sees three)", choices=(1, 3))
    skip_bad_files: bool = knob(False, "list and leave out unreadable or unpaired files")
    crop_jitter: bool = knob(
        True,
        "pad each training face by 30/256 of its size and crop it back at random (pix2pix's 286 -> 256); "
        "false: no crop jitter, as APDrawingGAN trains its local networks (flips either way)",
    )
    # model
    ngf: int = knob(32, "generator width (64 in the paper setting)", at_least=1)
    ndf: int = knob(32, "discriminator width (64 in the paper setting)", at_least=1)
    dropout: bool = knob(
        True, "dropout 0.5 in the generators, as pix2pix and APDrawingGAN (false: upstream's --no_dropout)"
    )
    init_from: str = knob(
        "",
        "weights to start from, as APDrawingGAN fine-tunes its pre-training: a run (name or id), a labkit "
        "checkpoint (model.pt), pix2pix's or APDrawingGAN's <epoch>_net_<name>.pth (the networks saved beside it "
        "too), <epoch>_net_gen.pt, or a folder of latest_net_*.pth; empty: initialised afresh",
    )
    # optimisation (pix2pix defaults)
    batch_size: int = knob(4, "faces per step, over all processes (nproc)", at_least=1)
    n_epochs: int = knob(10, "epochs at the initial learning rate", at_least=1)
    n_epochs_decay: int = knob(10, "epochs of linear decay to 0", at_least=0)
    lr: float = knob(2e-4, above=0)
    beta1: float = knob(0.5, at_least=0)
    # the loss terms' weights and switches are theirs: labkit.terms
    # +align: the training sketches warped onto the photos' geometry (labkit.align)
    align_mode: str = knob(
        "none",
        "none | global | regions | dense: how the warp is estimated from the parsing maps",
        choices=("none", "global", "regions", "dense"),
    )
    align_transform: str = knob("affine", "the global and per-region transforms", choices=("affine", "similarity"))
    align_smoothness: float = knob(
        6.0, "px: the width the regions' transforms blend over, and the dense field's control-point spacing", above=0
    )
    # evaluation and logging
    eval_every: int = knob(5, "epochs between FID evaluations", at_least=1)
    val_fraction: float = knob(
        0.0,
        "share of each subset's training faces held out to pick the best epoch on; "
        "0: the papers' split, and the best epoch is picked on the test set (optimistic)",
        at_least=0,
    )
    intervals: bool = knob(
        True, "95% jackknife intervals of FID and KID over the test faces, at every evaluation", computes=False
    )
    log_every: int = knob(10, "iterations between loss logs", at_least=1)
    inference: str = knob(
        "train",
        "how the test sketches are generated for FID and the grids: train, as pix2pix's and APDrawingGAN's "
        "test.py (each face alone, BatchNorm on its own statistics, dropout on, seeded by seed) | eval "
        "(running statistics, no dropout, fid_batch_size faces at a time)",
        choices=("train", "eval"),
    )
    fid_region: str = knob(
        "canvas",
        "what FID sees of each sketch: canvas (the padded image_size square, as pix2pix's test.py saves it) | "
        "face (the face's own rectangle on it, the data's size at 256)",
        choices=("canvas", "face"),
    )
    fid_backbone: str = knob(
        "auto", "inception when its weights are there, else random-init", choices=("inception", "random-init", "auto")
    )
    fid_dims: int = knob(2048, choices=(64, 192, 768, 2048))
    fid_batch_size: int = knob(
        64,
        "faces measured (and with inference eval, generated) at a time in an evaluation",
        at_least=1,
        computes=False,
    )
    grid_samples: int = knob(4, "test faces in the sample grids", at_least=1)
    # long runs: checkpoints within an epoch, and when to call a run diverged
    checkpoint_every: int = knob(
        0, "steps between checkpoints; 0: every checkpoint_minutes", at_least=0, computes=False
    )
    checkpoint_minutes: float = knob(10.0, "minutes of training between checkpoints", above=0, computes=False)
    diverge_factor: float = knob(
        10.0, "fail when the generator loss exceeds this multiple of its first logged value; 0: off", at_least=0
    )
    # one training on several processes (labkit.train.distributed): where it computes, not what
    nproc: int = knob(
        1,
        "processes that train the run together under torchrun, one GPU each (gloo on CPUs), "
        "each on batch_size / nproc faces of every step",
        at_least=1,
        computes=False,
    )

    def rules(self) -> list[str]:
        problems = super().rules()
        if self.batch_size % self.nproc:
            problems.append(
                f"batch_size={self.batch_size} does not split over nproc={self.nproc} processes: "
                "batch_size is the whole step's, so make it a multiple of nproc"
            )
        if self.nproc > 1 and self.device.startswith("cuda:"):
            problems.append(
                f"device={self.device!r} names one GPU, nproc={self.nproc} needs one each: use 'cuda' "
                "(the first nproc visible GPUs; CUDA_VISIBLE_DEVICES chooses them) or 'cpu'"
            )
        if self.image_size & (self.image_size - 1):
            problems.append(f"image_size={self.image_size} must be a power of two (the U-Net halves it down to 1)")
        if not self.beta1 < 1:
            problems.append(f"beta1={self.beta1} must be below 1 (Adam)")
        if not self.val_fraction < 0.5:
            problems.append(f"val_fraction={self.val_fraction} must be below 0.5 (most faces train)")
        if self.ablation.endswith("align") and self.align_mode == "none":
            problems.append(
                f"ablation '{self.ablation}' trains on aligned sketches: set align_mode to global, regions or dense"
            )
        return problems

    def not_applying(self) -> set[str]:
        """The parameters of the loss terms this objective leaves out (lambda_local on the baseline)."""
        on = terms.active(self)
        names = lambda group: {f.name for t in group if t.knobs is not None for f in dataclasses.fields(t.knobs)}  # noqa: E731
        return names([t for t in terms.TERMS if t not in on]) - names(on)

    @property
    def total_epochs(self) -> int:
        return self.n_epochs + self.n_epochs_decay

    def _data_problems(self) -> list[str]:
        """The data folder: there, not empty, its layout, pairs and files readable (seconds)."""
        from .data.layout import check_folder

        root = Path(self.data_root).expanduser()
        if not root.is_dir():
            return [f"data_root={self.data_root!r}: no such folder"]
        if not any(root.iterdir()):
            return [f"data_root={self.data_root!r}: the folder is empty"]
        problems = [f"data_root={self.data_root!r}: {p}" for p in check_folder(root, self.skip_bad_files)]
        if self.align_mode != "none" and not (root / "masks_sketch").is_dir():
            problems.append(
                f"data_root={self.data_root!r}: align_mode={self.align_mode!r} needs the sketches' "
                "parsing maps in masks_sketch/NAME.png beside masks/ (found "
                + ("photo masks only" if (root / "masks").is_dir() else "no masks at all")
                + "); run the face parser on the sketches, or set align_mode='none'"
            )
        return problems

    def check_inputs(self) -> list[str]:
        problems = super().check_inputs() + (self._data_problems() if self.data_root else [])
        if self.init_from:
            from .train.init_from import looks_like_a_path, where

            if looks_like_a_path(self.init_from) and not where(self.init_from).exists():
                problems.append(
                    f"init_from={self.init_from!r}: no such file or folder (here or in {project_root()}); put the "
                    "checkpoint there (APDrawingGAN's pre-training: the latest_net_*.pth of its Model2 download), or "
                    "set init_from to where it is"
                )
        if self.nproc > 1:
            from .train.distributed import check_devices

            try:
                check_devices(self)
            except RuntimeError as exc:
                problems.append(str(exc))
        if self.fid_backbone == "inception":
            from .weights import WeightsUnavailable, ensure_fid_inception

            try:
                ensure_fid_inception()
            except WeightsUnavailable as exc:
                problems.append(f"fid_backbone='inception': {exc}")
        return problems

    @classmethod
    def ablations(cls) -> tuple[str, ...]:
        """The face ablations: each notebook that names itself as its ablation, the style lab's aside."""
        style = set(StyleConfig.ablations())
        return tuple(name for name in notebook_ablations() if name not in style)


def notebook_ablations() -> tuple[str, ...]:
    """The notebooks, notebooks/NAME.ipynb, whose parameters cell sets `ablation = "NAME"`: the
    lab's ablations (the lab log's notebook is none). Read again when a notebook changes."""
    folder = project_root() / "notebooks"
    paths = sorted(folder.glob("*.ipynb")) if folder.is_dir() else []
    return _ablations_in(tuple((path, _changed(path)) for path in paths))


def _changed(path: Path) -> int:
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return 0


@functools.lru_cache(maxsize=8)
def _ablations_in(notebooks: tuple[tuple[Path, int], ...]) -> tuple[str, ...]:
    return tuple(path.stem for path, _ in notebooks if _names_itself(path))


def _names_itself(path: Path) -> bool:
    cells = _notebook_cells(path)
    for cell in cells or []:
        if "parameters" in cell.get("metadata", {}).get("tags", []):
            source = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
            return _assigned_value(source, "ablation") == path.stem
    return False


def _notebook_cells(path: Path, patience: float = 1.0) -> list | None:
    """The notebook's cells, or None when it is not a notebook. JupyterLab saves a notebook in
    place: one read half written is read again until it parses or `patience` seconds pass."""
    deadline = time.monotonic() + patience
    while True:
        try:
            return json.loads(path.read_text(encoding="utf-8"))["cells"]
        except OSError:
            return None
        except (ValueError, KeyError, TypeError):
            if time.monotonic() > deadline:
                return None
            time.sleep(0.05)


def _assemble(name: str, fields: type, extensions: list[type]) -> type:
    """A schema: `fields` and the parameters its extensions declare (each a frozen dataclass of
    knobs), one frozen dataclass that pickles under this module's name."""
    schema = dataclasses.make_dataclass(
        name, [], bases=(*reversed(extensions), fields), frozen=True, namespace={"__doc__": fields.__doc__}
    )
    schema.__module__ = __name__
    return schema


SketchConfig = _assemble("SketchConfig", SketchFields, terms.knob_sets())


@dataclass(frozen=True)
class StyleFields(Config):
    """A style-swap run: decoder training (ablation decoder_train) or a swap variant
    (ablation swap_<variant>, the variant taken from the registry in labkit.style.variants; the
    parameters a variant adds are declared by it)."""

    lab = "the style-swap lab"

    ablation: str = knob("swap_argmax", "decoder_train or swap_<variant>")
    experiment: str = knob("style", "MLflow experiment", required=True)
    seed: int = knob(0, at_least=0)
    # images: RGB [0, 1]; empty folders = scikit-image's photographs and textures
    content_dir: str = knob("", "content images, in subfolders too (empty: astronaut, coffee, chelsea)")
    style_dir: str = knob("", "style images, in subfolders too (empty: brick, grass, gravel)")
    image_size: int = knob(64, "short side of the images; crop size in training", at_least=16)
    # encoder
    vgg_weights: str = knob("auto", "imagenet | random-init | auto | a .pth file")
    vgg_convention: str = knob("torchvision", choices=("torchvision", "caffe"))
    channel_order: str = knob("bgr", "caffe convention only", choices=("bgr", "rgb"))
    # decoder and its training
    decoder_kind: str = knob(
        "relu4_1",
        "avatar: Avatar-Net's hourglass decoder (AdaIN skips)",
        choices=("relu3_1", "relu4_1", "relu4_1+relu3_1", "avatar"),
    )
    decoder_run: str = knob("", "run (name or id) of a trained decoder; empty: train one here")
    steps: int = knob(250, "training steps (params/decoder_train.yaml: 20000)", at_least=1)
    batch_size: int = knob(4, at_least=1)
    lr: float = knob(5e-4, above=0)
    lambda_pixel: float = knob(1.0, at_least=0)
    pixel_loss: str = knob("l1", "the pixel term: l1 | mse (Avatar-Net's)", choices=("l1", "mse"))
    lambda_feature: float = knob(1.0, at_least=0)
    lambda_tv: float = knob(0.0, at_least=0)
    lambda_adain: float = knob(0.0, at_least=0)
    train_with_swap: bool = knob(
        False, "every batch also decodes its features style-swapped with the style crops (Chen & Schmidt's training)"
    )
    paper_data: bool = knob(
        False,
        "a paper's setting: refuse to train a decoder on scikit-image's six pictures (content_dir and "
        "style_dir must name folders laid out as MSCOCO and WikiArt: images, in subfolders or not)",
    )
    log_every: int = knob(20, at_least=1)
    checkpoint_every: int = knob(100, "steps between checkpoints", at_least=1)
    # the swap (the variant itself comes from `ablation`)
    swap_layer: str = knob("relu4_1", choices=("relu3_1", "relu4_1"))
    patch_size: int = knob(3, at_least=1)
    chunk: int = knob(2048, "style patches scored at a time", at_least=1, computes=False)

    @classmethod
    def ablations(cls) -> tuple[str, ...]:
        return ("decoder_train", *(v.ablation for v in variants.VARIANTS))

    def rules(self) -> list[str]:
        problems = super().rules()
        if self.vgg_convention == "caffe" and self.vgg_weights == "imagenet":
            problems.append(
                "vgg_convention='caffe' needs Caffe's VGG19 converted to a .pth: set vgg_weights to that file "
                "(vgg_weights='imagenet' is torchvision's, trained on another input convention)"
            )
        missing = [name for name in ("content_dir", "style_dir") if not getattr(self, name)]
        if self.paper_data and self.ablation == "decoder_train" and missing:
            problems.append(
                f"paper_data: a paper's decoder trains on thousands of images (MSCOCO, WikiArt), and "
                f"{' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} empty: scikit-image's six "
                "pictures. Set them to your folders, or --set paper_data=false to train on the six pictures "
                "anyway (its numbers are not the paper's)"
            )
        return problems

    def not_applying(self) -> set[str]:
        """The other swap variants' own parameters."""
        mine = self.variant.knobs if self.variant is not None else None
        return {f.name for knobs in variants.knob_sets() if knobs is not mine for f in dataclasses.fields(knobs)} - (
            {f.name for f in dataclasses.fields(mine)} if mine else set()
        )

    @property
    def variant(self):
        """The swap variant of a swap_<variant> ablation (None for decoder_train)."""
        return variants.by_ablation(self.ablation)

    def check_inputs(self) -> list[str]:
        problems = super().check_inputs() + [
            f"{name}={getattr(self, name)!r}: no such folder"
            for name in ("content_dir", "style_dir")
            if getattr(self, name) and not Path(getattr(self, name)).expanduser().is_dir()
        ]
        if self.vgg_weights == "imagenet":
            from .weights import WeightsUnavailable, ensure_vgg19

            try:
                ensure_vgg19()
            except WeightsUnavailable as exc:
                problems.append(f"vgg_weights='imagenet': {exc}")
        elif self.vgg_weights not in ("auto", "random-init") and not Path(self.vgg_weights).expanduser().is_file():
            problems.append(f"vgg_weights={self.vgg_weights!r}: not 'imagenet', 'random-init', 'auto' or a .pth file")
        return problems


StyleConfig = _assemble("StyleConfig", StyleFields, variants.knob_sets())
SCHEMAS = (SketchConfig, StyleConfig)


def all_ablations() -> list[str]:
    return [a for schema in SCHEMAS for a in schema.ablations()]


def outside_the_lab() -> None:
    """Refuse a command run where no lab is (its notebooks nowhere to be found), saying where to run it."""
    root = project_root()
    if not (root / "notebooks").is_dir():
        raise ParamError(
            f"no lab here: {root} and the folders above it hold no notebooks/ and params/. Run labkit in the lab's "
            "folder (the repository), or set LABKIT_ROOT to it"
        )


def schema_for(ablation: str, source: str = "parameters"):
    """The schema whose ablations include this one; an unknown name is refused with the closest."""
    for schema in SCHEMAS:
        if ablation in schema.ablations():
            return schema
    outside_the_lab()
    notebook = project_root() / "notebooks" / f"{ablation}.ipynb"
    if notebook.is_file():
        why = (
            "does not read as a notebook (restore it: git checkout -- notebooks)"
            if _notebook_cells(notebook) is None
            else f"has no cell tagged `parameters` that sets ablation = {ablation!r}"
        )
        raise ParamError(f"{source}: ablation '{ablation}': {notebook} {why}")
    raise ParamError(f"{source}: unknown ablation '{ablation}'{closest(ablation, all_ablations())}")


def _coerce(value, expected):
    """The value as the schema's type, or raise TypeError. YAML reads `2e-4` as a string."""
    if expected is float:
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                raise TypeError from None
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise TypeError
    if expected is bool and isinstance(value, str) and value.lower() in BOOLEAN_WORDS:
        return BOOLEAN_WORDS[value.lower()]
    if expected is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise TypeError
    if not isinstance(value, expected):
        raise TypeError
    return value


class LabYaml(yaml.SafeLoader):
    """YAML as the lab reads values, as in YAML 1.2: `2e-4` is a number, and only true / false are
    booleans (YAML 1.1, PyYAML's default, reads `on`, `off`, `yes`, `no` as booleans too, so
    `compile: on` would not be the word the parameter takes)."""


LabYaml.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
LabYaml.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
LabYaml.add_implicit_resolver(
    "tag:yaml.org,2002:float", re.compile(r"^[-+]?[0-9][0-9_]*(\.[0-9_]*)?[eE][-+]?[0-9]+$"), list("-+0123456789")
)
BOOLEAN_WORDS = {"yes": True, "on": True, "no": False, "off": False}  # what a yes/no parameter also takes


def yaml_value(text: str, source: str):
    """One value as YAML (3 an int, 1e-4 a float, [1, 2] a list); unreadable YAML is refused
    naming where it came from."""
    try:
        return yaml.load(text, Loader=LabYaml)
    except yaml.YAMLError as exc:
        problem = str(getattr(exc, "problem", "") or exc).strip()
        raise ParamError(f"{source}: {text!r} is not a value YAML can read ({problem}); quote it or fix it") from None


class _UniqueKeys(LabYaml):
    """YAML that refuses a key given twice in one mapping (plain YAML keeps the last, silently)."""


def _mapping_without_repeats(loader, node, deep=False):
    seen = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise ParamError(f"'{key}' is given twice (lines {seen[key]} and {key_node.start_mark.line + 1}); keep one")
        seen[key] = key_node.start_mark.line + 1
    return loader.construct_mapping(node, deep=deep)


_UniqueKeys.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping_without_repeats)


def read_params_file(path: str | Path, _chain: tuple[Path, ...] = ()) -> dict:
    """A params file's values, on top of its `base:` file's (a path relative to it); errors name
    the file: missing, not UTF-8, empty, not YAML, a key given twice, a base that loops."""
    path = Path(path)
    if not path.is_file():
        missing = f"{path}: {'a folder, not a params file' if path.is_dir() else 'no such params file'}"
        raise ParamError(f"{_chain[-1]}: its `base:` {missing}" if _chain else missing)
    if path.resolve() in _chain:
        raise ParamError(f"{path}: its `base:` chain comes back to itself ({' -> '.join(map(str, _chain))})")
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ParamError(
            f"{path}: not UTF-8 ({exc.reason} at byte {exc.start}); save it as UTF-8, e.g. "
            f"`iconv -f GBK -t UTF-8 {path.name} > fixed.yaml`"
        ) from None
    try:
        data = yaml.load(text, Loader=_UniqueKeys)
    except ParamError as exc:
        raise ParamError(f"{path}: {exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ParamError(f"{path}: not valid YAML{where}: {getattr(exc, 'problem', None) or exc}") from None
    if data is None:
        raise ParamError(
            f"{path}: the params file is empty; it needs at least `ablation: NAME` ({', '.join(all_ablations())})"
        )
    if not isinstance(data, dict):
        raise ParamError(f"{path}: expected `name: value` lines, got a YAML {type(data).__name__}")
    base = data.pop(BASE, None)
    if base is None:
        return data
    if not isinstance(base, str) or not base:
        raise ParamError(f"{path}: `base:` must name a params file, got {base!r}")
    return {**read_params_file(path.parent / base, (*_chain, path.resolve())), **data}


def parse_override(text: str) -> tuple[str, object]:
    """`name=value` from the command line, the value read as YAML (so 3 is int, 1e-4 float)."""
    if "=" not in text:
        raise ParamError(f"--set {text}: write NAME=VALUE, e.g. --set {text or 'lr'}=2e-4")
    name, raw = text.split("=", 1)
    value = yaml_value(raw, f"--set {text}") if raw.strip() else ""
    return name.strip(), "" if value is None else value


def _assigned_names(source: str) -> list[str]:
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    return [t.id for node in tree.body if isinstance(node, ast.Assign) for t in node.targets if isinstance(t, ast.Name)]


def _assigned_value(source: str, name: str):
    """The plain value a cell assigns to `name` (None when it assigns none)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return None
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets):
            try:
                return ast.literal_eval(node.value)
            except ValueError:
                return None
    return None


def from_namespace(namespace: dict):
    """The config of a notebook from its globals: the `parameters` cell, then what papermill
    injected. Both cells start with '# Parameters' and are kept in IPython's input history,
    so a name in them that the schema does not know (a typo given to plain papermill with
    `-p lamda_l1 5`) is refused here, before any work."""
    ablation = str(namespace.get("ablation", ""))
    schema = schema_for(ablation, "the notebook's parameters")
    cells = [cell for cell in namespace.get("In", []) if cell.lstrip().startswith("# Parameters")]
    known = set(schema.names()) | {RUN_ID, BASE}
    unknown = sorted({n for cell in cells for n in _assigned_names(cell)} - known)
    if unknown:
        raise ParamError(
            "\n".join(f"notebook parameters: unknown parameter '{n}'{closest(n, schema.names())}" for n in unknown)
        )
    values = {k: namespace[k] for k in schema.names() if k in namespace}
    if namespace.get(BASE):
        # `papermill -f params/glad.yaml` injects the file as it is, `base:` included: the base's
        # values go under the injected ones and over the notebook's own, as `labkit ablate` puts them
        injected = {n for cell in cells if BASE in _assigned_names(cell) for n in _assigned_names(cell)}
        base = read_params_file(project_root() / "params" / str(namespace[BASE]))
        values.update({k: v for k, v in base.items() if k not in injected})
    return schema.from_values(values, "notebook parameters")
