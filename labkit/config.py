"""The parameters of a face photo -> sketch run, and their validation.

The same names appear in each notebook's `parameters` cell (papermill injects values there)
and in the params/*.yaml files. papermill only warns about unknown names, so the lab checks
every file against this schema before anything runs.
"""
from __future__ import annotations

import dataclasses
import difflib
import typing
from dataclasses import dataclass, field
from pathlib import Path

import yaml


# params a resumed run may change without changing what it computes
HARDWARE_PARAMS = frozenset({"device", "amp", "num_workers", "run_id"})


class ParamError(ValueError):
    """A parameter file or value the lab refuses; the message names the source and the fix."""


@dataclass(frozen=True)
class SketchConfig:
    ablation: str = field(default="baseline", metadata={"help": "notebook to run: notebooks/<ablation>.ipynb"})
    experiment: str = field(default="faces", metadata={"help": "MLflow experiment name"})
    seed: int = 0
    run_id: str = field(default="", metadata={"help": "set by `labkit ablate`; empty opens a new run"})
    # data
    data_root: str = field(default="", metadata={"help": "face data folder; empty = the synthetic set"})
    synthetic_count: int = field(default=48, metadata={"help": "faces in the synthetic set"})
    synthetic_misalign: float = field(default=0.0, metadata={"help": "px of sketch-vs-photo misalignment"})
    image_size: int = field(default=64, metadata={"help": "network size; 256 is the paper setting"})
    sketch_channels: int = 1
    skip_bad_files: bool = field(default=False, metadata={"help": "list and leave out unreadable or unpaired files"})
    # model
    ngf: int = 32
    ndf: int = 32
    # optimisation (pix2pix defaults)
    batch_size: int = 4
    n_epochs: int = 10
    n_epochs_decay: int = 10
    lr: float = 2e-4
    beta1: float = 0.5
    lambda_l1: float = 100.0
    # +glad: generalized gradient loss (labkit.losses.glad)
    lambda_glad: float = field(default=0.0, metadata={"help": "0 = off; 100 in the user's +glad"})
    glad_mode: str = field(default="components", metadata={"help": "components | magnitude"})
    glad_norm: str = field(default="l1", metadata={"help": "l1 | l2"})
    # +local: APDrawingGAN-style part networks (labkit.models.local)
    local: bool = False
    lambda_local: float = field(default=25.0, metadata={"help": "weight of the parts' L1"})
    local_gan_weight: float = field(default=0.25, metadata={"help": "weight of each part's adversarial loss"})
    local_hair_background: bool = field(default=False, metadata={"help": "hair and background nets (needs masks)"})
    ngf_local: int = 32
    # evaluation and logging
    eval_every: int = field(default=5, metadata={"help": "epochs between FID evaluations"})
    log_every: int = field(default=10, metadata={"help": "iterations between loss logs"})
    fid_backbone: str = field(default="auto", metadata={"help": "inception | random-init | auto"})
    fid_dims: int = 2048
    fid_batch_size: int = 32
    grid_samples: int = 4
    # hardware
    device: str = field(default="auto", metadata={"help": "auto | cpu | cuda | cuda:N"})
    amp: bool = field(default=False, metadata={"help": "mixed precision (CUDA only)"})
    num_workers: int = 0

    CHOICES: typing.ClassVar[dict[str, tuple[str, ...]]] = {
        "fid_backbone": ("inception", "random-init", "auto"),
        "sketch_channels": (1, 3),
        "glad_mode": ("components", "magnitude"),
        "glad_norm": ("l1", "l2"),
    }

    def __post_init__(self):
        problems = []
        for name, allowed in self.CHOICES.items():
            if getattr(self, name) not in allowed:
                problems.append(f"{name}={getattr(self, name)!r} is not one of {list(allowed)}")
        if self.image_size < 32 or self.image_size & (self.image_size - 1):
            problems.append(f"image_size={self.image_size} must be a power of two >= 32 (the U-Net halves it to 1)")
        for name in ("batch_size", "n_epochs", "eval_every", "log_every", "fid_batch_size", "ngf", "ndf", "ngf_local"):
            if getattr(self, name) < 1:
                problems.append(f"{name}={getattr(self, name)} must be at least 1")
        if self.n_epochs_decay < 0:
            problems.append("n_epochs_decay must be >= 0")
        if problems:
            raise ParamError("invalid parameters: " + "; ".join(problems))

    @property
    def total_epochs(self) -> int:
        return self.n_epochs + self.n_epochs_decay

    @classmethod
    def names(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def from_namespace(cls, namespace: dict) -> "SketchConfig":
        """Build from a notebook's globals (its parameters cell plus papermill's injection)."""
        return from_dict({k: namespace[k] for k in cls.names() if k in namespace}, source="notebook parameters")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


SWAP_VARIANTS = ("argmax", "softmax", "frequency", "assignment", "channel_weighted", "gram", "multiscale", "multilayer")


@dataclass(frozen=True)
class StyleConfig:
    """Parameters of a style-swap run: decoder training (ablation decoder_train) or a swap
    variant (ablation swap_<variant>)."""
    ablation: str = field(default="swap_argmax", metadata={"help": "decoder_train or swap_<variant>"})
    experiment: str = "style"
    seed: int = 0
    run_id: str = ""
    # images: RGB [0, 1]; empty folders = scikit-image's photographs and textures
    content_dir: str = field(default="", metadata={"help": "content images (empty: astronaut, coffee, chelsea)"})
    style_dir: str = field(default="", metadata={"help": "style images (empty: brick, grass, gravel)"})
    image_size: int = field(default=128, metadata={"help": "short side of the images; crop size in training"})
    # encoder
    vgg_weights: str = field(default="auto", metadata={"help": "imagenet | random-init | auto | a .pth file"})
    vgg_convention: str = field(default="torchvision", metadata={"help": "torchvision | caffe"})
    channel_order: str = field(default="bgr", metadata={"help": "caffe convention only: bgr | rgb"})
    # decoder and its training
    decoder_kind: str = field(default="relu4_1", metadata={"help": "relu3_1 | relu4_1 | relu4_1+relu3_1"})
    decoder_run: str = field(default="", metadata={"help": "run (name or id) of a trained decoder; empty: train here"})
    steps: int = 300
    batch_size: int = 4
    lr: float = 1e-4
    lambda_pixel: float = 1.0
    lambda_feature: float = 1.0
    lambda_tv: float = 0.0
    lambda_adain: float = 0.0
    train_with_swap: bool = field(default=False, metadata={"help": "decode swapped features while training"})
    log_every: int = 20
    checkpoint_every: int = 100
    # swap
    variant: str = field(default="argmax", metadata={"help": " | ".join(SWAP_VARIANTS)})
    swap_layer: str = field(default="relu4_1", metadata={"help": "relu3_1 | relu4_1"})
    patch_size: int = 3
    temperature: float = field(default=0.05, metadata={"help": "softmax: NCC / temperature"})
    cutoff: float = field(default=2.0, metadata={"help": "frequency: Gaussian sigma of the low-pass, feature px"})
    usage_limit: int = field(default=2, metadata={"help": "assignment: uses allowed per style patch"})
    beta: float = field(default=1.0, metadata={"help": "gram: weight of the style mean in the query"})
    scales: str = field(default="0.5,1,2", metadata={"help": "multiscale: style scales"})
    chunk: int = field(default=2048, metadata={"help": "style patches scored at a time"})
    device: str = "auto"

    CHOICES: typing.ClassVar[dict[str, tuple]] = {
        "vgg_convention": ("torchvision", "caffe"),
        "channel_order": ("bgr", "rgb"),
        "decoder_kind": ("relu3_1", "relu4_1", "relu4_1+relu3_1"),
        "variant": SWAP_VARIANTS,
        "swap_layer": ("relu3_1", "relu4_1"),
    }

    def __post_init__(self):
        problems = [f"{name}={getattr(self, name)!r} is not one of {list(allowed)}"
                    for name, allowed in self.CHOICES.items() if getattr(self, name) not in allowed]
        for name in ("image_size", "steps", "batch_size", "patch_size", "usage_limit", "chunk", "log_every",
                     "checkpoint_every"):
            if getattr(self, name) < 1:
                problems.append(f"{name}={getattr(self, name)} must be at least 1")
        if self.temperature <= 0:
            problems.append("temperature must be > 0")
        if problems:
            raise ParamError("invalid parameters: " + "; ".join(problems))

    names = classmethod(lambda cls: [f.name for f in dataclasses.fields(cls)])
    from_namespace = classmethod(lambda cls, ns: from_dict({k: ns[k] for k in cls.names() if k in ns},
                                                           source="notebook parameters", schema=cls))
    to_dict = dataclasses.asdict


def schema_for(ablation: str):
    """The parameter schema of an ablation's notebook."""
    return StyleConfig if ablation == "decoder_train" or ablation.startswith("swap_") else SketchConfig


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
    if expected is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise TypeError
    if not isinstance(value, expected):
        raise TypeError
    return value


def normalize_params(params: dict, source: str, schema=SketchConfig) -> tuple[dict, list[str]]:
    """Params coerced to the schema's types, and every problem found: unknown names (with
    the closest valid one) and wrong types."""
    if not isinstance(params, dict):
        return {}, [f"{source}: expected a mapping of parameter names to values, got {type(params).__name__}"]
    hints = typing.get_type_hints(schema)
    known = schema.names()
    clean, problems = {}, []
    for name, value in params.items():
        if name not in known:
            close = difflib.get_close_matches(str(name), known, n=1, cutoff=0.6)
            hint = f" (did you mean '{close[0]}'?)" if close else f" (valid names: {', '.join(known)})"
            problems.append(f"{source}: unknown parameter '{name}'{hint}")
            continue
        try:
            clean[name] = _coerce(value, hints[name])
        except TypeError:
            problems.append(f"{source}: parameter '{name}' must be {hints[name].__name__}, "
                            f"got {type(value).__name__} {value!r}")
    return clean, problems


def from_dict(params: dict, source: str = "parameters", schema=SketchConfig):
    values, problems = normalize_params(params, source, schema)
    if problems:
        raise ParamError("\n".join(problems))
    try:
        return schema(**values)
    except ParamError as exc:
        raise ParamError(f"{source}: {exc}") from None


def from_logged_params(logged: dict[str, str], schema=SketchConfig):
    """A config back from an MLflow run's params (all logged as strings)."""
    hints = typing.get_type_hints(schema)
    values = {k: v if hints[k] is str else yaml.safe_load(v) for k, v in logged.items() if k in hints}
    return from_dict(values, source="logged params", schema=schema)


def read_params_file(path: str | Path, schema=None) -> dict:
    """A params YAML as a dict, checked against its ablation's schema; errors name the file."""
    path = Path(path)
    if not path.is_file():
        raise ParamError(f"{path}: no such params file")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ParamError(f"{path}: not valid YAML: {exc}") from None
    schema = schema or schema_for(str(data.get("ablation", "")) if isinstance(data, dict) else "")
    clean, problems = normalize_params(data, str(path), schema)
    if problems:
        raise ParamError("\n".join(problems))
    return clean


def parse_override(text: str) -> tuple[str, object]:
    """`name=value` from the command line, the value read as YAML (so 3 is int, 1e-4 float)."""
    if "=" not in text:
        raise ParamError(f"override '{text}' must look like name=value")
    name, raw = text.split("=", 1)
    value = yaml.safe_load(raw) if raw.strip() else ""
    return name.strip(), "" if value is None else value
