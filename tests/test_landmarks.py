"""MTCNN (facenet-pytorch's shipped weights) on a real portrait, the manual file, part boxes."""

import csv

import numpy as np
from PIL import Image
from skimage import data as skdata

from labkit import cli
from labkit.data import find_pairs
from labkit.data.parts import part_boxes


def _portrait_folder(root):
    """The astronaut portrait cropped to CUFS's 200 x 250, and a brick wall with no face."""
    (root / "photos").mkdir(parents=True)
    (root / "sketches").mkdir()
    Image.fromarray(skdata.astronaut()[20:270, 125:325]).save(root / "photos" / "f-001-01.png")
    Image.fromarray(skdata.brick()[:250, :200]).convert("RGB").save(root / "photos" / "f-002-01.png")
    for name in ("f-001-01", "f-002-01"):
        Image.new("L", (200, 250), 255).save(root / "sketches" / f"{name}-sz1.png")
    return root


def test_mtcnn_points_land_on_the_astronauts_eyes_nose_and_mouth(tmp_path, capsys):
    root = _portrait_folder(tmp_path / "faces")
    assert cli.main(["landmarks", str(root), "--device", "cpu", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "2 photos: 1 detected by MTCNN, 0 placed by hand, 1 missed" in out and "f-002-01" in out
    pts = find_pairs(root)[0].landmarks
    left_eye, right_eye, nose, mouth_left, mouth_right = pts
    # in the crop the face spans about x 56..143, y 42..152; the eyes sit near y 82
    assert 60 < left_eye[0] < right_eye[0] < 140 and abs(left_eye[1] - right_eye[1]) < 8
    assert left_eye[0] < nose[0] < right_eye[0] and nose[1] > left_eye[1] + 10
    assert mouth_left[0] < nose[0] < mouth_right[0] and min(mouth_left[1], mouth_right[1]) > nose[1]
    assert abs(left_eye[1] - 82) < 8 and abs(nose[0] - 100) < 10
    with open(root / "landmarks.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["name"] for r in rows] == ["f-001-01"] and rows[0]["source"] == "mtcnn" and float(rows[0]["prob"]) > 0.9
    assert Image.open(root / "landmarks_check.png").size == (400, 250)

    # the missed face: fill in the template by hand; it then overrides detection
    with open(root / "landmarks_missing.csv", newline="") as f:
        template = list(csv.reader(f))
    assert [r[0] for r in template[1:]] == ["f-002-01"]
    template[1][1:11] = [str(v) for v in range(60, 160, 10)]
    with open(root / "landmarks_manual.csv", "w", newline="") as f:
        csv.writer(f).writerows(template)
    assert cli.main(["landmarks", str(root), "--device", "cpu", "--no-progress"]) == 0
    assert "1 detected by MTCNN, 1 placed by hand, 0 missed" in capsys.readouterr().out
    brick = {p.name: p for p in find_pairs(root)}["f-002-01"]
    assert brick.landmark_source == "manual" and brick.landmarks[0].tolist() == [60, 70]
    assert not (root / "landmarks_missing.csv").exists()


def _upstream_boxes(feats: np.ndarray, size: int) -> dict:
    """APDrawingGAN's data/aligned_dataset.py, transcribed: the part centres (the nose's at
    tip - NOSE_H / 2 + 16) and the crop slices int(c - h / 2) : int(c + h / 2), as (x0, y0, w, h)."""
    ratio = size / 256
    eye_h, eye_w, nose_h, nose_w, mouth_h, mouth_w = (v * ratio for v in (40, 56, 48, 48, 40, 64))
    mouth = [int((feats[3, 0] + feats[4, 0]) / 2.0), int((feats[3, 1] + feats[4, 1]) / 2.0)]
    center = [
        [feats[0, 0], feats[0, 1] - 4 * ratio],
        [feats[1, 0], feats[1, 1] - 4 * ratio],
        [feats[2, 0], feats[2, 1] - nose_h / 2 + 16 * ratio],
        mouth,
    ]
    sizes = [(eye_h, eye_w), (eye_h, eye_w), (nose_h, nose_w), (mouth_h, mouth_w)]
    return {
        part: (
            int(c[0] - w / 2),
            int(c[1] - h / 2),
            int(c[0] + w / 2) - int(c[0] - w / 2),
            int(c[1] + h / 2) - int(c[1] - h / 2),
        )
        for part, c, (h, w) in zip(["left_eye", "right_eye", "nose", "mouth"], center, sizes)
    }


def test_part_boxes_are_apdrawinggans_and_stay_inside():
    lm = np.array([[100.0, 110], [156, 110], [128, 140], [105, 170], [151, 170]])
    boxes = part_boxes(lm, 256)
    assert boxes["left_eye"] == (72, 86, 56, 40)  # centred 4 px above the eye
    assert boxes["nose"] == (104, 108, 48, 48)  # centred 8 px above the nose tip
    assert boxes["mouth"] == (96, 150, 64, 40)
    rng = np.random.default_rng(0)
    for _ in range(50):  # upstream's integer landmarks (getfeats reads int64) at 256 and 512
        feats = rng.integers(80, 176, size=(5, 2))
        # mouth corners an even number of px apart: upstream's int() of their midpoint and our
        # round() of it agree (ours takes sub-pixel landmarks)
        feats[4] = feats[3] + 2 * rng.integers([10, -3], [25, 4])
        for size in (256, 512):
            assert part_boxes(feats * size // 256, size) == _upstream_boxes(feats * size // 256, size)
    small = part_boxes(lm / 4, 64)
    assert small["mouth"][2:] == (16, 8) and small["left_eye"][2:] == (16, 8)  # multiples of 4
    edge = part_boxes(np.array([[2.0, 2], [250, 2], [128, 128], [3, 253], [252, 253]]), 256)
    for x0, y0, w, h in edge.values():
        assert 0 <= x0 <= 256 - w and 0 <= y0 <= 256 - h
