"""+local: part crops on the landmarks through pad / crop / flip, part networks and fusion."""

import numpy as np
import pytest
import torch

from labkit.data.geometry import Jitter, Placement
from labkit.data.synthetic import HEIGHT, WIDTH, make_face
from labkit.models import PatchDiscriminator
from labkit.models.local import (
    FACE_PARTS,
    LOCAL_PARTS,
    REGIONS,
    LocalDiscriminators,
    LocalGenerator,
    boxes_for,
    crop,
    known_foreground,
    local_pairs,
    paste_min,
    region_masks,
)


@pytest.mark.parametrize("size", [256, 64])
@pytest.mark.parametrize("seed", range(4))
def test_part_crops_land_on_the_landmarks_after_pad_crop_flip(size, seed):
    points = np.floor(make_face(seed, seed)["landmarks"]) + 0.5
    labels = torch.zeros(HEIGHT, WIDTH, dtype=torch.long)
    for k, (x, y) in enumerate(points):
        labels[int(y) - 4 : int(y) + 5, int(x) - 4 : int(x) + 5] = k + 1  # survives nearest 4x shrinking
    place = Placement.for_image(WIDTH, HEIGHT, size)
    jitter = Jitter.draw(size, np.random.default_rng(seed + 10))
    moved = jitter.labels(place.labels(labels))
    lm = torch.tensor(jitter.points(place.points(points), size), dtype=torch.float32)[None]
    boxes = boxes_for(lm, size)
    # after a flip the dot drawn for the image-right eye is the left eye: follow the label
    label_of = {0: 1, 1: 2, 2: 3} if not jitter.flip else {0: 2, 1: 1, 2: 3}
    scale = size / 256
    for index, part in enumerate(["left_eye", "right_eye", "nose"]):
        patch = crop(moved[None, None], boxes[part])[0, 0]
        ys, xs = torch.nonzero(patch == label_of[index], as_tuple=True)
        assert len(xs), part
        h, w = patch.shape
        centre = np.array([xs.float().mean() + 0.5, ys.float().mean() + 0.5])
        shift = (4 if "eye" in part else 8) * scale  # boxes sit 4 px (eyes) and 8 px (nose) above, at 256
        assert np.abs(centre - [w / 2, h / 2 + shift]).max() <= 1.0 + scale, part
    mouth = crop(moved[None, None], boxes["mouth"])[0, 0]
    assert (mouth == 4).any() and (mouth == 5).any()


def test_local_generator_and_discriminators_shapes():
    size = 64
    g = LocalGenerator(3, 1, size, ngf=4)
    lm = torch.tensor([[[25.0, 28], [39, 28], [32, 36], [26, 43], [38, 43]]]).repeat(2, 1, 1)
    mask = torch.zeros(2, size, size, dtype=torch.long)
    mask[:, :10] = 2  # hair on top
    out = g(torch.randn(2, 3, size, size), lm, mask)
    assert out["fake"].shape == out["composite"].shape == out["global_out"].shape == (2, 1, size, size)
    assert set(out["parts"]) == set(FACE_PARTS) and set(out["regions"]) == set(REGIONS)
    d = LocalDiscriminators(4, size, ndf=4)
    assert set(d.nets) == set(LOCAL_PARTS)
    pairs = local_pairs(torch.randn(2, 3, size, size), out["fake"], out)
    for p in FACE_PARTS:
        x, y, w, h = out["boxes"][p][0]
        assert out["parts"][p].shape == (2, 1, h, w) and pairs[p].shape == (2, 4, h, w)
    for name, pair in pairs.items():
        logits = d(name, pair)
        assert logits.shape[:2] == (2, 1) and logits.shape[2] >= 1


def _count(net: torch.nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def test_local_networks_have_apdrawinggans_sizes_at_256():
    """Parameter counts of yiranran/APDrawingGAN's networks at its defaults (ngf = ndf = 64,
    1-channel sketches), as define_G / define_D build them in models/networks.py: `partunet` (nnG
    3) for each face part, `partunet2` (nnG 4) for hair and background, `combiner` (n_blocks 2)."""
    g = LocalGenerator(3, 1, 256, ngf=64)
    assert {p: _count(g.parts[p]) for p in FACE_PARTS} == dict.fromkeys(FACE_PARTS, 1_447_553)
    assert {r: _count(g.regions[r]) for r in REGIONS} == dict.fromkeys(REGIONS, 1_710_209)
    assert _count(g.fusion) == 157_505
    assert _count(g.global_net) == 54_409_857  # pix2pix's unet_256

    def dropouts(net):
        return [m.p for m in net.modules() if isinstance(m, torch.nn.Dropout)]

    assert dropouts(g.fusion) == [0.5, 0.5]  # both residual blocks
    assert all(dropouts(g.regions[r]) == [0.5] for r in REGIONS)  # partunet2's middle level
    assert all(dropouts(g.parts[p]) == [] for p in FACE_PARTS)
    # six local discriminators, each the global one's architecture (upstream: define_D with the
    # same arguments): 3-layer PatchGANs at 256
    d = LocalDiscriminators(4, 256, ndf=64)
    assert {n: _count(net) for n, net in d.nets.items()} == dict.fromkeys(
        LOCAL_PARTS, _count(PatchDiscriminator(4, 64))
    )


def test_hair_is_the_foreground_outside_the_parts_and_background_the_rest():
    size = 64
    lm = torch.tensor([[[25.0, 28], [39, 28], [32, 36], [26, 43], [38, 43]]]).repeat(2, 1, 1)
    boxes = boxes_for(lm, size)
    photo = torch.zeros(2, 3, size, size)
    mask = torch.full((2, size, size), 1)  # skin ...
    mask[:, :, :8] = 0  # ... with a background strip on the left
    mask[1] = -1  # the second face has no parsing map
    areas = region_masks(mask, boxes, photo)
    in_boxes = torch.zeros(2, 1, size, size, dtype=torch.bool)
    for p in FACE_PARTS:
        for i, (x, y, w, h) in enumerate(boxes[p]):
            in_boxes[i, :, y : y + h, x : x + w] = True
    background = torch.zeros(2, 1, size, size)
    background[0, :, :, :8] = 1
    assert torch.equal(areas["background"], background)
    assert torch.equal(areas["hair"], ((~in_boxes) & (background == 0)).float())
    assert known_foreground(mask).tolist() == [True, False]
    assert torch.equal(region_masks(None, boxes, photo)["hair"], (~in_boxes).float())  # no maps: the rule


def test_the_composite_is_the_minimum_of_all_six_on_white():
    size = 64
    g = LocalGenerator(3, 1, size, ngf=4).eval()
    lm = torch.tensor([[[25.0, 28], [39, 28], [32, 36], [26, 43], [38, 43]]])
    mask = torch.full((1, size, size), 1)
    mask[:, :, :8] = 0
    with torch.no_grad():
        out = g(torch.randn(1, 3, size, size), lm, mask)
    expected = torch.ones(1, 1, size, size)
    for r in REGIONS:
        area = out["areas"][r]
        assert torch.equal(out["regions"][r] * (1 - area), -(1 - area))  # black outside the region
        expected = torch.minimum(expected, torch.where(area > 0, out["regions"][r], torch.ones_like(area)))
    for p in FACE_PARTS:
        expected = paste_min(expected, out["parts"][p], out["boxes"][p])
    assert torch.allclose(out["composite"], expected)


def test_composite_is_the_minimum_of_parts_on_white():
    canvas = torch.ones(1, 1, 8, 8)
    dark, light = torch.full((1, 1, 2, 2), -1.0), torch.full((1, 1, 2, 2), 0.5)
    out = paste_min(paste_min(canvas, dark, [(1, 1, 2, 2)]), light, [(2, 2, 2, 2)])
    assert out[0, 0, 1, 1] == -1 and out[0, 0, 2, 2] == -1  # the darker stroke wins in the overlap
    assert out[0, 0, 3, 3] == 0.5 and out[0, 0, 7, 7] == 1


def test_local_needs_landmarks():
    with pytest.raises(ValueError, match="labkit landmarks"):
        boxes_for(torch.full((1, 5, 2), float("nan")), 64)


def test_local_losses_cover_all_six_regions(tiny_cfg):
    """G_local is upstream's sum over eyel, eyer, nose, mouth, hair and bg of L1(local output,
    real sketch there), and one D step trains all six local discriminators."""
    from labkit.data import load_faces
    from labkit.models.local import masked
    from labkit.train import Pix2Pix

    cfg = tiny_cfg(local=True, batch_size=2)
    data = load_faces(cfg, progress=False)
    model = Pix2Pix(cfg, torch.device("cpu"))
    batch = data.train.batch([0, 1], torch.device("cpu"))
    out = model.forward(batch["photo"], batch["landmarks"], batch["mask"])
    terms = model.generator_terms(batch["photo"], batch["sketch"], out)

    def l1(a, b):
        return (a - b).abs().mean()

    by_hand = sum(l1(out["parts"][p], crop(batch["sketch"], out["boxes"][p])) for p in FACE_PARTS) + sum(
        l1(out["regions"][r], masked(batch["sketch"], out["areas"][r])) for r in REGIONS
    )
    assert torch.allclose(terms["G_local"], cfg.lambda_local * by_hand)
    assert out["areas"]["background"].sum() > 0 and out["areas"]["hair"].sum() > 0
    before = {n: [p.detach().clone() for p in net.parameters()] for n, net in model.D_parts.nets.items()}
    model.train_step(batch)
    for name, net in model.D_parts.nets.items():
        assert any(not torch.equal(a, b) for a, b in zip(before[name], net.parameters())), name


@pytest.mark.parametrize("fusion", ["blend", "attention"])
def test_blend_and_attention_weights_are_convex_over_what_is_there(fusion):
    size = 64
    g = LocalGenerator(3, 1, size, ngf=4, fusion=fusion).eval()
    lm = torch.tensor([[[25.0, 28], [39, 28], [32, 36], [26, 43], [38, 43]]]).repeat(2, 1, 1)
    with torch.no_grad():
        out = g(torch.randn(2, 3, size, size), lm, None)
    weights = out["weights"]
    if fusion == "blend":
        m = weights["local"]
        assert ((m >= 0) & (m <= 1)).all()
        assert torch.allclose(out["fake"], m * out["composite"] + (1 - m) * out["global_out"], atol=1e-6)
        return
    assert list(weights) == ["global", *FACE_PARTS, *REGIONS]
    total = sum(weights.values())
    assert torch.allclose(total, torch.ones_like(total), atol=1e-5)
    x, y, w, h = out["boxes"]["nose"][0]
    nose = weights["nose"][0]
    outside = torch.ones_like(nose, dtype=torch.bool)
    outside[y : y + h, x : x + w] = False
    assert nose[~outside].min() > 0 and (nose[outside] == 0).all()  # weight inside its box only
    assert weights["background"].sum() == 0  # no parsing maps: no background region
    assert out["fake"].min() >= -1 and out["fake"].max() <= 1


def test_the_none_control_has_the_combiner_models_parameter_count():
    with torch.device("meta"):
        combiner, none = (LocalGenerator(3, 1, 256, ngf=64, fusion=f) for f in ("combiner", "none"))
        assert abs(_count(none) / _count(combiner) - 1) < 0.01
    assert none.fusion is None and not len(none.parts) and not len(none.regions)


def test_every_fusion_the_config_accepts_is_built():
    import dataclasses

    from labkit.config import SketchConfig
    from labkit.models.fusion import FUSIONS

    field = {f.name: f for f in dataclasses.fields(SketchConfig)}["fusion"]
    assert field.metadata["choices"] == FUSIONS and field.default == FUSIONS[0] == "combiner"
