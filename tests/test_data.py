"""The synthetic face set and the folder loader, including the files that go wrong."""

import csv
import hashlib

import numpy as np
import pytest
from PIL import Image

from labkit.data import DataError, find_pairs, fingerprint, load_faces, write_synthetic_set
from labkit.data.images import read_image
from labkit.data.synthetic import HEIGHT, LABELS, WIDTH, make_face


def _digest(folder):
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_synthetic_set_is_deterministic_and_complete(tmp_path):
    a = write_synthetic_set(tmp_path / "a", count=9, seed=3, progress=False)
    b = write_synthetic_set(tmp_path / "b", count=9, seed=3, progress=False)
    c = write_synthetic_set(tmp_path / "c", count=9, seed=4, progress=False)
    assert _digest(a) == _digest(b)
    assert _digest(a)["photos/cuhk-0000.png"] != _digest(c)["photos/cuhk-0000.png"]
    pairs = find_pairs(a)
    assert len(pairs) == 9 and {p.subset for p in pairs} == {"cuhk", "ar", "xm2vts"}
    assert {p.split for p in pairs} == {"train", "test"}
    with Image.open(pairs[0].photo) as photo, Image.open(pairs[0].sketch) as sketch:
        assert photo.size == sketch.size == (WIDTH, HEIGHT)
        assert photo.mode == "RGB" and sketch.mode == "L"


def test_synthetic_faces_look_like_their_description():
    face = make_face(0, 1)
    mask, sketch, photo = face["mask"], face["sketch"], face["photo"]
    assert set(np.unique(mask)) == set(LABELS.values())
    for k, (x, y) in enumerate(face["landmarks"]):
        label = mask[int(y), int(x)]
        assert label == (LABELS["eyes"] if k < 2 else LABELS["nose"] if k == 2 else LABELS["mouth"]), k
    # a drawing: mostly white paper with dark lines, not a filtered photo
    assert np.mean(sketch > 200) > 0.6 and np.mean(sketch < 100) > 0.02
    assert photo.reshape(-1, 3).std(0).min() > 10  # coloured, shaded
    assert np.abs(np.corrcoef(photo.mean(2).ravel(), sketch.ravel())[0, 1]) < 0.9


def test_misalignment_moves_the_sketch_only():
    aligned, moved = make_face(0, 2, misalign=0), make_face(0, 2, misalign=6)
    assert np.array_equal(aligned["photo"], moved["photo"])
    assert np.array_equal(aligned["landmarks"], moved["landmarks"])
    assert not np.array_equal(aligned["sketch"], moved["sketch"])


def _layout(root, names=("cuhk-0001", "cuhk-0002", "ar-0003", "xm2vts-0004")):
    for sub in ("photos", "sketches"):
        (root / sub).mkdir(parents=True)
    for name in names:
        Image.new("RGB", (WIDTH, HEIGHT), (200, 150, 120)).save(root / "photos" / f"{name}.jpg")
        Image.new("L", (WIDTH, HEIGHT), 240).save(root / "sketches" / f"{name}-sz1.png")
    return root


def test_pairs_by_stem_with_suffix_and_default_split(tmp_path):
    pairs = find_pairs(_layout(tmp_path / "d"))
    assert [p.name for p in pairs] == ["ar-0003", "cuhk-0001", "cuhk-0002", "xm2vts-0004"]
    assert [p.subset for p in pairs] == ["ar", "cuhk", "cuhk", "xm2vts"]
    # no split file, no train/test folders, too few for the papers' split: every 4th per subset
    assert [p.split for p in pairs] == ["test", "test", "train", "test"]


def test_missing_pairs_are_named_or_skipped(tmp_path):
    root = _layout(tmp_path / "d")
    (root / "photos" / "cuhk-0002.jpg").unlink()
    Image.new("RGB", (WIDTH, HEIGHT)).save(root / "photos" / "lonely.png")
    with pytest.raises(DataError) as err:
        find_pairs(root)
    assert "photo photos/lonely.png has no sketch" in str(err.value)
    assert "sketch sketches/cuhk-0002-sz1.png has no photo" in str(err.value)
    with pytest.warns(UserWarning, match="leaving out 2 unpaired"):
        pairs = find_pairs(root, skip_missing=True)
    assert len(pairs) == 3


def test_wrong_layout_says_what_it_found(tmp_path):
    (tmp_path / "x" / "images").mkdir(parents=True)
    with pytest.raises(DataError, match=r"no face data layout recognised .* found \['images/'\]"):
        find_pairs(tmp_path / "x")


def test_split_file_is_respected_and_checked(tmp_path):
    root = _layout(tmp_path / "d")
    rows = [
        ["name", "subset", "split"],
        ["cuhk-0001", "cuhk", "test"],
        ["cuhk-0002", "cuhk", "train"],
        ["ar-0003", "ar", "train"],
        ["xm2vts-0004", "xm2vts", "validation"],
    ]
    with open(root / "split.csv", "w", newline="") as f:
        csv.writer(f).writerows(rows)
    with pytest.raises(DataError, match=r"split.csv:5: split must be 'train' or 'test'"):
        find_pairs(root)
    rows[-1][2] = "train"
    with open(root / "split.csv", "w", newline="") as f:
        csv.writer(f).writerows(rows)
    assert {p.name: p.split for p in find_pairs(root)}["cuhk-0001"] == "test"


def test_odd_image_modes_are_converted(tmp_path):
    base = np.linspace(0, 255, WIDTH * HEIGHT).reshape(HEIGHT, WIDTH).astype(np.uint8)
    images = {
        "gray.png": Image.fromarray(base),
        "palette.png": Image.fromarray(np.stack([base] * 3, 2)).convert("P"),
        "rgba.png": Image.fromarray(np.dstack([np.stack([base] * 3, 2), np.zeros_like(base)])),
        "cmyk.jpg": Image.fromarray(np.stack([base] * 3, 2)).convert("CMYK"),
        "16bit.png": Image.fromarray(base.astype(np.uint16) * 257),
    }
    for name, img in images.items():
        img.save(tmp_path / name)
        rgb, gray = read_image(tmp_path / name, 3), read_image(tmp_path / name, 1)
        assert rgb.shape == (HEIGHT, WIDTH, 3) and gray.shape == (HEIGHT, WIDTH), name
    assert (read_image(tmp_path / "rgba.png", 3) == 255).all()  # transparent -> white paper
    assert np.abs(read_image(tmp_path / "16bit.png", 1).astype(int) - base).max() <= 1


def test_corrupt_file_is_named(tmp_path, lab, tiny_cfg):
    root = write_synthetic_set(tmp_path / "d", count=6, progress=False)
    (root / "photos" / "ar-0001.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    with pytest.raises(DataError, match=r"ar-0001.png: cannot read this image"):
        load_faces(tiny_cfg(data_root=str(root)), progress=False)


def test_fingerprint_follows_the_bytes(tmp_path):
    root = write_synthetic_set(tmp_path / "d", count=6, progress=False)
    before = fingerprint(find_pairs(root))
    assert before == fingerprint(find_pairs(root))
    Image.new("L", (WIDTH, HEIGHT), 0).save(root / "sketches" / "cuhk-0000.png")
    assert fingerprint(find_pairs(root)) != before


def test_load_faces_builds_the_synthetic_set_once(lab, tiny_cfg):
    cfg = tiny_cfg(image_size=64)
    data = load_faces(cfg, progress=False)
    assert data.synthetic and data.root.is_relative_to(lab)
    item = data.test[0]
    assert item["photo"].shape == (3, 64, 64) and item["sketch"].shape == (1, 64, 64)
    assert item["photo"].min() >= -1 and item["photo"].max() <= 1
    stamp = (data.root / "manifest.json").stat().st_mtime_ns
    assert load_faces(cfg, progress=False).fingerprint == data.fingerprint
    assert (data.root / "manifest.json").stat().st_mtime_ns == stamp
