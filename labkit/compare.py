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


def _seeds(text: str) -> str:
    seeds = text.split(",")
    return f"{len(seeds)} ({', '.join(seeds)})"


LEGEND = ("FID and KID: lower is better. ± is the std over seeds. FID (last): at the final evaluation; mean FID: "
          "over a run's evaluations (the user's \"mean FID\"); best FID: the lowest evaluation, selected on the "
          "test set itself, so optimistic. N is the number of test faces: below 2048 FID is biased upwards, so "
          "compare at equal N and read KID beside it.")


def to_markdown(t: pd.DataFrame, experiment: str, figures: dict[str, Path] | None = None) -> str:
    """The table as Markdown: one table per FID backbone (smoke numbers apart, under a banner),
    one per subset, and the figures embedded by relative path."""
    subsets = [c.split("/", 1)[1] for c in t.columns if c.startswith(f"{keys.FID}/")]
    lines = [f"# FID table: experiment `{experiment}` ({dt.datetime.now():%Y-%m-%d %H:%M})", ""]
    if (t["backbone"] != "inception").any():
        lines += ["```", SMOKE_BANNER, "```", ""]
    lines += [LEGEND, ""]
    header = ["ablation", "objective", "seeds", "FID (last)", "mean FID", "best FID", "KID", "N",
              "Δ FID vs baseline", "beyond seed spread"]
    for backbone, block in t.groupby("backbone", sort=False):
        lines += [f"## {'Inception' if backbone == 'inception' else f'{backbone} backbone: smoke numbers'}", "",
                  "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for _, r in block.iterrows():
            lines.append("| " + " | ".join([
                r["ablation"], r["loss"], _seeds(r["seeds"]), _pm(r["fid"], r["fid_std"]),
                _pm(r["mean_fid"], r["mean_fid_std"]), f"{r['fid_best']:.2f}", _pm(r["kid"], r["kid_std"], 4),
                str(r["n_real"]) if r["n_real"] == r["n_fake"] else f"{r['n_real']} real / {r['n_fake']} generated",
                "-" if np.isnan(r["delta_vs_baseline"]) else f"{r['delta_vs_baseline']:+.2f}",
                r["beyond_seed_spread"] or "-"]) + " |")
        lines.append("")
        if subsets:
            lines += ["Per subset, at the final evaluation: FID · KID (N test faces)", "",
                      "| ablation | " + " | ".join(subsets) + " |", "|" + "---|" * (len(subsets) + 1)]
            lines += ["| " + " | ".join([r["ablation"], *[f"{r[f'fid/{s}']:.2f} · {r[f'kid/{s}']:.4f} (N {r[f'n/{s}']})"
                                                          for s in subsets]]) + " |" for _, r in block.iterrows()]
            lines.append("")
    unfinished = int(t["not_finished"].sum())
    if unfinished:
        lines += [f"{unfinished} run(s) not finished (running, failed or killed) are left out.", ""]
    for title, path in (figures or {}).items():
        lines += [f"![{title}]({path.name})", ""]
    return "\n".join(lines)


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
    return viz.fid_curves(curves, title="FID over training (mean over seeds; lower is better)")


def cross_ablation_grid(runs: pd.DataFrame, n: int = 4, baseline: str = "baseline"):
    """photo | real sketch | each ablation's final model, on the same test faces: one finished
    run per ablation (lowest seed) that has a checkpoint. Ablations trained on other data or at
    another size than the first are left out. A figure at the model's own resolution (one image
    pixel per figure pixel), or None when no checkpoints are here."""
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
    return viz.titled_figure(viz.sample_grid(columns), ["photo", "real sketch", *order])


def _html(markdown: str, folder: Path) -> str:
    """The Markdown as one HTML page with its figures inside (the MLflow UI shows HTML artifacts
    in a frame that cannot follow relative links)."""
    import base64
    import re

    import mistune
    body = mistune.html(markdown)
    embed = lambda m: f'src="data:image/png;base64,{base64.b64encode((folder / m.group(1)).read_bytes()).decode()}"'  # noqa
    body = re.sub(r'src="([^"/]+\.png)"', embed, body)
    return ("<!doctype html><html><head><meta charset='utf-8'><style>body{font-family:system-ui,sans-serif;"
            "margin:1.5em;color:#222} table{border-collapse:collapse;margin:.5em 0 1.5em} td,th{border:1px solid #ccc;"
            "padding:.25em .6em;text-align:right} td:first-child,td:nth-child(2),th{text-align:left} "
            "img{max-width:100%}</style></head><body>" + body + "</body></html>")


def _save(fig, stem: Path) -> list[Path]:
    """A figure as PNG (at its own pixel size), PDF and SVG."""
    paths = [stem.with_suffix(ext) for ext in (".png", ".pdf", ".svg")]
    for path in paths:
        fig.savefig(path, dpi=fig.dpi)
    plt.close(fig)
    return paths


def compare(experiment: str = "faces", out_dir: Path | None = None, log: bool = True) -> tuple[str, pd.DataFrame]:
    """The table as Markdown with its figures (FID curves; photo | real sketch | each ablation),
    written under runs/compare/ (experiment.md, .html, .csv, -fid and -samples as PNG, PDF and
    SVG) and logged to a run of the experiment `<experiment>-compare`, apart from the training runs."""
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
    files = _save(fid_curves_figure(runs), out_dir / f"{experiment}-fid")
    figures = {"FID over training": files[0]}
    grid = cross_ablation_grid(runs)
    if grid is not None:
        files += _save(grid, out_dir / f"{experiment}-samples")
        figures["photo | real sketch | each ablation, on the same test faces"] = files[-3]
    text = to_markdown(t, experiment, figures)
    files += [out_dir / f"{experiment}.md", out_dir / f"{experiment}.html", out_dir / f"{experiment}.csv"]
    files[-3].write_text(text, encoding="utf-8")
    files[-2].write_text(_html(text, out_dir), encoding="utf-8")
    t.to_csv(files[-1], index=False)
    if log:
        c = track.client()
        run_id = c.create_run(track.experiment_id(c, f"{experiment}-compare"),
                              run_name=f"{experiment} {dt.datetime.now():%Y-%m-%d %H:%M:%S}",
                              tags={keys.KIND: keys.COMPARE, "labkit.compared": experiment}).info.run_id
        with track.OwnedRun(c, run_id, system_metrics=False):
            c.log_table(run_id, t, "fid_table.json")
            for path in files:
                c.log_artifact(run_id, str(path))
    return text, t
