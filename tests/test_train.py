"""Training tracked in a real MLflow store: metrics, images, checkpoints, resume, bad losses."""

import numpy as np
import pytest
import torch

from labkit import keys, losses, track, viz
from labkit.data import load_faces
from labkit.train import Checkpoints, NonFiniteLoss, fit


def _train(cfg, progress=False, run_id=""):
    run = track.open_run(cfg, run_id=run_id, notebook="baseline")
    return run, fit(cfg, load_faces(cfg, progress=False), run, progress=progress)


def test_fit_tracks_losses_fid_samples_and_provenance(lab, tiny_cfg):
    cfg = tiny_cfg()
    run, result = _train(cfg)
    run.end()
    data = run.client.get_run(run.run_id).data
    assert [e.epoch for e in result.history] == [1, 2]
    assert result.panel is None  # no Jupyter server started this process: nothing interactive
    for key in (
        "fid",
        "kid",
        "fid_best",
        "fid_mean",
        "fid_best_epoch",
        "loss_G",
        "loss_G_L1",
        "loss_G_GAN",
        "loss_D",
        "lr",
    ):
        assert key in data.metrics, key
    assert [s for s, _ in run.metric_history("fid")] == [1, 2]
    for subset in ("cuhk", "ar", "xm2vts"):  # two test faces each in the tiny synthetic set
        assert [s for s, _ in run.metric_history(f"fid.{subset}")] == [1, 2]
        assert f"kid.{subset}" in data.metrics and data.tags[f"fid.n_real.{subset}"] == "2"
    assert data.metrics["fid_mean"] == pytest.approx(sum(e.fid for e in result.history) / 2)
    assert data.params["lambda_l1"] == "100.0" and data.params["image_size"] == "32"
    tags = data.tags
    assert tags["fid.backbone"] == "random-init" and tags["fid.dims"] == "64" and tags["fid.n_real"] == "6"
    assert len(tags["fid.weights_sha256"]) == 64 and tags["fid.library"] == "pytorch-fid 0.3.0"
    assert tags["labkit.data.fingerprint"] and tags["labkit.device"].startswith("cpu")
    assert "mlflow.source.git.commit" in tags and "torch 2." in tags["labkit.versions"]
    assert "device=" in tags["labkit.settings"] and "lambda_l1" not in tags["labkit.settings"]
    images = [a.path for a in run.client.list_artifacts(run.run_id, "images")]
    assert any("samples" in p for p in images) and any("error_heatmap" in p for p in images)
    # grid: 2 test faces x (photo | real | generated), 32 px tiles with 2 px gaps
    assert result.last_grid.shape == (2 * 32 + 2, 3 * 32 + 4, 3)
    assert result.checkpoint.is_file()


@pytest.mark.slow
def test_resume_after_interruption_continues_the_same_run(lab, tiny_cfg, monkeypatch):
    cfg = tiny_cfg(n_epochs=2, n_epochs_decay=1, ngf=4, ndf=4)
    _, reference = _train(cfg)

    # interrupted: killed during epoch 2's evaluation, after epoch 1's checkpoint
    original = track.Run.log_image

    def dies_in_epoch_2(self, image, key, step):
        if step == 2:
            raise KeyboardInterrupt
        original(self, image, key, step)

    monkeypatch.setattr(track.Run, "log_image", dies_in_epoch_2)
    with pytest.raises(KeyboardInterrupt), track.open_run(cfg, notebook="baseline") as run:
        fit(cfg, load_faces(cfg, progress=False), run, progress=False)
    assert run.client.get_run(run.run_id).info.status == "FAILED"
    monkeypatch.setattr(track.Run, "log_image", original)

    run2, result = _train(cfg, run_id=run.run_id)
    assert run2.run_id == run.run_id and result.resumed_from == 1
    assert [e.epoch for e in result.history] == [1, 2, 3]
    assert [e.fid for e in result.history] == pytest.approx([e.fid for e in reference.history])
    for name, tensor in reference.model.G.state_dict().items():
        assert torch.allclose(tensor, result.model.G.state_dict()[name]), name
    assert result.model.opt_G.param_groups[0]["lr"] == pytest.approx(reference.model.opt_G.param_groups[0]["lr"])


def test_resume_refuses_changed_settings(lab, tiny_cfg):
    run, _ = _train(tiny_cfg())
    with pytest.raises(Exception, match="other parameters"):
        track.open_run(tiny_cfg(lr=0.1), run_id=run.run_id)


def test_non_finite_loss_stops_with_a_clear_error(lab, tiny_cfg, monkeypatch):
    monkeypatch.setattr(losses, "l1", lambda fake, real: torch.tensor(float("nan")))
    cfg = tiny_cfg()
    with pytest.raises(NonFiniteLoss, match=r"loss_G=nan.*epoch 1, step 1"), track.open_run(cfg) as run:
        fit(cfg, load_faces(cfg, progress=False), run, progress=False)
    assert run.client.get_run(run.run_id).info.status == "FAILED"


@pytest.mark.parametrize(
    "ablation,extra,terms",
    [
        ("glad", dict(lambda_glad=100.0), {"loss_G_glad"}),
        (
            "local",
            dict(local=True, lambda_chamfer=0.1, lambda_chamfer2=0.1),  # the local notebooks' defaults
            {"loss_G_local", "loss_G_GAN_parts", "loss_D_parts", "loss_G_chamfer", "loss_G_chamfer2"},
        ),
        (
            "local_glad",
            dict(local=True, lambda_glad=100.0),
            {"loss_G_glad", "loss_G_local", "loss_G_GAN_parts", "loss_D_parts"},
        ),
        ("local", dict(local=True, fusion="attention"), {"loss_G_local", "loss_G_GAN_parts", "loss_D_parts"}),
        ("local", dict(local=True, fusion="none"), {"loss_G_GAN_parts", "loss_D_parts"}),  # no local outputs
    ],
)
def test_each_ablation_trains_with_its_loss_terms(lab, tiny_cfg, ablation, extra, terms):
    cfg = tiny_cfg(ablation=ablation, n_epochs_decay=0, **extra)
    run, result = _train(cfg)
    logged = set(run.client.get_run(run.run_id).data.metrics)
    assert terms <= logged and {"loss_G_GAN", "loss_G_L1", "fid"} <= logged
    missing = {"loss_G_glad", "loss_G_local", "loss_G_chamfer"} - terms
    assert not (missing & logged)  # terms of other ablations stay out
    pieces = result.sample_outputs(pieces=True)
    assert pieces["fake"].shape == result.samples["sketch"].shape
    if cfg.local and cfg.fusion != "none":
        assert set(pieces["parts"]) == {"left_eye", "right_eye", "nose", "mouth"}
        assert set(pieces["regions"]) == set(pieces["areas"]) == {"hair", "background"}
        assert ("weights" in pieces) == (cfg.fusion in ("blend", "attention"))
    if cfg.local:
        assert viz.local_views(pieces, result.samples["photo"], result.samples["names"]).ndim == 3
        tags = run.client.get_run(run.run_id).data.tags
        assert tags["labkit.local.foreground"] == "parsing maps (24 faces)"  # the synthetic set has them


def test_local_without_landmarks_is_refused_before_training(lab, tiny_cfg, tmp_path):
    from labkit.data import DataError, write_synthetic_set

    root = write_synthetic_set(tmp_path / "faces", count=8, progress=False)
    (root / "landmarks.csv").unlink()
    cfg = tiny_cfg(local=True, data_root=str(root))
    run = track.open_run(cfg)
    with pytest.raises(DataError, match=r"need landmarks for every face; 8 have none.*labkit landmarks"):
        fit(cfg, load_faces(cfg, progress=False), run, progress=False)


def test_intervals_are_logged_and_a_validation_split_picks_the_best_epoch(lab, tiny_cfg):
    cfg = tiny_cfg(val_fraction=0.25)
    data = load_faces(cfg, progress=False)
    names = {split: {p.name for p in getattr(data, split).pairs} for split in ("train", "val", "test")}
    assert not (names["val"] & names["train"]) and not (names["val"] & names["test"])
    assert sorted(p.subset for p in data.val.pairs) == ["ar"] * 2 + ["cuhk"] * 2 + ["xm2vts"] * 2  # 25% of 6 each
    assert {p.name for p in load_faces(tiny_cfg(val_fraction=0.25, seed=1), progress=False).val.pairs} == names["val"]

    run, result = _train(cfg)
    run.end()
    logged = run.client.get_run(run.run_id).data
    m = logged.metrics
    for key in ("fid_ci_low", "fid_ci_high", "kid_ci_low", "kid_ci_high", "fid_val", "fid_val_best"):
        assert key in m, key
    assert "fid_ci_low.cuhk" not in m  # 2 test faces a subset: leaving one out leaves no covariance
    assert m["fid_ci_low"] < m["fid_ci_high"]
    assert logged.tags["fid.best_selected_on"] == "validation (6 faces)"
    best = min(result.history, key=lambda e: e.fid_val)
    assert m["fid_best"] == best.fid and m["fid_best_epoch"] == best.epoch and m["fid_val_best"] == best.fid_val
    left_out = np.load(run.client.download_artifacts(run.run_id, "fid/jackknife.npz"))
    assert int(left_out["epoch"]) == 2 and sorted(left_out) == ["epoch", "fid", "fid~pairs", "kid", "kid~pairs"]
    assert len(left_out["fid"]) == len(left_out["kid"]) == int(logged.tags["fid.n_real"]) == 6
    assert len(left_out["fid~pairs"]) == 15  # every pair of 6 faces
    assert logged.tags["fid.interval"] == "jackknife-2"


def _interval(metrics: dict, metric: str, subset: str = "") -> list[float]:
    name = (lambda m: keys.per_subset(m, subset)) if subset else (lambda m: m)
    return [metrics.get(name(keys.ci(metric, side)), float("nan")) for side in ("low", "high")]


def _legacy(e, per_subset_n: int) -> dict:
    """An evaluation as checkpoints kept it before the evaluators: named fields."""
    m, subsets = e.metrics, ("ar", "cuhk", "xm2vts")
    per_subset = {
        s: {
            "n": per_subset_n,
            **{k: m[keys.per_subset(k, s)] for k in ("fid", "kid")},
            "fid_ci": _interval(m, "fid", s),
        }
        for s in subsets
    }
    for s in subsets:
        per_subset[s]["kid_ci"] = _interval(m, "kid", s)
    return dict(
        epoch=e.epoch,
        fid=e.fid,
        kid=e.kid,
        n_real=3 * per_subset_n,
        n_fake=m[keys.FID_N_FAKE],
        per_subset=per_subset,
        fid_ci=_interval(m, "fid"),
        kid_ci=_interval(m, "kid"),
        fid_val=float("nan"),
        fid_aligned=float("nan"),
    )


def test_a_checkpoint_written_before_the_evaluators_resumes(lab, tiny_cfg):
    """Checkpoints once kept each evaluation as named fields; such a history still resumes, to
    the evaluators' metrics under their recorded names."""
    cfg = tiny_cfg(synthetic_count=36)  # 3 test faces a subset: each has its interval
    run, result = _train(cfg)
    run.end()
    checkpoints = Checkpoints(run.run_id)
    state = checkpoints.load()
    state["history"] = [_legacy(e, per_subset_n=3) for e in result.history]
    checkpoints.save(state)
    _, resumed = _train(cfg, run_id=run.run_id)
    assert resumed.resumed_from == 2 and [e.epoch for e in resumed.history] == [1, 2]
    for old, new in zip(result.history, resumed.history):
        assert new.metrics == pytest.approx(old.metrics), new.epoch
        assert "fid_ci_low.cuhk" in new.metrics and new.fid_ci == pytest.approx(old.fid_ci)


def test_a_watched_fit_redraws_one_panel_in_place(lab, tiny_cfg, monkeypatch):
    """In a kernel a Jupyter server started (JPY_SESSION_NAME set), fit shows one output area and
    redraws it: losses at log steps, each evaluation's FID with its interval and the newest grid
    (elsewhere, as under papermill, it shows nothing: test_fit_tracks_losses_fid_samples_and_provenance)."""
    import IPython.display

    shown, updates = [], []
    monkeypatch.setattr(IPython.display.DisplayHandle, "display", lambda self, obj, **k: shown.append(self.display_id))
    monkeypatch.setattr(IPython.display.DisplayHandle, "update", lambda self, obj, **k: updates.append(obj))
    cfg = tiny_cfg()
    monkeypatch.setenv("JPY_SESSION_NAME", "notebooks/baseline.ipynb")
    run = track.open_run(cfg)
    t = fit(cfg, load_faces(cfg, progress=False), run, progress=False)
    run.end()
    assert len(shown) == 1 and t.panel.handle.display_id == shown[0]  # one output area, updated in place
    assert len(updates) == t.panel.draws >= 2  # at least one per evaluation
    assert all(u.data.count('src="data:image/png;base64,iVBOR') == 2 for u in updates[-2:])  # plots, grid
    assert t.panel.fids == [e.fid for e in t.history] and t.panel.epochs == [1, 2]
    assert t.panel.grid is t.last_grid and len(t.panel.losses["loss_G"]) == len(t.panel.steps) > 0
