"""`labkit compare`: the FID table across the ablations of an experiment.

One row per (FID backbone, ablation): runs and seeds, FID at the last evaluation as mean ± std
over seeds, the user's "mean FID" (mean over a run's evaluations, then over seeds), best FID,
KID, N, FID and KID per subset (cuhk / ar / xm2vts), and the difference from the baseline
with a word on whether it exceeds the seed spread.
Runs measured with a random-init backbone are never put in the same block as real ones.
"""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import matplotlib.pyplot as plt
import mlflow
import numpy as np
import pandas as pd
from PIL import Image

from . import keys, track, viz
from .config import ParamError, SketchConfig
from .paths import runs_dir
from .train.pix2pix import loss_formula

SMOKE_BANNER = ("!! SMOKE NUMBERS: FID below comes from a random-init Inception (no weights on this machine).\n"
                "!! They show the pipeline works; they are NOT comparable with real or published FID.")


def collect(experiment: str) -> pd.DataFrame:
    """Every ablation run of the experiment, one row each (MLflow's pandas columns); an unknown
    experiment is refused with the list of those that exist."""
    c = track.client()
    exp = c.get_experiment_by_name(experiment)
    if exp is None:
        names = sorted(e.name for e in c.search_experiments() if e.name != "Default")
        raise ParamError(f"no experiment '{experiment}' in {track.tracking_uri()}; the experiments are: "
                         f"{', '.join(names) or 'none yet (run `labkit ablate` first)'}")
    return mlflow.search_runs([exp.experiment_id], filter_string=f"tags.`{keys.KIND}` = '{keys.TRAIN}'",
                              output_format="pandas")


def _config_of(row: pd.Series) -> SketchConfig:
    """The config of a run from its row of search_runs (params are the `params.*` columns)."""
    return SketchConfig.from_logged({k[len("params."):]: v for k, v in row.items()
                                     if k.startswith("params.") and isinstance(v, str)})


def _metric(name: str) -> str:
    return f"metrics.{name}"


def _tag(name: str) -> str:
    return f"tags.{name}"


def _mean_std(values: pd.Series) -> tuple[float, float]:
    values = values.dropna().astype(float)
    if values.empty:
        return float("nan"), float("nan")
    return float(values.mean()), float(values.std(ddof=1)) if len(values) > 1 else float("nan")


def table(runs: pd.DataFrame, baseline: str = "baseline") -> pd.DataFrame:
    if runs.empty or _tag(keys.FID_BACKBONE) not in runs.columns:  # no run measured FID (e.g. style runs)
        return pd.DataFrame()
    done = runs[runs["status"] == "FINISHED"]
    subsets = sorted(c.split("/", 1)[1] for c in runs.columns if c.startswith(_metric(keys.per_subset(keys.FID, ""))))
    rows = []
    for (backbone, ablation), group in done.groupby([_tag(keys.FID_BACKBONE), _tag(keys.ABLATION)]):
        fid, fid_std = _mean_std(group.get(_metric(keys.FID_LAST), pd.Series(dtype=float)))
        mean_fid, mean_fid_std = _mean_std(group.get(_metric(keys.FID_MEAN), pd.Series(dtype=float)))
        kid, kid_std = _mean_std(group.get(_metric(keys.KID_LAST), pd.Series(dtype=float)))
        cfg = _config_of(group.iloc[0])
        rows.append(dict(backbone=backbone, ablation=ablation, loss=loss_formula(cfg), runs=len(group),
                         seeds=",".join(str(s) for s in sorted(group["params.seed"].astype(int).unique())),
                         fid=fid, fid_std=fid_std, mean_fid=mean_fid, mean_fid_std=mean_fid_std,
                         fid_best=float(group[_metric(keys.FID_BEST)].min()), kid=kid, kid_std=kid_std,
                         n_real=int(group[_tag(keys.FID_N_REAL)].astype(int).iloc[0]),
                         n_fake=int(group[_metric(keys.FID_N_FAKE)].iloc[0]),
                         not_finished=int(((runs[_tag(keys.ABLATION)] == ablation)
                                           & (runs["status"] != "FINISHED")).sum())))
        for subset in subsets:
            for metric in (keys.FID, keys.KID):
                name = keys.per_subset(metric, subset)
                rows[-1][name] = _mean_std(group[_metric(name)])[0]
            n = group.get(_tag(keys.per_subset(keys.FID_N_REAL, subset)), pd.Series(dtype=object)).dropna()
            rows[-1][f"n/{subset}"] = int(n.iloc[0]) if len(n) else 0
    out = pd.DataFrame(rows)
    if out.empty:
        return out
    out["delta_vs_baseline"] = np.nan
    out["beyond_seed_spread"] = ""
    for backbone, block in out.groupby("backbone"):
        base = block[block["ablation"] == baseline]
        if base.empty:
            continue
        b = base.iloc[0]
        for i, row in block.iterrows():
            out.loc[i, "delta_vs_baseline"] = row["fid"] - b["fid"]
            if row["ablation"] == baseline:
                continue
            # the larger seed-to-seed std of the two (of the side that has seeds, when one has one run)
            stds = [v for v in (row["fid_std"], b["fid_std"]) if not np.isnan(v)]
            spread = max(stds) if stds else np.nan
            out.loc[i, "beyond_seed_spread"] = ("n/a (1 seed)" if np.isnan(spread)
                                                else "yes" if abs(row["fid"] - b["fid"]) > spread else "no")
    order = {baseline: 0}
    out["_order"] = out["ablation"].map(lambda a: order.get(a, 1))
    return out.sort_values(["backbone", "_order", "ablation"]).drop(columns="_order").reset_index(drop=True)


def _pm(mean: float, std: float, digits: int = 2) -> str:
    if np.isnan(mean):
        return "-"
    return f"{mean:.{digits}f}" + (f" ± {std:.{digits}f}" if not np.isnan(std) else "")


def to_markdown(t: pd.DataFrame, experiment: str) -> str:
    subsets = [c.split("/", 1)[1] for c in t.columns if c.startswith("fid/")]
    header = ["ablation", "loss", "FID backbone", "runs", "seeds", "FID (last)", "mean FID", "best FID", "KID",
              "N real / fake", *[f"{s}: FID · KID" for s in subsets], "Δ vs baseline", "beyond seed spread"]
    lines = [f"# FID table: experiment `{experiment}` ({dt.datetime.now():%Y-%m-%d %H:%M})", ""]
    if (t["backbone"] != "inception").any():
        lines += ["```", SMOKE_BANNER, "```", ""]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for _, r in t.iterrows():
        backbone = r["backbone"] if r["backbone"] == "inception" else f"**{r['backbone']} (smoke)**"
        lines.append("| " + " | ".join([
            r["ablation"], r["loss"], backbone, str(r["runs"]), r["seeds"], _pm(r["fid"], r["fid_std"]),
            _pm(r["mean_fid"], r["mean_fid_std"]), f"{r['fid_best']:.2f}", _pm(r["kid"], r["kid_std"], 4),
            f"{r['n_real']} / {r['n_fake']}",
            *[f"{r[f'fid/{s}']:.2f} · {r[f'kid/{s}']:.4f} (N {r[f'n/{s}']})" for s in subsets],
            "-" if np.isnan(r["delta_vs_baseline"]) else f"{r['delta_vs_baseline']:+.2f}",
            r["beyond_seed_spread"] or "-"]) + " |")
    unfinished = int(t["not_finished"].sum())
    lines += ["", "FID (last): at the final evaluation; mean FID: over a run's evaluations; ± is the std over seeds; "
              "per subset: the final evaluation, mean over seeds. N below 2048 biases FID upwards: compare at "
              "equal N, and read KID beside it."]
    if unfinished:
        lines.append(f"{unfinished} run(s) not finished (running, failed or killed) are left out.")
    return "\n".join(lines) + "\n"


def fid_curves_figure(runs: pd.DataFrame):
    """FID over epochs, one line per ablation (mean over its finished runs)."""
    c = track.client()
    curves = {}
    for (backbone, ablation), group in runs[runs["status"] == "FINISHED"].groupby(
            [_tag(keys.FID_BACKBONE), _tag(keys.ABLATION)]):
        per_epoch: dict[int, list[float]] = {}
        for run_id in group["run_id"]:
            for m in c.get_metric_history(run_id, keys.FID):
                per_epoch.setdefault(m.step, []).append(m.value)
        label = ablation if backbone == "inception" else f"{ablation} ({backbone})"
        curves[label] = [(step, float(np.mean(v))) for step, v in per_epoch.items()]
    return viz.fid_curves(curves, title="FID over training, mean over seeds")


def cross_ablation_grid(runs: pd.DataFrame, n: int = 4, baseline: str = "baseline") -> np.ndarray | None:
    """photo | real sketch | each ablation's final model, on the same test faces: one finished
    run per ablation (lowest seed) that has a checkpoint. Ablations trained on other data or at
    another size than the first are left out; None when no checkpoints are here."""
    from .data import load_faces
    from .train.loop import fixed_samples, trained_model
    done = runs[runs["status"] == "FINISHED"].sort_values("params.seed")
    models = {}
    for ablation, group in done.groupby(_tag(keys.ABLATION), sort=False):
        for _, row in group.iterrows():
            model = trained_model(_config_of(row), row["run_id"])
            if model is not None:
                models[ablation] = (row, model)
                break
    if not models:
        return None
    order = sorted(models, key=lambda a: (a != baseline, a))
    first = models[order[0]][0]
    same = (_tag(keys.DATA_FINGERPRINT), "params.image_size", "params.sketch_channels")
    order = [a for a in order if all(models[a][0][k] == first[k] for k in same)]
    samples = fixed_samples(load_faces(_config_of(first), progress=False).test, n)
    columns = [samples["photo"], samples["sketch"]] + [
        models[a][1].generate(samples["photo"], samples["landmarks"], samples["mask"]) for a in order]
    return viz.titled(viz.sample_grid(columns), ["photo", "real sketch", *order])


def compare(experiment: str = "faces", out_dir: Path | None = None, log: bool = True) -> tuple[str, pd.DataFrame]:
    """The table as Markdown, written with the FID curves and the side-by-side samples under
    runs/compare/ (experiment.md / .csv / -fid.png / -samples.png) and logged to MLflow."""
    from .runs import sweep
    runs = collect(experiment)
    if sweep([experiment]):  # runs whose process died count as not finished, and say so
        runs = collect(experiment)
    t = table(runs)
    if t.empty:
        return (f"No finished runs with an FID in experiment '{experiment}' yet: run `labkit ablate params/....yaml` "
                "first.\n", t)
    out_dir = Path(out_dir) if out_dir else runs_dir() / "compare"
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {"md": out_dir / f"{experiment}.md", "csv": out_dir / f"{experiment}.csv",
             "curves": out_dir / f"{experiment}-fid.png", "samples": out_dir / f"{experiment}-samples.png"}
    fig = fid_curves_figure(runs)
    fig.savefig(files["curves"], dpi=120)
    plt.close(fig)
    grid = cross_ablation_grid(runs)
    if grid is not None:
        Image.fromarray(grid).save(files["samples"])
    text = to_markdown(t, experiment) + "\n" + "\n".join(
        f"{what}: {path}" for what, path in (("FID curves", files["curves"]), ("samples side by side", files["samples"]))
        if path.is_file()) + "\n"
    files["md"].write_text(text, encoding="utf-8")
    t.to_csv(files["csv"], index=False)
    if log:
        c = track.client()
        run_id = c.create_run(track.experiment_id(c, experiment), run_name=f"compare-{dt.datetime.now():%Y%m%d-%H%M%S}",
                              tags={keys.KIND: keys.COMPARE}).info.run_id
        with track.OwnedRun(c, run_id):
            c.log_table(run_id, t, "fid_table.json")
            for path in files.values():
                if path.is_file():
                    c.log_artifact(run_id, str(path))
    return text, t
