"""Real face data as researchers have it: CUFS's own folders and names, pix2pix aligned
images, photo / sketch folders; split, subsets, odd sizes, masks, landmarks, bad files."""

import csv
import json

import numpy as np
import pytest
from PIL import Image

from labkit.data import DataError, find_pairs, load_faces
from labkit.data.layout import LANDMARK_COLUMNS, detect_layout, read_pair
from labkit.data.names import pair_key, subset_of, usual_split

W, H = 200, 250
CUFS = {  # folder -> (photos, sketches), real CUFS file names
    "CUHK/Training photo": ["f-005-01.jpg", "m-008-01.jpg", "f1-001-01.jpg"],
    "CUHK/Training sketch": ["F2-005-01-sz1.jpg", "m2-008-01-sz1.jpg", "f1-001-01-sz1.jpg"],
    "CUHK/Testing photo": ["m-063-01.jpg", "m1-001-01.jpg"],
    "CUHK/Testing sketch": ["m-063-01-sz1.jpg", "M1-001-01-sz1.jpg"],
    "AR/photo": ["m-002-1.bmp", "w-001-1.bmp"],
    "AR/sketch": ["Mp-002-1-sz1.jpg", "Wp-001-1-sz1.jpg"],
    "XM2VTS/photo": ["000_1_1.jpg", "001_1_1.jpg"],
    "XM2VTS/sketch": ["000_1_1-sz1.jpg", "001_1_1-sz1.jpg"],
}


def _face(colour, mode="RGB", size=(W, H)):
    return Image.new(mode, size, colour)


def _cufs(root):
    for folder, names in CUFS.items():
        (root / folder).mkdir(parents=True)
        for i, name in enumerate(names):
            img = _face((40 * i, 90, 160)) if "photo" in folder else _face(230 - i, "L")
            img.save(root / folder / name)
    return root


def test_cufs_names_pair_up_with_subsets_and_folder_splits(tmp_path):
    root = _cufs(tmp_path / "CUFS")
    assert detect_layout(root) == "cufs"
    pairs = {p.name: p for p in find_pairs(root)}
    assert len(pairs) == 9
    assert pairs["f-005-01"].sketch.name == "F2-005-01-sz1.jpg"
    assert pairs["m-008-01"].sketch.name == "m2-008-01-sz1.jpg"
    assert pairs["m-063-01"].sketch.name == "m-063-01-sz1.jpg"
    assert pairs["m-002-1"].sketch.name == "Mp-002-1-sz1.jpg" and pairs["w-001-1"].sketch.name == "Wp-001-1-sz1.jpg"
    assert pairs["000_1_1"].sketch.name == "000_1_1-sz1.jpg"
    assert {n: p.subset for n, p in pairs.items()} == {
        "f-005-01": "cuhk",
        "m-008-01": "cuhk",
        "f1-001-01": "cuhk",
        "m-063-01": "cuhk",
        "m1-001-01": "cuhk",
        "m-002-1": "ar",
        "w-001-1": "ar",
        "000_1_1": "xm2vts",
        "001_1_1": "xm2vts",
    }
    assert pairs["f-005-01"].split == "train" and pairs["m-063-01"].split == "test"  # from the folders


def test_cufs_without_folders_names_still_give_the_subset():
    assert subset_of(pair_key("F2-005-01-sz1")) == "cuhk"
    assert subset_of(pair_key("Wp-001-1-sz1")) == "ar"
    assert subset_of(pair_key("012_1_1")) == "xm2vts"
    assert subset_of("x-1", ("CUHK_student",)) == "cuhk"


def test_the_papers_split_is_the_default():
    keys = {
        "cuhk": [f"f-{i:03d}-01" for i in range(188)],
        "ar": [f"m-{i:03d}-1" for i in range(123)],
        "xm2vts": [f"{i:03d}-1-1" for i in range(295)],
    }
    split = usual_split(keys)
    for subset, (n_train, n_test) in {"cuhk": (88, 100), "ar": (80, 43), "xm2vts": (100, 195)}.items():
        values = [split[k] for k in keys[subset]]
        assert (values.count("train"), values.count("test")) == (n_train, n_test)


def test_a_split_file_replaces_the_default(tmp_path):
    root = _cufs(tmp_path / "CUFS")
    names = [p.name for p in find_pairs(root)]
    with open(root / "split.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["name", "subset", "split"])
        w.writerows([[n, "", "test" if n == "f-005-01" else "train"] for n in names])
    pairs = {p.name: p for p in find_pairs(root)}
    assert pairs["f-005-01"].split == "test" and pairs["m-063-01"].split == "train"
    assert pairs["f-005-01"].subset == "cuhk"  # an empty subset column keeps the inferred one


def test_pix2pix_aligned_images_are_split_into_photo_and_sketch(tmp_path):
    root = tmp_path / "aligned"
    for part, name in (("train", "f-005-01.jpg"), ("test", "m-063-01.png")):
        (root / part).mkdir(parents=True)
        both = np.zeros((H, 2 * W, 3), np.uint8)
        both[:, :W] = (200, 40, 40)
        both[:, W:] = 235
        Image.fromarray(both).save(root / part / name)
    assert detect_layout(root) == "aligned"
    pairs = find_pairs(root)
    assert [(p.name, p.split, p.subset, p.aligned) for p in pairs] == [
        ("f-005-01", "train", "cuhk", True),
        ("m-063-01", "test", "cuhk", True),
    ]
    photo, sketch = read_pair(pairs[1], 1)
    assert photo.shape == (H, W, 3) and sketch.shape == (H, W)
    assert tuple(photo[10, 10]) == (200, 40, 40) and sketch[10, 10] == 235


def test_photo_and_sketch_folders_with_suffixes(tmp_path):
    root = tmp_path / "pairs"
    (root / "photos").mkdir(parents=True)
    (root / "sketches").mkdir()
    _face((1, 2, 3)).save(root / "photos" / "f-005-01.jpg")
    _face(200, "L").save(root / "sketches" / "f-005-01_sketch.png")
    (pair,) = find_pairs(root)
    assert pair.sketch.name == "f-005-01_sketch.png" and pair.subset == "cuhk"


def test_no_known_layout_says_what_was_found(tmp_path):
    (tmp_path / "x" / "faces").mkdir(parents=True)
    (tmp_path / "x" / "notes.txt").write_text("")
    with pytest.raises(DataError, match=r"no face data layout recognised.*found \['faces/', 'notes.txt'\]"):
        find_pairs(tmp_path / "x")


def _split_file(root, names, test):
    with open(root / "split.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["name", "subset", "split"])
        w.writerows([[n, "cuhk", "test" if n in test else "train"] for n in names])


def _small_pairs(root, names=("f-001-01", "f-002-01", "f-003-01", "f-004-01"), test=("f-004-01",)):
    (root / "photos").mkdir(parents=True)
    (root / "sketches").mkdir()
    for i, n in enumerate(names):
        _face((60 + 20 * i, 90, 120)).save(root / "photos" / f"{n}.png")
        _face(240, "L").save(root / "sketches" / f"{n}-sz1.png")
    _split_file(root, names, test)
    return root


def test_odd_sizes_are_padded_or_refused_by_name(lab, tiny_cfg, tmp_path):
    root = _small_pairs(tmp_path / "d")
    _face((1, 2, 3), size=(180, 240)).save(root / "photos" / "f-002-01.png")
    _face(250, "L", size=(180, 240)).save(root / "sketches" / "f-002-01-sz1.png")
    data = load_faces(tiny_cfg(data_root=str(root), image_size=256), progress=False)
    assert data.train.item(1)["photo"].shape == (3, 256, 256)
    _face((1, 2, 3), size=(300, 250)).save(root / "photos" / "f-003-01.png")
    with pytest.raises(DataError, match=r"f-003-01.png: 300 x 250 does not fit"):
        load_faces(tiny_cfg(data_root=str(root), image_size=256), progress=False)


def test_bad_files_are_listed_and_skipped_when_asked(lab, tiny_cfg, tmp_path):
    root = _small_pairs(tmp_path / "d")
    (root / "photos" / "f-002-01.png").write_bytes(b"not an image")
    (root / "sketches" / "f-003-01-sz1.png").unlink()
    with pytest.raises(DataError, match="f-003-01.png has no sketch"):
        load_faces(tiny_cfg(data_root=str(root)), progress=False)
    with pytest.warns(UserWarning) as record:
        data = load_faces(tiny_cfg(data_root=str(root), skip_bad_files=True), progress=False)
    messages = " ".join(str(w.message) for w in record)
    assert "f-003-01.png has no sketch" in messages and "f-002-01.png: cannot read this image" in messages
    assert [p.name for p in data.train.pairs] == ["f-001-01"] and [p.name for p in data.test.pairs] == ["f-004-01"]


def test_three_channel_sketches(lab, tiny_cfg, tmp_path):
    data = load_faces(tiny_cfg(data_root=str(_small_pairs(tmp_path / "d")), sketch_channels=3), progress=False)
    assert data.test.item(0)["sketch"].shape == (3, 32, 32)


def test_parsing_masks_with_a_label_map(lab, tiny_cfg, tmp_path):
    root = _small_pairs(tmp_path / "d")
    (root / "masks").mkdir()
    mask = np.zeros((H, W), np.uint8)
    mask[50:150, 50:150] = 14  # the parser's neck id -> skin
    mask[10:40, 60:140] = 17  # hair
    mask[100:110, 90:110] = 5  # an id labels.json does not name -> background
    for n in ("f-001-01", "f-004-01"):
        Image.fromarray(mask).save(root / "masks" / f"{n}.png")
    (root / "labels.json").write_text(json.dumps({"skin": [1, 14], "hair": 17}))
    data = load_faces(tiny_cfg(data_root=str(root), image_size=256), progress=False)
    placed = data.test.item(0)["mask"]
    assert placed[3 + 100, 28 + 60] == 1 and placed[3 + 20, 28 + 100] == 2 and placed[3 + 105, 28 + 100] == 0
    assert placed[0, 0] == 0  # padding is background
    assert (data.train.item(1)["mask"] == -1).all()  # no mask file: unknown everywhere
    (root / "labels.json").write_text(json.dumps({"lips": [12]}))
    with pytest.raises(DataError, match="unknown label 'lips'"):
        load_faces(tiny_cfg(data_root=str(root)), progress=False)


def test_manual_landmarks_override_detected_ones(tmp_path):
    root = _small_pairs(tmp_path / "d")
    rows = {
        "landmarks.csv": [["f-001-01", *range(10), 0.99, "mtcnn"], ["f-002-01", *range(10, 20), 0.9, "mtcnn"]],
        "landmarks_manual.csv": [["f-002-01", *range(50, 60), "", ""], ["f-003-01", *[""] * 10, "", ""]],
    }
    for name, body in rows.items():
        with open(root / name, "w", newline="") as f:
            csv.writer(f).writerows([LANDMARK_COLUMNS, *body])
    pairs = {p.name: p for p in find_pairs(root)}
    assert pairs["f-001-01"].landmark_source == "mtcnn" and pairs["f-001-01"].landmarks[0].tolist() == [0, 1]
    assert pairs["f-002-01"].landmark_source == "manual" and pairs["f-002-01"].landmarks[0].tolist() == [50, 51]
    assert pairs["f-003-01"].landmarks is None  # a template row left empty
