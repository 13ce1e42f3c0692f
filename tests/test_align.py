"""+align: the warp between the photo's and the sketch's parsing maps, estimated without
training, recovered against known warps, applied to a data folder, and trained on."""

from pathlib import Path

import numpy as np
import pytest
from conftest import TINY, tiny_params, training_runs
from PIL import Image

from labkit import cli, keys, track
from labkit.align import align_sketches, estimate, jacobian_determinant, mean_overlap, warp_labels
from labkit.align.fields import affine_field, end_point_error, invert, warp
from labkit.compare import compare
from labkit.config import ParamError, SketchConfig
from labkit.data import DataError, find_pairs
from labkit.data.labels import LABELS, read_label_map
from labkit.data.synthetic import TRUTH_FILE, deformation, make_face, write_synthetic_set


def _mask(index=3):
    return make_face(0, index)["mask"]


def _moved(mask, sampling_field):
    """The sketch's map drawn with `sampling_field` (its points at p + field(p) of the photo's
    geometry), and the field that brings it back."""
    return warp_labels(mask, sampling_field), invert(sampling_field)


def _on_canvas(mask, size=256):
    """The 200 x 250 map padded onto the network's 256 x 256 canvas, as the dataset places it."""
    h, w = mask.shape
    top, left = (size - h) // 2, (size - w) // 2
    out = np.zeros((size, size), mask.dtype)
    out[top : top + h, left : left + w] = mask
    return out


def _known_affine(mask):
    h, w = mask.shape
    matrix = np.array([[1.04, 0.03], [-0.02, 0.97]])
    centre = np.array([w / 2, h / 2])
    return affine_field(matrix, centre - matrix @ centre + [3.0, -2.0], (h, w))


@pytest.mark.parametrize("mode", ["global", "regions"])
def test_a_known_affine_is_recovered_within_half_a_pixel(mode):
    mask = _mask()
    sketch_map, truth = _moved(mask, _known_affine(mask))
    found = estimate(mask, sketch_map, mode)
    face = mask != LABELS["background"]
    assert end_point_error(found.field, truth, face) < 0.5
    assert (
        mean_overlap(mask, warp_labels(sketch_map, found.field))["iou"]
        > 0.95
        > mean_overlap(mask, sketch_map)["iou"] + 0.1
    )


def test_a_smooth_warp_is_recovered_at_256px_without_folds():
    mask = _on_canvas(_mask(5))
    moved = deformation(mask, np.random.default_rng(7), 4.0)
    sketch_map, truth = _moved(mask, moved)
    face = mask != LABELS["background"]
    assert end_point_error(np.zeros_like(truth), truth, face) > 1.5  # really misaligned
    found = estimate(mask, sketch_map, "dense")
    assert end_point_error(found.field, truth, face) < 1.0
    assert jacobian_determinant(found.field).min() > 0  # folds nowhere


@pytest.mark.parametrize("mode", ["global", "regions", "dense"])
def test_aligned_pairs_are_left_alone(mode):
    mask = _mask()
    assert np.abs(estimate(mask, mask.copy(), mode).field).max() < 0.1


def test_a_region_missing_on_one_side_is_left_out():
    mask = _mask()
    sketch_map, truth = _moved(mask, _known_affine(mask))
    sketch_map[sketch_map == LABELS["mouth"]] = LABELS["skin"]  # the parser missed the sketch's mouth
    face = mask != LABELS["background"]
    for mode in ("global", "regions", "dense"):
        found = estimate(mask, sketch_map, mode)
        assert found.regions == 8 - 1  # skin, hair, 2 brows, 2 eyes, nose; no mouth pair
        assert end_point_error(found.field, truth, face) < 0.75, mode


def test_the_synthetic_misalignment_is_a_smooth_deformation_with_its_true_inverse():
    aligned, moved = make_face(0, 2), make_face(0, 2, misalign=4)
    assert np.array_equal(aligned["photo"], moved["photo"]) and np.array_equal(aligned["mask"], moved["mask"])
    field = moved["truth"]
    face = moved["mask"] != LABELS["background"]
    length = np.linalg.norm(field, axis=-1)[face]
    assert length.mean() > 1.0 and length.max() < 4.6
    assert np.linalg.norm(field - field.mean((0, 1)), axis=-1)[face].std() > 0.2  # not only a shift
    # the saved truth brings the sketch's map (and the sketch) back onto the photo's
    assert mean_overlap(moved["mask"], warp_labels(moved["sketch_mask"], field))["iou"] > 0.97
    assert np.abs(warp(moved["sketch"], field).astype(float) - aligned["sketch"]).mean() < 12


@pytest.mark.slow
def test_a_synthetic_set_misaligned_by_4px_is_aligned_and_cached(lab, tmp_path):
    root = write_synthetic_set(tmp_path / "faces", count=6, misalign=4.0, progress=False)
    assert (root / TRUTH_FILE).is_file() and len(list((root / "masks_sketch").iterdir())) == 6
    pairs = find_pairs(root)
    aligned = align_sketches(root, pairs, read_label_map(root), "dense", "affine", 6.0, progress=False)
    s = aligned.summary()
    assert s["epe_after"] <= 0.25 * s["epe_before"]  # misalignment reduced by at least 75%
    assert s["iou_after"] > 0.95 > s["iou_before"] and s["dice_after"] > s["dice_before"]
    assert set(aligned.subsets()) == {"cuhk", "ar", "xm2vts"} and "cuhk" in aligned.report()
    warped = np.asarray(Image.open(aligned.path(pairs[0].name)))
    assert warped.shape == np.asarray(Image.open(pairs[0].sketch)).shape
    assert (aligned.folder / "check.png").is_file() and aligned.field(pairs[0].name).shape == (250, 200, 2)
    stamp = (aligned.folder / "manifest.json").stat().st_mtime_ns
    again = align_sketches(root, pairs, read_label_map(root), "dense", "affine", 6.0, progress=False)
    assert again.folder == aligned.folder and (again.folder / "manifest.json").stat().st_mtime_ns == stamp
    assert again.summary() == pytest.approx(s)


def test_align_is_refused_without_the_sketches_parsing_maps(lab, tmp_path):
    root = write_synthetic_set(tmp_path / "faces", count=4, progress=False)
    for path in (root / "masks_sketch").iterdir():
        path.unlink()
    (root / "masks_sketch").rmdir()
    with pytest.raises(DataError, match="Only photo masks were found.*masks_sketch/NAME.png"):
        align_sketches(root, find_pairs(root), read_label_map(root), "global", "affine", 6.0, progress=False)
    cfg = SketchConfig(**TINY, ablation="align", align_mode="dense", data_root=str(root))
    assert any("masks_sketch" in p and "photo masks only" in p for p in cfg.check_inputs())
    with pytest.raises(ParamError, match="set align_mode to global, regions or dense"):
        SketchConfig(**TINY, ablation="align")


def test_labkit_align_prints_before_and_after_per_subset(lab, tmp_path, capsys):
    root = write_synthetic_set(tmp_path / "faces", count=6, misalign=4.0, progress=False)
    assert cli.main(["align", str(root), "--mode", "regions", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "6 sketches aligned (regions" in out and "end-point error" in out
    for subset in ("cuhk", "ar", "xm2vts", "all"):
        assert f"  {subset}" in out
    assert "check.png" in out


@pytest.mark.slow
def test_align_runs_log_the_alignment_and_both_fids_and_compare_shows_them(lab, tmp_path):
    common = dict(experiment="t", synthetic_count=12, synthetic_misalign=4.0)
    files = [
        tiny_params(tmp_path, "baseline_m4", **common),
        tiny_params(tmp_path, "align", **{**common, "ablation": "align", "align_mode": "regions"}),
        tiny_params(
            tmp_path, "local_align", **{**common, "ablation": "local_align", "align_mode": "global", "local": True}
        ),
    ]
    assert cli.main(["ablate", *map(str, files), "--no-progress", "--no-log"]) == 0
    runs = {r.data.tags[keys.LABEL]: r for r in training_runs("t")}
    for label in ("align", "local_align"):
        m = runs[label].data.metrics
        assert m[keys.align_metric("iou", "after")] > m[keys.align_metric("iou", "before")]
        assert m[keys.align_metric("epe", "after")] < m[keys.align_metric("epe", "before")]
        assert keys.FID_ALIGNED in m and keys.per_subset(keys.align_metric("iou", "after"), "cuhk") in m
        artifacts = {a.path for a in track.client().list_artifacts(runs[label].info.run_id, keys.ALIGN)}
        assert artifacts == {"align/check.png", "align/scores.csv"}
        assert runs[label].data.tags[keys.ALIGN_MODE] == runs[label].data.params["align_mode"]
    assert keys.FID_ALIGNED not in runs["baseline_m4"].data.metrics
    text, table, _ = compare("t", log=False)
    assert "+align: how well the training sketches sit on the photos" in text
    row = table.set_index("ablation").loc["align"]
    assert row["baseline_setting"] == "baseline" and row["verdict"]  # paired with the baseline of the same data


def _align_in_another_process(root, runs):
    """align_sketches in a fresh process, noting in runs/computed.txt each time it computes."""
    import os

    from labkit.align import sketches

    os.environ["LABKIT_RUNS"] = runs
    compute = sketches._compute

    def noted(*args):
        with open(Path(runs) / "computed.txt", "a") as f:
            f.write(f"{os.getpid()}\n")
        compute(*args)

    sketches._compute = noted
    aligned = align_sketches(root, find_pairs(root), read_label_map(root), "dense", "affine", 6.0, progress=False)
    return str(aligned.folder), len(aligned.scores)


@pytest.mark.slow
def test_two_runs_started_together_align_the_data_once(lab, tmp_path):
    import concurrent.futures
    import multiprocessing

    root = write_synthetic_set(tmp_path / "faces", count=4, misalign=4.0, progress=False)
    with concurrent.futures.ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        results = list(pool.map(_align_in_another_process, [root, root], [str(lab), str(lab)]))
    assert results[0] == results[1] and results[0][1] == 4
    assert len((lab / "computed.txt").read_text().split()) == 1  # the second waited and read the first's
    assert [p.name for p in (lab / "align").iterdir() if p.is_dir()] == [Path(results[0][0]).name]
