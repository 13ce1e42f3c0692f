"""FID and KID of generated sketches, computed exactly as pytorch-fid computes them, and the
evaluator a run scores itself with (reference features cached, per-subset scores).

Images enter as pytorch-fid reads its files: RGB uint8 / 255 (a one-channel sketch is
repeated to three, as PIL's convert('RGB') does), resized inside the network to 299
bilinearly. Generated images are quantised to uint8 first, as if saved as PNG, so the
number equals pytorch-fid's on the same images written to disk. The Frechet distance is
pytorch-fid's own function (or, with fewer images than dimensions, an exact low-rank
form of it: see fid_from_features). KID is the unbiased MMD with the cubic polynomial kernel
(Binkowski et al.), averaged over random subsets, from the same features.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import warnings
from pathlib import Path

import numpy as np
import torch
from pytorch_fid.fid_score import calculate_frechet_distance

from .. import keys
from ..paths import cache_dir
from . import jackknife
from .backbone import Backbone

# how a generated sketch becomes the uint8 image FID measures (upstream's tensor2im truncates, on
# average half a grey level darker)
QUANTIZE = "round"


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """[-1, 1] float (N, C, H, W) -> uint8 (N, 3, H, W), rounded as an image file stores it, on
    the images' device."""
    img = ((images.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return img.expand(-1, 3, -1, -1) if img.shape[1] == 1 else img


Box = tuple[int, int, int, int]  # (top, left, height, width) of a face on its canvas


def features(
    images_uint8: torch.Tensor, backbone: Backbone, batch_size: int = 50, boxes: list[Box] | None = None
) -> np.ndarray:
    """(N, dims) float64 pool features of uint8 (N, 3, H, W) images, or with boxes of the
    rectangle each box cuts from its image (rectangles of one size measured together, as
    pytorch-fid measures a folder of images of one size)."""
    if boxes is None:
        return _features(images_uint8, backbone, batch_size)
    out = np.zeros((len(images_uint8), backbone.dims))
    for at in _by_size(boxes).values():
        crops = torch.stack([images_uint8[i, :, t : t + h, x : x + w] for i in at for t, x, h, w in [boxes[i]]])
        out[at] = _features(crops, backbone, batch_size)
    return out


def _by_size(boxes: list[Box]) -> dict[tuple[int, int], list[int]]:
    """The images' indices by the (height, width) of their box."""
    groups: dict[tuple[int, int], list[int]] = {}
    for i, (_, _, height, width) in enumerate(boxes):
        groups.setdefault((height, width), []).append(i)
    return groups


@torch.no_grad()
def _features(images_uint8: torch.Tensor, backbone: Backbone, batch_size: int) -> np.ndarray:
    device = next(backbone.model.parameters()).device
    out = []
    for start in range(0, len(images_uint8), batch_size):
        batch = images_uint8[start : start + batch_size].to(device).float() / 255.0
        feats = backbone.model(batch)[0]
        if feats.shape[2:] != (1, 1):  # blocks below 2048 dims are spatial: pooled as pytorch-fid does
            feats = torch.nn.functional.adaptive_avg_pool2d(feats, (1, 1))
        out.append(feats.squeeze(-1).squeeze(-1).double().cpu().numpy())
    return np.concatenate(out, 0) if out else np.zeros((0, backbone.dims))


def statistics(feats: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return np.mean(feats, axis=0), np.cov(feats, rowvar=False)


def fid_from_features(real: np.ndarray, fake: np.ndarray) -> float:
    """FID between two feature sets.

    With at least `dims` images on each side this is pytorch-fid's calculate_frechet_distance.
    With fewer (the usual case for a test split: a few hundred faces, 2048 dims) both
    covariances are low-rank and tr sqrtm(S1 S2) equals the nuclear norm of A B^T (A, B the
    centred features / sqrt(n - 1)): the same number to ~1e-7 (tests check it against
    pytorch-fid), in milliseconds instead of the ~10 s scipy's sqrtm spends on a singular
    2048 x 2048 product, which it also flags as possibly inaccurate.
    """
    if min(len(real), len(fake)) >= real.shape[1]:
        mu1, s1 = statistics(real)
        mu2, s2 = statistics(fake)
        with warnings.catch_warnings():
            # scipy 1.16+ deprecates the `disp` argument pytorch-fid passes to sqrtm
            warnings.simplefilter("ignore", DeprecationWarning)
            return float(calculate_frechet_distance(mu1, s1, mu2, s2))
    if min(len(real), len(fake)) < 2:
        return float("nan")
    mu1, mu2 = real.mean(0), fake.mean(0)
    a = (real - mu1) / np.sqrt(len(real) - 1)
    b = (fake - mu2) / np.sqrt(len(fake) - 1)
    trace_sqrt = np.linalg.svd(a @ b.T, compute_uv=False).sum()
    return float(((mu1 - mu2) ** 2).sum() + (a * a).sum() + (b * b).sum() - 2 * trace_sqrt)


def kid_from_features(
    real: np.ndarray, fake: np.ndarray, subsets: int = 100, subset_size: int = 1000, seed: int = 0
) -> float:
    """Unbiased KID; subsets of min(subset_size, N_real, N_fake) images."""
    n = min(len(real), len(fake), subset_size)
    if n < 2:
        return float("nan")
    rng = np.random.default_rng(seed)
    dims = real.shape[1]
    total = 0.0
    for _ in range(subsets):
        x = fake[rng.choice(len(fake), n, replace=False)]
        y = real[rng.choice(len(real), n, replace=False)]
        kxx = (x @ x.T / dims + 1) ** 3
        kyy = (y @ y.T / dims + 1) ** 3
        kxy = (x @ y.T / dims + 1) ** 3
        total += ((kxx.sum() - np.trace(kxx)) + (kyy.sum() - np.trace(kyy))) / (n * (n - 1)) - 2 * kxy.mean()
    return float(total / subsets)


def numerics(backbone: Backbone) -> str:
    """Where the backbone computes and how, as far as it moves the features' last bits: the
    device type, and on CUDA whether convolutions may use TF32. Reference features cached on one
    are not mixed with generated features measured on another."""
    device = next(backbone.model.parameters()).device
    if device.type != "cuda":
        return device.type
    return "cuda-tf32" if torch.backends.cudnn.allow_tf32 else "cuda-fp32"


class FidEvaluator:
    """Reference features of the real test sketches are computed once per (data fingerprint,
    split, size, channels, backbone, numerics) and kept under runs/cache/fid/. With `subsets` (one name
    per sketch) every evaluation also scores each subset on its own."""

    def __init__(
        self,
        real_sketches: torch.Tensor,
        backbone: Backbone,
        data_fingerprint: str,
        subsets: list[str] | None = None,
        split: str = "test",
        batch_size: int = 50,
        cache: Path | None = None,
        intervals: bool = False,
        names: list[str] | None = None,
        boxes: list[Box] | None = None,
    ):
        self.backbone, self.batch_size, self.intervals, self.boxes = backbone, batch_size, intervals, boxes
        self.subsets = np.array(subsets if subsets is not None else [""] * len(real_sketches))
        # which faces, in which order: runs with the same digest leave out the same faces in turn
        self.faces_digest = hashlib.sha256("\n".join(names or []).encode()).hexdigest()[:16]
        size, channels = real_sketches.shape[-1], real_sketches.shape[1]
        region = "" if boxes is None else "-face"
        key = f"{data_fingerprint}-{split}-s{size}-c{channels}{region}-u8-{backbone.key}-{numerics(backbone)}"
        path = (cache or cache_dir("fid")) / f"{key}.npz"
        if path.is_file():
            self.real = np.load(path)["features"]
        else:
            self.real = features(to_uint8(real_sketches), backbone, batch_size, boxes)
            tmp = path.with_suffix(".tmp.npz")
            np.savez(tmp, features=self.real)
            tmp.replace(path)
        self.cache_path = path

    @property
    def subset_names(self) -> list[str]:
        names = sorted(set(self.subsets.tolist()))
        return names if len(names) > 1 else []

    def features_of(self, fake_sketches: torch.Tensor) -> np.ndarray:
        return features(to_uint8(fake_sketches), self.backbone, self.batch_size, self.boxes)

    def evaluate(self, fake_sketches: torch.Tensor | None = None, fake: np.ndarray | None = None) -> dict:
        """fid, kid, n_real, n_fake overall, and per_subset {name: {fid, kid, n}}; fakes are in
        the order of the real sketches (the generator's output for each test photo), given as
        images or as their features (`fake`, from features_of). With `intervals`, each FID and
        KID also has its jackknife interval (fid_ci, kid_ci), and 'left_out' holds their values
        with each face left out in turn ({'fid': ..., 'kid.cuhk': ...}) and with each of a fixed
        set of pairs left out ({'fid~pairs': ..., 'kid.cuhk~pairs': ...})."""
        fake = self.features_of(fake_sketches) if fake is None else fake
        scores = self._scores(self.real, fake)
        scores["per_subset"] = {}
        for name in self.subset_names:
            pick = self.subsets == name
            scores["per_subset"][name] = dict(self._scores(self.real[pick], fake[pick]), n=int(pick.sum()))
        left_out = scores.pop("left_out")
        for name, sub in scores["per_subset"].items():
            for k, values in sub.pop("left_out").items():  # `fid~pairs` of cuhk: `fid.cuhk~pairs`
                metric = k.removesuffix(jackknife.PAIRED)
                left_out[keys.per_subset(metric, name) + k[len(metric) :]] = values
        return dict(scores, n_real=len(self.real), n_fake=len(fake), left_out=left_out)

    def _scores(self, real: np.ndarray, fake: np.ndarray) -> dict:
        out = dict(fid=fid_from_features(real, fake), kid=kid_from_features(real, fake), left_out={})
        if self.intervals and len(real) > 2:
            left = out["left_out"] = jackknife.left_out(real, fake)
            for metric in (keys.FID, keys.KID):
                out[f"{metric}_ci"] = list(
                    jackknife.run_interval(out[metric], left[metric], left.get(metric + jackknife.PAIRED))
                )
        return out

    def provenance(self) -> dict:
        """Run tags that say what an FID value means."""
        return {
            "fid.library": f"pytorch-fid {importlib.metadata.version('pytorch-fid')}",
            keys.FID_BACKBONE: self.backbone.name,
            "fid.weights_sha256": self.backbone.weights_sha256,
            "fid.dims": str(self.backbone.dims),
            keys.FID_N_REAL: str(len(self.real)),
            **{
                keys.per_subset(keys.FID_N_REAL, name): str(int((self.subsets == name).sum()))
                for name in self.subset_names
            },
            "fid.resize": "bilinear to 299 inside InceptionV3 (pytorch-fid), uint8 input",
            keys.FID_REGION: "canvas" if self.boxes is None else "face",
            keys.FID_QUANTIZE: QUANTIZE,
            keys.FID_COMPARABLE: "yes" if self.backbone.is_real else "NO: random-init smoke backbone",
            keys.FID_FACES: self.faces_digest,
            keys.FID_INTERVAL: jackknife.METHOD if self.intervals else "none",
        }
