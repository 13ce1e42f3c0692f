"""The style lab's term summary: `labkit report --experiment style` (an experiment of swap and
decoder runs; the face lab's is labkit.report).

What the group reads: which encoder measured (and whether its numbers mean anything), on which
images; one row per swap setting (runs that differ only in their seed) with the swap's measures,
mean ± std over seeds: content loss, style loss (Gram distance), the share of style patches
used, total variation, time per pair and peak memory; the trade-off between content and style
loss as a figure; per setting the variant's idea, its knobs, its decoder and its content x style
grid; the decoders trained; the lab log's entries about these runs and their ideas. Written as
report.md with its figures, report.html (self-contained) and table.tex (booktabs), all read from
the MLflow store.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from pathlib import Path

import numpy as np
import pandas as pd

from .. import compare, explore, keys
from ..config import ParamError, StyleConfig
from ..keys import Status
from ..paths import runs_dir
from ..report import lab_log, latex_escape, tag_values
from .variants import by_ablation

MEASURES = (  # (metric, column title)
    (keys.CONTENT_LOSS, "content loss"),
    (keys.STYLE_LOSS, "style loss (Gram)"),
    (keys.DISTINCT_PATCHES, "patches used"),
    (keys.TV, "TV"),
    (keys.SWAP_SECONDS, "s per pair"),
    (keys.PEAK_RSS_MB, "peak RSS MB"),
)
SIGNIFICANT = 3  # digits a measure is written with
ABLATION = f"tags.{keys.ABLATION}"


def is_style(runs: pd.DataFrame) -> bool:
    """Whether an experiment's runs are the style lab's (decoder and swap runs)."""
    ablations = set(runs.get(ABLATION, pd.Series(dtype=object)).dropna())
    return bool(ablations) and ablations <= set(StyleConfig.ablations())


def swap_table(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per swap setting among the finished runs: setting, ablation, run ids, seeds, and
    each measure's mean and std over them."""
    done = runs[(runs["status"] == Status.FINISHED) & runs[ABLATION].str.startswith("swap_")]
    params = [c for c in done.columns if c.startswith("params.") and c != "params.seed"]
    rows = []
    for ablation, block in done.groupby(ABLATION, sort=True):
        block = block.fillna(dict.fromkeys(params, ""))
        varied = [c for c in params if block[c].nunique() > 1]
        for values, group in block.groupby(varied, sort=True) if varied else [((), block)]:
            values = values if isinstance(values, tuple) else (values,)
            row = dict(
                setting=compare.setting_name(ablation, {c.removeprefix("params."): v for c, v in zip(varied, values)}),
                ablation=ablation,
                run_ids=list(group["run_id"]),
                seeds=", ".join(sorted(group["params.seed"].astype(str))),
                params={c.removeprefix("params."): group[c].iloc[0] for c in params if group[c].iloc[0] != ""},
            )
            for metric, _ in MEASURES:
                row[metric], row[f"{metric}_std"] = compare.mean_std(
                    group.get(f"metrics.{metric}", pd.Series(dtype=float))
                )
            rows.append(row)
    return pd.DataFrame(rows)


def number(mean: float, std: float = np.nan) -> str:
    """A measure with SIGNIFICANT digits whatever its size (a Gram distance of 0.000797, a TV of
    1.55e-07, 785 MB), and its std over seeds."""
    if pd.isna(mean):
        return "-"
    text = f"{mean:.0f}" if abs(mean) >= 10**SIGNIFICANT else f"{mean:.{SIGNIFICANT}g}"
    return text if pd.isna(std) else f"{text} ± {std:.2g}"


def _cells(r: pd.Series) -> list[str]:
    return [r["setting"], str(len(r["run_ids"]))] + [number(r[m], r[f"{m}_std"]) for m, _ in MEASURES]


def markdown_table(t: pd.DataFrame) -> list[str]:
    header = ["setting", "runs"] + [title for _, title in MEASURES]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(_cells(r)) + " |" for _, r in t.iterrows()]


def latex(t: pd.DataFrame, experiment: str) -> str:
    """The table as LaTeX with booktabs: one row per setting, each measure as mean ± std over seeds."""
    rows = [" & ".join(latex_escape(c) for c in _cells(r)) + r" \\" for _, r in t.iterrows()]
    header = " & ".join(["Setting", "Runs"] + [latex_escape(title) for _, title in MEASURES]) + r" \\"
    caption = (
        rf"\caption{{Style swap on {latex_escape(experiment)}: the mean over content $\times$ style pairs, "
        r"mean $\pm$ std over seeds.}"
    )
    return "\n".join(
        [r"\begin{table}[t]", r"\centering", caption, r"\begin{tabular}{lr" + "r" * len(MEASURES) + "}", r"\toprule"]
        + [header, r"\midrule", *rows, r"\bottomrule", r"\end{tabular}", r"\end{table}", ""]
    )


def tradeoff_figure(t: pd.DataFrame, runs: pd.DataFrame):
    """Content loss against style loss, one point per run, a colour per setting: lower-left is better."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=120, constrained_layout=True)
    markers = "os^vD<>Pp*Xh"  # settings that measure alike stay told apart
    for i, (_, r) in enumerate(t.iterrows()):
        chosen = runs[runs["run_id"].isin(r["run_ids"])]
        x, y = (chosen.get(f"metrics.{m}", pd.Series(dtype=float)) for m in (keys.CONTENT_LOSS, keys.STYLE_LOSS))
        ax.scatter(x, y, label=r["setting"], s=40, marker=markers[i % len(markers)], alpha=0.8)
    styles = t[keys.STYLE_LOSS].dropna()
    if len(styles) and styles.min() > 0 and styles.max() / styles.min() >= 5:  # far apart: a log axis
        ax.set_yscale("log")
    ax.set(
        xlabel="content loss (lower keeps more of the content)", ylabel="style loss, Gram (lower: more of the style)"
    )
    smoke = (runs.get(f"tags.{keys.VGG_COMPARABLE}", pd.Series(dtype=object)).fillna("yes") != "yes").any()
    ax.set_title(
        "what each swap keeps of the content and takes of the style"
        + ("\nSMOKE NUMBERS: random-init VGG19, not comparable" if smoke else "")
    )
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return fig


def provenance(runs: pd.DataFrame) -> list[str]:
    """Which encoder measured, on which images, by which code; whether the numbers mean anything."""
    first = runs.iloc[0]
    folder = lambda name: first.get(f"params.{name}") or "scikit-image's pictures"  # noqa: E731
    lines = [
        "## What was measured",
        "",
        f"- VGG19 weights: {', '.join(tag_values(runs, keys.VGG_WEIGHTS)) or 'unknown'}",
        f"- content images: {folder('content_dir')}; style images: {folder('style_dir')}; "
        f"short side {', '.join(sorted({str(v) for v in runs['params.image_size'].dropna()}))} px",
        f"- code: commit {', '.join(f'`{c[:10]}`' for c in tag_values(runs, keys.SOURCE_COMMIT)) or 'unknown'}",
        "",
    ]
    not_comparable = [c.removeprefix("NO: ") for c in tag_values(runs, keys.VGG_COMPARABLE) if c != "yes"]
    if not_comparable:
        lines += [f"**Smoke numbers, not comparable with a trained encoder's**: {'; '.join(not_comparable)}.", ""]
    return lines


def _file_name(setting: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", setting).strip("-")


def per_setting(t: pd.DataFrame, out: Path, names: dict[str, str]) -> tuple[list[str], list[Path]]:
    """Each setting told in words, with its first run's content x style grid (read from the store);
    a decoder run named by its name (names: run id -> name)."""
    from PIL import Image

    lines, files = ["## Per setting", ""], []
    for _, r in t.iterrows():
        variant = by_ablation(r["ablation"])
        knobs = [f.name for f in dataclasses.fields(variant.knobs)] if variant.knobs else []
        layers = [f"layers={'+'.join(variant.fixed_layers)}"] if variant.fixed_layers else []
        swap_layer = () if variant.fixed_layers else ("swap_layer",)
        shown = layers + [f"{k}={r['params'][k]}" for k in (*swap_layer, "patch_size", *knobs) if k in r["params"]]
        decoder_run = r["params"].get("decoder_run")
        decoder = names.get(decoder_run, decoder_run) if decoder_run else "trained in the run"
        lines += [f"### {r['setting']}", "", variant.summary, ""]
        lines += [f"- knobs: {', '.join(shown) or 'none'}; decoder: {r['params'].get('decoder_kind', '?')}, {decoder}"]
        lines += [f"- seeds: {r['seeds']}"]
        measures = [f"{title} {number(r[m], r[f'{m}_std'])}" for m, title in MEASURES if not pd.isna(r[m])]
        lines += [f"- {'; '.join(measures)}", ""]
        grids = explore.logged_images(r["run_ids"][0]).get(keys.STYLISED, {})
        if grids:
            path = out / f"stylised-{_file_name(r['setting'])}.png"
            Image.fromarray(explore.image(r["run_ids"][0], grids[max(grids)])).save(path)
            files.append(path)
            lines += [f"![every content image with every style: {r['setting']}]({path.name})", ""]
    return lines, files


def decoders(runs: pd.DataFrame) -> list[str]:
    """The decoders trained (decoder_train runs): kind, steps, final losses, time."""
    done = runs[(runs[ABLATION] == "decoder_train") & (runs["status"] == Status.FINISHED)]
    if done.empty:
        return []
    lines = ["## Decoders", ""]
    for _, r in done.iterrows():
        losses = [
            f"{c.removeprefix('metrics.')} {r[c]:.4f}" for c in sorted(done.columns) if c.startswith("metrics.loss_")
        ]
        seconds = r.get(f"metrics.{keys.DECODER_SECONDS}")
        took = "" if not isinstance(seconds, float) or np.isnan(seconds) else f", {seconds:.0f} s"
        lines.append(
            f"- {r['tags.mlflow.runName']}: {r.get('params.decoder_kind')}, {r.get('params.steps')} steps{took}; "
            f"final {', '.join(losses) or 'losses not logged'}"
        )
    return [*lines, ""]


def report(experiment: str, runs: pd.DataFrame, out_dir: Path | None = None) -> list[Path]:
    """The style lab's term summary of these runs, under out_dir (default runs/report/<experiment>/):
    report.md with its figures, report.html (self-contained) and table.tex. Returns the files."""
    t = swap_table(runs)
    if t.empty:
        raise ParamError(
            f"no finished swap runs in experiment '{experiment}' yet: run `labkit ablate params/swap_argmax.yaml` first"
        )
    out = Path(out_dir) if out_dir else runs_dir() / "report" / experiment
    out.mkdir(parents=True, exist_ok=True)
    files = compare.save_figure(tradeoff_figure(t, runs), out / "tradeoff")
    settings, grids = per_setting(t, out, dict(zip(runs["run_id"], runs["tags.mlflow.runName"])))
    used = runs[runs["run_id"].isin({i for ids in t["run_ids"] for i in ids}) | (runs[ABLATION] == "decoder_train")]
    log, plan = lab_log(set(used["run_id"]))
    text = "\n".join(
        [
            f"# Term summary: experiment `{experiment}` ({dt.date.today():%Y-%m-%d})",
            "",
            *provenance(used),
            "## The swap settings",
            "",
            *markdown_table(t),
            "",
            f"![content loss against style loss, one point per run]({files[0].name})",
            "",
            *settings,
            *decoders(runs),
            *log,
            *plan,
        ]
    )
    files += grids + [out / "report.md", out / "report.html", out / "table.tex"]
    files[-3].write_text(text, encoding="utf-8")
    files[-2].write_text(compare.html_page(text, out), encoding="utf-8")
    files[-1].write_text(latex(t, experiment), encoding="utf-8")
    return files
