"""+local: part crops on the landmarks through pad / crop / flip, part networks and fusion."""
import numpy as np
import pytest
import torch

from labkit.data.geometry import Jitter, Placement
from labkit.data.synthetic import HEIGHT, WIDTH, make_face
from labkit.models.local import FACE_PARTS, LocalGenerator, PartDiscriminators, boxes_for, crop, paste_min


@pytest.mark.parametrize("size", [256, 64])
@pytest.mark.parametrize("seed", range(4))
def test_part_crops_land_on_the_landmarks_after_pad_crop_flip(size, seed):
    points = np.floor(make_face(seed, seed)["landmarks"]) + 0.5
    labels = torch.zeros(HEIGHT, WIDTH, dtype=torch.long)
    for k, (x, y) in enumerate(points):
        labels[int(y) - 4:int(y) + 5, int(x) - 4:int(x) + 5] = k + 1  # survives nearest 4x shrinking
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
        shift = 4 * scale if "eye" in part else 0  # eye boxes sit 4 px (at 256) above the eye
        assert np.abs(centre - [w / 2, h / 2 + shift]).max() <= 1.0 + scale, part
    mouth = crop(moved[None, None], boxes["mouth"])[0, 0]
    assert (mouth == 4).any() and (mouth == 5).any()


def test_local_generator_and_part_discriminators_shapes():
    size = 64
    g = LocalGenerator(3, 1, size, ngf=4, ngf_local=4, hair_background=True)
    lm = torch.tensor([[[25.0, 28], [39, 28], [32, 36], [26, 43], [38, 43]]]).repeat(2, 1, 1)
    mask = torch.zeros(2, size, size, dtype=torch.long)
    mask[:, :10] = 2  # hair on top
    out = g(torch.randn(2, 3, size, size), lm, mask)
    assert out["fake"].shape == out["composite"].shape == out["global_out"].shape == (2, 1, size, size)
    assert set(out["parts"]) == set(FACE_PARTS)
    d = PartDiscriminators(4, size, ndf=4)
    for p in FACE_PARTS:
        x, y, w, h = out["boxes"][p][0]
        assert out["parts"][p].shape == (2, 1, h, w)
        logits = d(p, torch.cat([crop(torch.randn(2, 3, size, size), out["boxes"][p]), out["parts"][p]], 1))
        assert logits.shape[:2] == (2, 1) and logits.shape[2] >= 1


def test_composite_is_the_minimum_of_parts_on_white():
    canvas = torch.ones(1, 1, 8, 8)
    dark, light = torch.full((1, 1, 2, 2), -1.0), torch.full((1, 1, 2, 2), 0.5)
    out = paste_min(paste_min(canvas, dark, [(1, 1, 2, 2)]), light, [(2, 2, 2, 2)])
    assert out[0, 0, 1, 1] == -1 and out[0, 0, 2, 2] == -1  # the darker stroke wins in the overlap
    assert out[0, 0, 3, 3] == 0.5 and out[0, 0, 7, 7] == 1


def test_local_needs_landmarks():
    with pytest.raises(ValueError, match="labkit landmarks"):
        boxes_for(torch.full((1, 5, 2), float("nan")), 64)
