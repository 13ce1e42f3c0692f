"""The explorers a notebook shows: the runs of an experiment side by side (read from a real MLflow
store), and the swap under the cursor (the variants' own swaps, re-run as the knobs move)."""

import base64
import io
import re

import numpy as np
import pytest
import torch
from PIL import Image

from labkit import explore, keys, track, viz
from labkit.config import ParamError, StyleConfig
from labkit.data import load_faces
from labkit.style import explore as swap_explore
from labkit.style.decoder import Decoder
from labkit.style.images import load_sets
from labkit.style.swaprun import SwapLab
from labkit.style.variants import VARIANTS, by_ablation
from labkit.style.vgg import build_encoder
from labkit.train import fit


def _train(cfg):
    run = track.open_run(cfg, notebook=cfg.ablation)
    fit(cfg, load_faces(cfg, progress=False), run, progress=False)
    run.end()
    return run


def _pictures(html: str) -> list[np.ndarray]:
    return [np.asarray(Image.open(io.BytesIO(base64.b64decode(d)))) for d in re.findall(r'base64,([^"]+)"', html)]


def test_the_run_explorer_sets_the_selected_runs_side_by_side_from_the_store(lab, tiny_cfg):
    runs = {
        (ablation, seed): _train(tiny_cfg(ablation=ablation, seed=seed, experiment="ex", lambda_glad=lam))
        for ablation, seed, lam in (("baseline", 0, 0.0), ("baseline", 1, 0.0), ("glad", 0, 100.0))
    }
    e = explore.runs("ex")
    header, lines = e.header.value, [label for label, _ in e.table.options]
    assert all(word in header for word in ("run", "ablation", "seed", "FID [95% interval]", "status"))
    metrics = track.client().get_run(runs["glad", 0].run_id).data.metrics
    fid_text = (
        f"{metrics[keys.FID]:.2f} [{metrics[keys.ci(keys.FID, 'low')]:.2f}, {metrics[keys.ci(keys.FID, 'high')]:.2f}]"
    )
    assert any(line.startswith("glad-s0") and fid_text in line and "FINISHED" in line for line in lines), lines
    assert len({line.index("FINISHED") for line in lines}) == 1  # aligned columns
    assert [r.name for r in e.selected] == ["baseline-s0", "glad-s0"]  # each ablation's lowest seed
    assert e.epoch.options == (0, 1, 2) and e.epoch.value == 2  # every evaluation's samples, the newest chosen

    # the view: curves, the samples side by side (photo and sketch once, then each run), a heatmap each
    curves, samples, *heatmaps = _pictures(e.view.value)
    assert len(heatmaps) == 2 and "glad-s0: |generated - real|" in e.view.value
    grids = {r.name: explore.image(r.run_id, explore.logged_images(r.run_id)[keys.SAMPLES][2]) for r in e.selected}
    grid, titles, left_out = explore.samples_side_by_side(grids)
    assert titles == ["photo", "real sketch", "baseline-s0", "glad-s0"] and not left_out
    columns = viz.grid_columns(grid, 4)
    for column, name in zip(columns[2:], titles[2:]):
        assert np.array_equal(column, viz.grid_columns(grids[name], 3)[2])
    assert not np.array_equal(columns[2], columns[3])  # glad's generator is another network
    fig = explore.curves_figure(e.selected, 2)
    assert [line.get_label() for line in fig.axes[0].get_lines() if not line.get_label().startswith("_")] == [
        "baseline-s0",
        "glad-s0",
    ]

    e.select("baseline-s1")  # a click in the table: one run, its picture alone
    e.epoch.value = 1
    assert len(_pictures(e.view.value)) == 3 and "baseline-s1: |generated - real|" in e.view.value

    # a run still training is in the table after re-reading, with nothing to show yet
    running = track.open_run(tiny_cfg(ablation="baseline", seed=5, experiment="ex"), notebook="baseline")
    e.reread.click()
    assert any(
        line.startswith("baseline-s5") and "no FID yet" in line and "RUNNING" in line for line, _ in e.table.options
    )
    assert [r.name for r in e.selected] == ["baseline-s1"]  # the selection kept
    e.select("baseline-s1", "baseline-s5")
    assert "baseline-s5: no samples logged at epoch" in e.view.value
    running.end()

    with pytest.raises(ParamError, match="ex"):
        explore.runs("no-such-experiment")


def _swap_lab(variant, **values) -> SwapLab:
    extra = dict(patch_size=5) if variant.name == "avatar" else {}
    cfg = StyleConfig(
        ablation=variant.ablation,
        image_size=64,
        vgg_weights="random-init",
        device="cpu",
        decoder_kind=variant.decoder_kind or "relu4_1",
        **{**extra, **values},
    )
    content, style = load_sets(cfg)
    torch.manual_seed(0)
    encoder = build_encoder(cfg, torch.device("cpu"))
    lab = SwapLab(cfg, None, content, style, encoder, Decoder(cfg.decoder_kind).eval())
    if variant.prepare is not None:
        lab.context = variant.prepare(cfg, encoder, [img for _, img in content + style])
    return lab


@pytest.mark.parametrize("variant", list(VARIANTS), ids=lambda v: v.name)
def test_the_swap_explorer_scores_what_the_variant_matches(variant):
    """The score map of the probed patch ranks first the patch the swap took (what an argmax swap
    is), with the NCC it recorded; a globally matched swap may take a lower one."""
    e = _swap_lab(variant).explore()
    for row, col in ((0, 0), (e.swapped.grid[0] - 1, e.swapped.grid[1] // 2)):
        e.row.value, e.col.value = row, col
        p = e.probe
        assert (p.row, p.col) == (row, col) and len(p.scores) == len(e.swapped.result.bank)
        if variant.name != "assignment":
            assert p.top[0][:3] == p.chosen, (variant.name, p.top, p.chosen)
            assert p.top[0][3] == pytest.approx(float(e.swapped.result.confidence[0, row, col]), abs=1e-4)
        assert f"the patch taken at ({row}, {col})" in e.status.value
    pictures = _pictures(e.view.value)  # content, output, confidence, style; the top 5 cut from the style
    assert len(pictures) == 4 + swap_explore.TOP and "(taken)" in e.view.value
    content = pictures[0]
    red = (content[..., 0] > 200) & (content[..., 1] < 60) & (content[..., 2] < 60)
    assert red.any()  # the probed patch outlined


def test_the_swap_explorer_reruns_the_swap_as_a_knob_moves_and_names_a_value_refused():
    e = _swap_lab(by_ablation("swap_softmax")).explore()
    assert set(e.knobs) == {"patch_size", "swap_layer", "temperature"}
    before = e.swapped.result.features
    e.knobs["temperature"].value = 1.0  # a large temperature averages the style's patches
    assert e.swapped.cfg.temperature == 1.0
    assert not torch.allclose(before, e.swapped.result.features)
    e.knobs["swap_layer"].value = "relu3_1"  # a finer grid
    assert e.swapped.layer == "relu3_1" and e.row.max == e.swapped.grid[0] - 1 > 6

    avatar = _swap_lab(by_ablation("swap_avatar")).explore()
    kept = avatar.swapped
    avatar.knobs["patch_size"].value = 4
    assert "not swapped" in avatar.status.value and "odd patch size" in avatar.status.value
    assert avatar.swapped is kept  # the last picture stays

    weighted = _swap_lab(by_ablation("swap_channel_weighted")).explore()
    assert swap_explore.STRENGTH in weighted.knobs
    weighted.knobs[swap_explore.STRENGTH].value = 0.0  # unweighted: the plain swap's scores
    plain = _swap_lab(by_ablation("swap_argmax")).explore()
    plain.row.value, plain.col.value = weighted.row.value, weighted.col.value
    assert torch.allclose(weighted.probe.scores[0], plain.probe.scores[0], atol=1e-5)
