"""Pad and pad-crop-flip keep photo, sketch, mask and landmarks on the same face."""

import numpy as np
import pytest
import torch

from labkit.data.geometry import FLIP_ORDER, Jitter, Placement, train_pad
from labkit.data.images import DataError
from labkit.data.synthetic import HEIGHT, WIDTH, make_face


def _dots(points, width, height, r=4):
    """A white image with a dark square dot at each landmark, and labels 1..5 marking them."""
    img = torch.ones(1, height, width)
    labels = torch.zeros(height, width, dtype=torch.long)
    for k, (x, y) in enumerate(points):
        xi, yi = int(x), int(y)
        img[0, yi - r : yi + r + 1, xi - r : xi + r + 1] = -1
        labels[yi - r : yi + r + 1, xi - r : xi + r + 1] = k + 1
    return img, labels


def _centroids(labels):
    out = []
    for k in range(1, 6):
        ys, xs = torch.nonzero(labels == k, as_tuple=True)
        out.append([xs.float().mean() + 0.5, ys.float().mean() + 0.5])  # pixel centres
    return np.array(out)


def test_padding_at_256_matches_the_paper_setting():
    place = Placement.for_image(WIDTH, HEIGHT, 256)
    assert (place.scale_x, place.scale_y, place.left, place.top) == (1.0, 1.0, 28, 3)
    assert train_pad(256) == 30 and train_pad(64) == 8


def test_oversized_image_is_refused_with_its_name():
    with pytest.raises(DataError, match="big.png: 300 x 250 does not fit"):
        Placement.for_image(300, 250, 256, source="big.png")


@pytest.mark.parametrize("size", [256, 64])
@pytest.mark.parametrize("seed", range(6))
def test_landmarks_follow_pad_crop_flip(size, seed):
    face = make_face(seed, seed)
    points = np.floor(face["landmarks"]) + 0.5  # on pixel centres so the dot's centroid is exact
    img, labels = _dots(points, WIDTH, HEIGHT)
    place = Placement.for_image(WIDTH, HEIGHT, size)
    placed_labels = place.labels(labels)
    placed_points = place.points(points)
    tolerance = 0.01 if size == 256 else 1.0  # nearest-neighbour resizing moves a dot by < 1 px
    assert np.abs(_centroids(placed_labels) - placed_points).max() < tolerance
    jitter = Jitter.draw(size, np.random.default_rng(seed))
    moved = jitter.labels(placed_labels)
    expected = jitter.points(placed_points, size)
    got = _centroids(moved)
    if jitter.flip:  # label k marks landmark k before the flip: it is now landmark FLIP_ORDER[k]
        got = got[FLIP_ORDER]
    assert np.abs(got - expected).max() < tolerance
    if size == 256:  # no resizing: image pixels and labels move exactly together
        photo = jitter.image(place.image(img))
        assert torch.equal(photo[0] < 0, moved > 0)


def test_flip_keeps_left_eye_on_the_image_left():
    points = make_face(0, 0)["landmarks"]
    jitter = Jitter(pad=8, x=4, y=4, flip=True)
    out = jitter.points(points, 256)
    assert out[0, 0] < out[1, 0] and out[3, 0] < out[4, 0]
    assert np.allclose(out[2], [256 - points[2, 0], points[2, 1]])


def test_training_samples_share_one_jitter(lab, tiny_cfg):
    from labkit.data import load_faces

    data = load_faces(tiny_cfg(image_size=64), progress=False)
    for epoch in range(3):
        data.train.set_epoch(epoch)
        item = data.train[0]
        base = data.train.item(0)
        jitter = Jitter.draw(64, np.random.default_rng([data.train.seed, epoch, 0]))
        assert torch.equal(item["photo"], jitter.image(base["photo"]))
        assert torch.equal(item["sketch"], jitter.image(base["sketch"]))
        assert torch.equal(item["mask"], jitter.labels(base["mask"]))
        assert np.allclose(item["landmarks"].numpy(), jitter.points(base["landmarks"], 64), atol=1e-4)


def test_a_batch_jittered_on_the_device_equals_each_face_jittered_alone(lab, tiny_cfg):
    from labkit.data import load_faces

    data = load_faces(tiny_cfg(image_size=64), progress=False)
    data.train.set_epoch(2)
    indices = [3, 0, 5, 1, 4]
    batch = data.train.batch(indices, torch.device("cpu"))
    assert batch["photo"].dtype == torch.float32 and data.train.bank["photo"].dtype == torch.uint8
    for row, index in enumerate(indices):
        one = data.train[index]
        for key in ("photo", "sketch", "mask"):
            assert torch.equal(batch[key][row], one[key]), (index, key)
        assert torch.allclose(batch["landmarks"][row], one["landmarks"])
