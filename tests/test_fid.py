"""FID is pytorch-fid's number; the weights are loaded the real way; the smoke backbone informs."""

import warnings

import numpy as np
import pytest
import torch
from PIL import Image
from pytorch_fid.fid_score import calculate_fid_given_paths
from skimage import data as skdata

from labkit import weights as weights_module
from labkit.metrics import (
    FidEvaluator,
    features,
    fid_from_features,
    kid_from_features,
    load_backbone,
    to_uint8,
    weights_path,
)
from labkit.metrics import backbone as backbone_module
from labkit.metrics import fid as fid_module


@pytest.fixture
def cached_weights(lab):
    """A weights file the test makes, where pytorch-fid's loader looks for the real one."""
    path = weights_path()
    path.parent.mkdir(parents=True)
    torch.save(backbone_module._kaiming_fid_inception().state_dict(), path)
    return path


def _patches(image, n, size, rng):
    """n random size x size crops of a real photo or texture, as [-1, 1] tensors."""
    img = torch.from_numpy(np.asarray(image)).float().div(127.5).sub(1)
    img = img.permute(2, 0, 1) if img.ndim == 3 else img[None]
    out = []
    for _ in range(n):
        y, x = rng.integers(0, img.shape[1] - size), rng.integers(0, img.shape[2] - size)
        out.append(img[:, y : y + size, x : x + size])
    return torch.stack(out)


def test_missing_weights_stop_with_the_file_and_place(lab, monkeypatch, capsys):
    def offline(url, dest, timeout=30.0):
        raise OSError("network unreachable")

    monkeypatch.setattr(weights_module, "_download", offline)
    with pytest.raises(weights_module.WeightsUnavailable) as err:
        load_backbone("inception")
    message = str(err.value)
    assert "pt_inception-2015-12-05-6726825d.pth" in message and str(weights_path()) in message
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # said as output, once: no warning (a notebook draws one as an error)
        assert load_backbone("auto", dims=64).name == "random-init"
    assert "FID BACKBONE FALLBACK: random-init" in capsys.readouterr().out


def _write_pngs(folder, images):
    folder.mkdir()
    for i, img in enumerate(to_uint8(images)):
        Image.fromarray(img.permute(1, 2, 0).numpy()).save(folder / f"{i:03d}.png")
    return str(folder)


@pytest.mark.slow
@pytest.mark.parametrize("n", [70, 20])  # full-rank covariances (N > 64 dims), and low-rank ones
def test_fid_equals_pytorch_fid_on_the_same_files_and_weights(cached_weights, tmp_path, n):
    rng = np.random.default_rng(0)
    real = _patches(skdata.brick(), n, 48, rng)
    fake = _patches(skdata.gravel(), n + 5, 48, rng)
    folders = [_write_pngs(tmp_path / "real", real), _write_pngs(tmp_path / "fake", fake)]
    expected = calculate_fid_given_paths(folders, batch_size=25, device="cpu", dims=64, num_workers=0)

    backbone = load_backbone("inception", dims=64)
    assert backbone.name == "inception" and backbone.is_real
    ours = fid_from_features(features(to_uint8(real), backbone), features(to_uint8(fake), backbone))
    assert ours == pytest.approx(expected, rel=1e-5)
    assert ours > 0.05  # two different textures: far from zero


def test_one_channel_sketches_are_seen_as_rgb(lab):
    gray = torch.rand(3, 1, 8, 8) * 2 - 1
    rgb = to_uint8(gray)
    assert rgb.shape == (3, 3, 8, 8) and torch.equal(rgb[:, 0], rgb[:, 2])


@pytest.mark.slow
def test_random_init_backbone_gives_informative_fid(lab):
    """Kaiming init: similar sets score low, different sets high (default init gives ~0 for all)."""
    rng = np.random.default_rng(1)
    backbone = load_backbone("random-init", dims=64)
    brick_a, brick_b = _patches(skdata.brick(), 80, 48, rng), _patches(skdata.brick(), 80, 48, rng)
    grass = _patches(skdata.grass(), 80, 48, rng)
    fa, fb, fg = (features(to_uint8(x), backbone) for x in (brick_a, brick_b, grass))
    same, different = fid_from_features(fa, fb), fid_from_features(fa, fg)
    assert different > 5 * same and different > 1e-2
    assert load_backbone("random-init", dims=64).weights_sha256 == backbone.weights_sha256  # fixed seed


def test_kid_matches_a_direct_computation():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(12, 5)), rng.normal(0.5, 1, size=(12, 5))
    k = lambda a, b: (a @ b.T / 5 + 1) ** 3  # noqa: E731
    n = 12
    direct = (
        (k(y, y).sum() - np.trace(k(y, y))) / (n * (n - 1))
        + (k(x, x).sum() - np.trace(k(x, x))) / (n * (n - 1))
        - 2 * k(y, x).mean()
    )
    # with subsets of all images, every subset is the whole set
    assert kid_from_features(x, y, subsets=3) == pytest.approx(direct)
    assert abs(kid_from_features(x, x + 1e-9, subsets=3)) < abs(direct)


def test_reference_features_are_cached(lab):
    backbone = load_backbone("random-init", dims=64)
    sketches = torch.rand(5, 1, 32, 32) * 2 - 1
    first = FidEvaluator(sketches, backbone, "abc")
    assert first.cache_path.is_file() and first.cache_path.is_relative_to(lab)
    cached = np.load(first.cache_path)["features"]
    second = FidEvaluator(torch.zeros_like(sketches), backbone, "abc")  # same key: read, not recomputed
    assert np.array_equal(second.real, cached)
    scores = first.evaluate(sketches)
    assert scores["n_real"] == scores["n_fake"] == 5 and scores["fid"] == pytest.approx(0, abs=1e-3)
    assert first.provenance()["fid.backbone"] == "random-init"
    assert first.provenance()["fid.comparable"].startswith("NO")
    # features cached on one device (or with TF32 on CUDA) are not read back for another
    assert first.cache_path.stem.endswith("-cpu")
    backbone.model.to("meta")
    assert fid_module.numerics(backbone) == "meta"


@pytest.mark.slow
def test_per_subset_fid_and_kid_match_a_direct_computation(lab):
    """Each subset's FID is the textbook formula on that subset's features alone."""
    from scipy import linalg

    rng = np.random.default_rng(2)
    backbone = load_backbone("random-init", dims=64)
    real = torch.cat([_patches(skdata.brick(), 70, 32, rng), _patches(skdata.grass(), 70, 32, rng)])
    fake = torch.cat([_patches(skdata.gravel(), 70, 32, rng), _patches(skdata.grass(), 70, 32, rng)])
    subsets = ["cuhk"] * 70 + ["ar"] * 70
    fr, ff = features(to_uint8(real), backbone), features(to_uint8(fake), backbone)
    scores = FidEvaluator(real, backbone, "direct", subsets=subsets).evaluate(fake=ff)  # the fakes' features once
    for name, pick in (("cuhk", slice(0, 70)), ("ar", slice(70, 140))):
        x, y = fr[pick], ff[pick]
        mu1, mu2, s1, s2 = x.mean(0), y.mean(0), np.cov(x, rowvar=False), np.cov(y, rowvar=False)
        direct = ((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * linalg.sqrtm(s1 @ s2).real)
        assert scores["per_subset"][name]["fid"] == pytest.approx(direct, rel=1e-5)
        assert scores["per_subset"][name]["kid"] == pytest.approx(kid_from_features(x, y))
        assert scores["per_subset"][name]["n"] == 70
    assert scores["per_subset"]["ar"]["fid"] < scores["per_subset"]["cuhk"]["fid"]  # grass vs grass is closer


def test_fid_of_the_face_region_measures_each_face_rectangle(lab):
    """fid_region face: each sketch's own rectangle on the canvas, rectangles of one size measured
    together, in the faces' order; the reference features cached apart from the canvas's."""
    backbone = load_backbone("random-init", dims=64)
    images = torch.randint(0, 256, (3, 3, 40, 40), dtype=torch.uint8)
    boxes = [(4, 6, 30, 24), (0, 0, 40, 40), (5, 7, 30, 24)]
    measured = fid_module.features(images, backbone, boxes=boxes)
    for i, (top, left, h, w) in enumerate(boxes):
        alone = fid_module.features(images[i : i + 1, :, top : top + h, left : left + w], backbone)
        assert np.allclose(measured[i], alone[0], atol=1e-6)
    sketches = torch.rand(3, 1, 40, 40) * 2 - 1
    face, canvas = FidEvaluator(sketches, backbone, "abc", boxes=boxes), FidEvaluator(sketches, backbone, "abc")
    assert face.cache_path != canvas.cache_path and not np.allclose(face.real, canvas.real)
    assert face.provenance()["fid.region"] == "face" and canvas.provenance()["fid.region"] == "canvas"
    assert face.provenance()["fid.quantize"] == "round"
    assert face.evaluate(sketches)["fid"] == pytest.approx(0, abs=1e-3)


def test_runs_generated_in_another_mode_are_refused_in_one_table():
    """As FIDs of another backbone: eval-mode and train-mode FIDs, or the face's and the canvas's,
    do not share a table; runs logged before the tags read as eval mode on the canvas."""
    import pandas as pd

    from labkit.compare import check_measurements
    from labkit.config import ParamError

    def run(**tags):
        return {"tags.fid.backbone": "inception", "tags.fid.n_real": "338", "tags.fid.faces": "f00d", **tags}

    older, eval_mode = run(), run(**{"tags.fid.inference": "eval", "tags.fid.region": "canvas"})
    check_measurements(pd.DataFrame([older, eval_mode]), mixed=False)
    for other in ({"tags.fid.inference": "train"}, {"tags.fid.region": "face"}):
        runs = pd.DataFrame([eval_mode, run(**{"tags.fid.inference": "eval", "tags.fid.region": "canvas", **other})])
        with pytest.raises(ParamError, match="(?s)measured differently.*inference modes or regions"):
            check_measurements(runs, mixed=False)
        check_measurements(runs, mixed=True)
