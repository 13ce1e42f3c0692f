"""`labkit compare`: the FID table across the ablations of an experiment (or of one sweep).

One row per setting (runs that differ only in their seed): runs and seeds, FID at the last
evaluation as mean ± std over seeds with its 95% jackknife interval (labkit.metrics.jackknife;
runs logged before it keep their bootstrap intervals, labkit.metrics.bootstrap),
"mean FID" (over a run's evaluations, then over seeds), best FID (marked when picked
on the test set), KID, N, FID and KID per subset (cuhk / ar / xm2vts), and the difference from
the baseline row set up most like it, with its paired interval and verdict. With `by`, FID
against each factor, as a table and a figure.
Runs whose FIDs were measured differently (another backbone, N or test set) are refused
together unless asked (`mixed`), and then never share a block.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import mlflow
import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException

from . import evaluators, keys, track, viz
from .config import ParamError, SketchConfig, closest
from .keys import Status
from .metrics import bootstrap, jackknife
from .paths import runs_dir
from .terms import loss_formula

SMOKE_BANNER = (
    "!! SMOKE NUMBERS: FID below comes from a random-init Inception (no weights on this machine).\n"
    "!! They show the pipeline works; they are NOT comparable with real or published FID."
)


def collect(experiment: str, sweep: str = "") -> pd.DataFrame:
    """Every ablation run of the experiment (of one sweep, by its parent's name or id), one row
    each (MLflow's pandas columns); an unknown experiment or sweep is refused with the list of
    those that exist."""
    c = track.client(create=False)
    exp = track.existing_experiment(c, experiment)
    runs = _subsets_renamed(
        mlflow.search_runs(
            [exp.experiment_id], filter_string=f"tags.`{keys.KIND}` = '{keys.TRAIN}'", output_format="pandas"
        )
    )
    if not sweep:
        return runs
    parents = c.search_runs([exp.experiment_id], f"tags.`{keys.KIND}` = '{keys.SWEEP}'", max_results=5000)
    parent = track.find_reference(sweep, parents)
    if parent is None:
        raise ParamError(
            f"no sweep '{sweep}' in experiment '{experiment}'; its sweeps are: "
            f"{', '.join(p.info.run_name for p in parents) or 'none yet (labkit ablate --grid ...)'}"
        )
    members = set(
        runs[runs.get(_tag(keys.PARENT), pd.Series(index=runs.index, dtype=object)) == parent.info.run_id]["run_id"]
    )
    try:  # with the runs of earlier sweeps that this one took part in
        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
        listed = c.download_artifacts(parent.info.run_id, keys.SWEEP_RUNS, tempfile.mkdtemp())
        members |= set(json.loads(Path(listed).read_text()))
    except (MlflowException, OSError, ValueError):
        pass
    return runs[runs["run_id"].isin(members)]


def _subset_name(name: str) -> str:
    """A per-subset name as runs logged before keys.SUBSET_SEPARATOR wrote it (`fid/cuhk`), as now."""
    return name.replace("/", keys.SUBSET_SEPARATOR) if not name.startswith("system/") else name


def _subsets_renamed(runs: pd.DataFrame) -> pd.DataFrame:
    """Older runs' per-subset columns under today's names, merged into those of newer runs."""
    for column in [c for c in runs.columns if c.startswith(("metrics.", "tags.fid.")) and "/" in c]:
        prefix, name = column.split(".", 1)
        new = f"{prefix}.{_subset_name(name)}"
        if new == column:  # system/...: MLflow's own names
            continue
        runs[new] = runs[new].combine_first(runs[column]) if new in runs else runs[column]
        runs = runs.drop(columns=column)
    return runs


def _config_of(row: pd.Series) -> SketchConfig:
    """The config of a run from its row of search_runs (params are the `params.*` columns)."""
    return SketchConfig.from_logged(
        {k[len("params.") :]: v for k, v in row.items() if k.startswith("params.") and isinstance(v, str)}
    )


def _metric(name: str) -> str:
    return f"metrics.{name}"


def _tag(name: str) -> str:
    return f"tags.{name}"


def mean_std(values: pd.Series) -> tuple[float, float]:
    values = values.dropna().astype(float)
    if values.empty:
        return float("nan"), float("nan")
    return float(values.mean()), float(values.std(ddof=1)) if len(values) > 1 else float("nan")


# what decides a run's result, less the seed, as logged: runs that share these are one row, averaged over seeds
DEFAULT_SETTINGS = {k: str(v) for k, v in SketchConfig().identity().items() if k not in ("seed", "experiment")}
SETTINGS = list(DEFAULT_SETTINGS)


def _settings(row: pd.Series) -> dict[str, str]:
    """A run's settings as logged (a field it predates: its default)."""
    return {
        name: row[f"params.{name}"] if isinstance(row.get(f"params.{name}"), str) else default
        for name, default in DEFAULT_SETTINGS.items()
    }


MEASUREMENT = ["backbone", "n_real", "faces", "generation"]  # the table's columns that say how FID was measured
# how runs logged before these tags generated and measured their sketches
EARLIER_GENERATION = {keys.FID_INFERENCE: "eval", keys.FID_REGION: "canvas"}


def _measurement(row: pd.Series) -> tuple[str, int, str, str]:
    """What an FID was measured with: the backbone, N, which test faces (their names' digest, or
    for runs that predate it, the data's fingerprint) and how the sketches were generated and cut
    (inference mode, region)."""
    faces = row.get(_tag(keys.FID_FACES))
    return (
        row[_tag(keys.FID_BACKBONE)],
        int(row[_tag(keys.FID_N_REAL)]),
        faces if isinstance(faces, str) and faces else row.get(_tag(keys.DATA_FINGERPRINT), ""),
        _generation(row),
    )


def _generation(row: pd.Series) -> str:
    """'train mode, canvas': the inference mode the sketches were generated in and what FID saw."""
    inference, region = (
        row.get(_tag(key)) if isinstance(row.get(_tag(key)), str) else earlier
        for key, earlier in EARLIER_GENERATION.items()
    )
    return f"{inference} mode, {region}"


def _describe(measurement: tuple) -> str:
    backbone, n, faces, generation = measurement
    return f"{backbone} backbone, N = {n} test faces ({faces}), sketches generated in {generation}"


def check_measurements(done: pd.DataFrame, mixed: bool) -> None:
    """Refuse (unless mixed) runs whose FIDs were measured differently: another backbone, another
    N or other test faces give numbers that do not compare."""
    found = done.apply(_measurement, axis=1).value_counts() if len(done) else pd.Series(dtype=int)
    if len(found) > 1 and not mixed:
        listing = "\n  ".join(f"{count} run(s): {_describe(m)}" for m, count in found.items())
        raise ParamError(
            f"these runs' FIDs were measured differently:\n  {listing}\nFIDs from different backbones, "
            "test sets, N, inference modes or regions do not compare (FID is biased by N). Compare one "
            "experiment (or sweep) of one measurement, or pass --mixed to show each measurement in its own block."
        )


OLDER = "‡"  # marks an interval of runs logged before the lab's current method (jackknife.METHOD)
OLDER_NOTES = {
    bootstrap.METHOD: f"{OLDER} Runs logged before the jackknife: their intervals are the bootstrap's, wider than "
    'the sampling they describe (docs/methods/fid.md, "How sure a number is"), and do not pair with later '
    "runs'.",
    jackknife.DELETE_ONE: f"{OLDER} Runs logged before the delete-two values: their intervals are the delete-one "
    "jackknife's, up to 1.3 times the true spread where a test set has fewer faces than dimensions, and their "
    "differences from later runs are paired by the delete-one values alone.",
}


def _left_out(run_id: str) -> tuple[str, dict] | None:
    """(method, arrays): what a run logged at its last evaluation for its intervals: the values
    with each face (and pair) left out, or a run logged before the jackknife its bootstrap
    replicates (None when it has neither)."""
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # one bar per run would fill the table
    for artifact in (keys.JACKKNIFE, keys.BOOTSTRAP):
        try:
            with np.load(track.client().download_artifacts(run_id, artifact, tempfile.mkdtemp())) as f:
                arrays = {_subset_name(k): v for k, v in f.items()}
        except (MlflowException, OSError, ValueError):
            continue
        if artifact == keys.BOOTSTRAP:
            return bootstrap.METHOD, arrays
        paired = any(k.endswith(jackknife.PAIRED) for k in arrays)
        return (jackknife.METHOD if paired else jackknife.DELETE_ONE), arrays
    return None


def _row_method(found: list[tuple[str, dict]]) -> str | None:
    """The method a row's runs share: the delete-one jackknife where some lack the delete-two
    values; None where they hold a bootstrap and a jackknife, or the faces differ in number."""
    methods = {method for method, _ in found}
    if len({len(arrays["fid"]) for _, arrays in found}) != 1:
        return None
    if methods == {jackknife.METHOD, jackknife.DELETE_ONE}:
        return jackknife.DELETE_ONE
    return methods.pop() if len(methods) == 1 else None


def _intervals(group: pd.DataFrame, left_out: dict) -> dict:
    """The row's 95% intervals (overall and per subset, FID and KID) from its runs' left-out
    values (or older runs' bootstrap replicates), over faces and seeds; with the method, the
    estimates and the tables kept for paired differences. The estimates are the metrics' latest
    values: a finished run's final evaluation, the one its values were computed at. None when
    a run has neither, or the runs hold different kinds."""
    found = [left_out.get(r) for r in group["run_id"]]
    method = None if any(f is None for f in found) else _row_method(found)
    if method is None:
        return {}
    out = {"_method": method, "_tables": {}}
    for name in found[0][1]:
        if name == "epoch" or name.endswith(jackknife.PAIRED) or _metric(name) not in group:
            continue
        estimates = group[_metric(name)].astype(float).to_numpy()
        table = np.stack([arrays[name] for _, arrays in found], 1)
        paired = name + jackknife.PAIRED
        two = None
        if method == jackknife.METHOD and all(paired in arrays for _, arrays in found):  # a subset of 3 has none
            two = np.stack([arrays[paired] for _, arrays in found], 1)
        out["_tables"][name] = (method, estimates, table, two)
        if method == bootstrap.METHOD:
            out[f"{name}_ci"] = bootstrap.mean_interval(estimates, table)
        else:
            out[f"{name}_ci"] = jackknife.mean_interval(jackknife.LeftOut(estimates, table, two))
    return out


def setting_name(ablation: str, varied: dict) -> str:
    """A row's name: its ablation and the settings that tell it from the ablation's other rows."""
    return f"{ablation} ({', '.join(f'{k}={v}' for k, v in varied.items())})" if varied else ablation


def _interval_kind(group: pd.DataFrame, intervals: dict) -> str:
    """What a row's interval spans, marked when it is an older run's bootstrap interval."""
    if not intervals:
        return ""
    spans = "faces + seeds" if len(group) > 1 else "faces"
    return spans + ("" if intervals["_method"] == jackknife.METHOD else OLDER)


def _score_columns(group: pd.DataFrame, intervals: dict) -> dict:
    """A row's FID and KID (mean ± std over its runs), its best FID and the faces that picked it."""
    fid, fid_std = mean_std(group.get(_metric(keys.FID_LAST), pd.Series(dtype=float)))
    mean_fid, mean_fid_std = mean_std(group.get(_metric(keys.FID_MEAN), pd.Series(dtype=float)))
    kid, kid_std = mean_std(group.get(_metric(keys.KID_LAST), pd.Series(dtype=float)))
    selected = group.get(_tag(keys.FID_BEST_SELECTED_ON), pd.Series(dtype=object)).fillna("test")
    return dict(
        fid=fid,
        fid_std=fid_std,
        mean_fid=mean_fid,
        mean_fid_std=mean_fid_std,
        fid_best=float(group[_metric(keys.FID_BEST)].astype(float).min()),
        best_on="validation" if selected.str.startswith("validation").all() else "test",
        kid=kid,
        kid_std=kid_std,
        n_fake=int(group[_metric(keys.FID_N_FAKE)].iloc[0]),
        interval=_interval_kind(group, intervals),
        interval_method=intervals.get("_method", ""),
    )


def _more_columns(group: pd.DataFrame, subsets: list[str], intervals: dict) -> dict:
    """A row's intervals, its per-subset FID and KID, and the evaluators' columns (means over its
    runs; a tag column: its first run's)."""
    mean = lambda name: mean_std(group[_metric(name)])[0] if _metric(name) in group else np.nan  # noqa: E731
    row = {}
    for metric in (keys.FID, keys.KID):
        row[keys.ci(metric, "low")], row[keys.ci(metric, "high")] = intervals.get(f"{metric}_ci", (np.nan, np.nan))
    for subset in subsets:
        for metric in (keys.FID, keys.KID):
            name = keys.per_subset(metric, subset)
            row[name], row[f"{name}_ci"] = mean(name), intervals.get(f"{name}_ci", (np.nan, np.nan))
        n = group.get(_tag(keys.per_subset(keys.FID_N_REAL, subset)), pd.Series(dtype=object)).dropna()
        row[f"n/{subset}"] = int(n.iloc[0]) if len(n) else 0
    for column in (c for evaluator in evaluators.columns() for c in evaluator.columns):
        if column.tag:
            row[column.key] = group.get(_tag(column.key), pd.Series([""])).fillna("").iloc[0]
        else:
            row.update({k: mean(k) for k in (column.key, column.then) if k})
    return row


def _against_baseline(out: pd.DataFrame, tables: list, baseline: str) -> None:
    """Each row's difference from the closest baseline row, with its paired interval and verdict."""
    for column in ("delta_vs_baseline", "delta_ci_low", "delta_ci_high", "delta_detectable"):
        out[column] = np.nan
    out["baseline_setting"], out["verdict"] = "", ""
    for i, row in out.iterrows():
        # the same measurement of the same data (the synthetic set at another misalignment has the
        # same face names but other test sketches)
        candidates = [
            j
            for j, other in out.iterrows()
            if other["ablation"] == baseline and all(other[k] == row[k] for k in (*MEASUREMENT, "data"))
        ]
        if not candidates or row["ablation"] == baseline:
            continue
        # the baseline row set up most like this one (fewest settings apart), then the one with most seeds
        j = min(
            candidates,
            key=lambda j: (sum(out.at[j, "values"][k] != row["values"][k] for k in SETTINGS), -out.at[j, "runs"]),
        )
        out.at[i, "baseline_setting"] = out.at[j, "setting"]
        out.at[i, "delta_vs_baseline"] = row["fid"] - out.at[j, "fid"]
        if tables[i] is None or tables[j] is None:
            out.at[i, "verdict"] = "n/a (no intervals)"
            continue
        (method, *a), (other, *b) = tables[i], tables[j]
        if bootstrap.METHOD in (method, other) and method != other:
            out.at[i, "verdict"] = f"n/a ({OLDER} runs logged before the jackknife do not pair with later ones)"
            continue
        if len(a[1]) != len(b[1]):
            out.at[i, "verdict"] = "n/a (the rows' values do not line up face by face)"
            continue
        if method == bootstrap.METHOD:
            _, low, high = bootstrap.difference(*a[:2], *b[:2])
            size = bootstrap.detectable(low, high)
        else:  # a row without delete-two values pairs with the other by delete-one values alone
            _, low, high, size = jackknife.difference(jackknife.LeftOut(*a), jackknife.LeftOut(*b))
        out.at[i, "delta_ci_low"], out.at[i, "delta_ci_high"] = low, high
        out.at[i, "delta_detectable"], out.at[i, "verdict"] = size, jackknife.verdict(low, high)


def table(runs: pd.DataFrame, baseline: str = "baseline", mixed: bool = False) -> pd.DataFrame:
    """One row per measurement and setting (runs that differ only in their seed): FID and KID
    as mean ± std over seeds with their 95% intervals, and the difference from the closest
    baseline row with its paired interval and verdict."""
    if runs.empty or _tag(keys.FID_BACKBONE) not in runs.columns:  # no run measured FID (e.g. style runs)
        return pd.DataFrame()
    done = runs[(runs["status"] == Status.FINISHED) & runs[_tag(keys.FID_BACKBONE)].notna()]
    if done.empty:  # every run failed, was killed or is still running
        return pd.DataFrame()
    check_measurements(done, mixed)
    first = _metric(keys.per_subset(keys.FID, ""))
    subsets = sorted(c[len(first) :] for c in runs.columns if c.startswith(first))
    settings = done.apply(_settings, axis=1)
    keyed = done.assign(_m=done.apply(_measurement, axis=1), _s=settings.map(lambda s: tuple(s.values())))
    # a row is named by its ablation and the settings that tell it from the ablation's other rows
    varying = {
        key: [k for k in SETTINGS if len({s[k] for s in settings[group.index]}) > 1]
        for key, group in keyed.groupby(["_m", _tag(keys.ABLATION)], sort=False)
    }
    left_out = {run_id: _left_out(run_id) for run_id in done["run_id"]}
    rows, tables = [], []
    for (measurement, _), group in keyed.groupby(["_m", "_s"], sort=False):
        first, ablation = group.iloc[0], group.iloc[0][_tag(keys.ABLATION)]
        values = settings[group.index[0]]
        varied = {k: values[k] for k in varying[(measurement, ablation)]}
        intervals = _intervals(group, left_out)
        row = dict(
            backbone=measurement[0],
            n_real=measurement[1],
            faces=measurement[2],
            generation=measurement[3],
            ablation=ablation,
            setting=setting_name(ablation, varied),
            varied=varied,
            values=values,
            loss=loss_formula(_config_of(first)),
            runs=len(group),
            run_ids=list(group["run_id"]),
            seeds=",".join(str(s) for s in sorted(group["params.seed"].astype(int).unique())),
            **_score_columns(group, intervals),
            not_finished=int(((runs[_tag(keys.ABLATION)] == ablation) & (runs["status"] != Status.FINISHED)).sum()),
        )
        row.update(_more_columns(group, subsets, intervals))
        data = first.get(_tag(keys.DATA_FINGERPRINT))
        row["data"] = data if isinstance(data, str) else ""  # a run without the tag reads NaN, never equal
        rows.append(row)
        tables.append(intervals.get("_tables", {}).get(keys.FID))
    out = pd.DataFrame(rows)
    if out.empty:
        return out
    _against_baseline(out, tables, baseline)
    order = out["ablation"].map(lambda a: a != baseline)
    return (
        out.assign(_order=order)
        .sort_values(["backbone", "n_real", "generation", "_order", "setting"], kind="stable")
        .drop(columns="_order")
        .reset_index(drop=True)
    )


def plus_minus(mean: float, std: float, digits: int = 2) -> str:
    if np.isnan(mean):
        return "-"
    return f"{mean:.{digits}f}" + (f" ± {std:.{digits}f}" if not np.isnan(std) else "")


def interval_text(low: float, high: float, digits: int = 2, sign: bool = False) -> str:
    if np.isnan(low):
        return "-"
    f = f"{{:{'+' if sign else ''}.{digits}f}}"
    return f"[{f.format(low)}, {f.format(high)}]"


def seeds_text(text: str) -> str:
    seeds = text.split(",")
    return f"{len(seeds)} ({', '.join(seeds)})"


LEGEND = (
    "FID and KID: lower is better. ± is the std over seeds. FID (last): at the final evaluation, with its "
    "95% jackknife interval over the test faces (and over the seeds, with several: see docs/methods/fid.md, "
    '"How sure a number is"); mean FID: over a run\'s evaluations; best FID: the '
    "lowest evaluation, † where the best epoch was picked on the test set itself (optimistic; set "
    "val_fraction to pick it on held-out training faces). Δ: against the baseline row set up most like this "
    "one, with its paired interval; the verdict says whether that interval excludes 0. N is the number of "
    "test faces: FID is biased upwards at small N, so compare at equal N and read KID beside it."
)


HEADER = [
    "ablation",
    "objective",
    "seeds",
    "FID (last)",
    "95% interval",
    "mean FID",
    "best FID",
    "KID",
    "N",
    "Δ FID vs baseline [95%]",
    "verdict",
]


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    """A Markdown table, and the blank line after it."""
    return [_row(header), "|" + "---|" * len(header), *map(_row, rows), ""]


def delta_text(r: pd.Series) -> str:
    """A row's difference from its baseline with its paired interval: `+0.91 [+0.86, +0.96]`,
    `-` without a baseline."""
    if np.isnan(r["delta_vs_baseline"]):
        return "-"
    interval = "" if np.isnan(r["delta_ci_low"]) else interval_text(r["delta_ci_low"], r["delta_ci_high"], sign=True)
    return f"{r['delta_vs_baseline']:+.2f} {interval}".strip()


def _main_cells(r: pd.Series) -> list[str]:
    return [
        r["setting"],
        r["loss"],
        seeds_text(r["seeds"]),
        plus_minus(r["fid"], r["fid_std"]),
        interval_text(r["fid_ci_low"], r["fid_ci_high"]) + (OLDER if r["interval"].endswith(OLDER) else ""),
        plus_minus(r["mean_fid"], r["mean_fid_std"]),
        f"{r['fid_best']:.2f}" + ("†" if r["best_on"] == "test" else ""),
        plus_minus(r["kid"], r["kid_std"], 4),
        str(r["n_real"]) if r["n_real"] == r["n_fake"] else f"{r['n_real']} real / {r['n_fake']} generated",
        delta_text(r),
        r["verdict"] or "-",
    ]


def _detectable(block: pd.DataFrame) -> list[str]:
    """The verdicts' power, under the table: per row with a paired difference, the smallest true
    difference from its baseline that the verdict would call (95% interval, 80% power)."""
    rows = block.dropna(subset=["delta_detectable"])
    if rows.empty:
        return []
    sizes = ", ".join(f"{r['setting']} {r['delta_detectable']:.2f}" for _, r in rows.iterrows())
    return [
        f"Smallest difference from the baseline this table tells apart (a Δ its verdict calls 4 times in 5, "
        f"at N = {block['n_real'].iloc[0]} and these runs' spread): {sizes} FID. Smaller real differences "
        "read as `no clear difference`; more test faces or seeds narrow it.",
        "",
    ]


def _subset_table(block: pd.DataFrame, subsets: list[str]) -> list[str]:
    fid, kid = (lambda s: keys.per_subset(keys.FID, s)), (lambda s: keys.per_subset(keys.KID, s))  # noqa: E731
    cell = lambda r, s: f"{r[fid(s)]:.2f} {interval_text(*r[f'{fid(s)}_ci'])} · {r[kid(s)]:.4f} (N {r[f'n/{s}']})"  # noqa: E731
    return [
        "Per subset, at the final evaluation: FID [95% interval] · KID (N test faces)",
        "",
        *_table(["ablation", *subsets], [[r["setting"], *[cell(r, s) for s in subsets]] for _, r in block.iterrows()]),
    ]


def _cell(r: pd.Series, column: evaluators.Column) -> str:
    if column.tag:
        return str(r[column.key])
    if column.then:
        after = r[column.then]
        return f"{r[column.key]:.{column.digits}f} → {after:.{column.digits}f}" if not np.isnan(after) else "-"
    return plus_minus(r[column.key], np.nan, column.digits)


def _evaluator_table(t: pd.DataFrame, evaluator: type[evaluators.Evaluator]) -> list[str]:
    """An evaluator's columns for the rows that have any of its numbers (none: no table)."""
    numbers = [k for c in evaluator.columns if not c.tag for k in (c.key, c.then) if k]
    shown = t[t[numbers].notna().any(axis=1)]
    if shown.empty:
        return []
    return [
        f"## {evaluator.title}",
        "",
        *([evaluator.note, ""] if evaluator.note else []),
        *_table(
            ["ablation", *[c.header for c in evaluator.columns]],
            [[r["setting"], *[_cell(r, c) for c in evaluator.columns]] for _, r in shown.iterrows()],
        ),
    ]


def _factor_table(t: pd.DataFrame, factor: str) -> list[str]:
    by_value = t.assign(_x=t["values"].map(lambda v: (_number(v[factor]) is None, _number(v[factor]) or 0, v[factor])))
    rows = [
        [
            r["values"][factor],
            r["setting"],
            seeds_text(r["seeds"]),
            plus_minus(r["fid"], r["fid_std"]),
            interval_text(r["fid_ci_low"], r["fid_ci_high"]),
        ]
        for _, r in by_value.sort_values(["_x", "setting"]).iterrows()
    ]
    return [f"## FID against {factor}", "", *_table([factor, "setting", "seeds", "FID (last)", "95% interval"], rows)]


def to_markdown(t: pd.DataFrame, experiment: str, figures: dict[str, Path] | None = None, by: list[str] = ()) -> str:
    """The table as Markdown: one table per measurement (smoke numbers apart, under a banner),
    one per subset, one per factor of `by`, and the figures embedded by relative path."""
    first = keys.per_subset(keys.FID, "")
    subsets = [c[len(first) :] for c in t.columns if c.startswith(first) and not c.endswith("_ci")]
    lines = [f"# FID table: experiment `{experiment}` ({dt.datetime.now():%Y-%m-%d %H:%M})", ""]
    if (t["backbone"] != "inception").any():
        lines += ["```", SMOKE_BANNER, "```", ""]
    lines += [LEGEND, ""]
    blocks = list(t.groupby(MEASUREMENT, sort=False))
    for (backbone, n, _, generation), block in blocks:
        title = "Inception" if backbone == "inception" else f"{backbone} backbone: smoke numbers"
        lines += [f"## {title}" + (f", N = {n}, {generation}" if len(blocks) > 1 else ""), ""]
        lines += _table(HEADER, [_main_cells(r) for _, r in block.iterrows()])
        lines += _detectable(block)
        for method, note in OLDER_NOTES.items():
            lines += [note, ""] if (block["interval_method"] == method).any() else []
        lines += _subset_table(block, subsets) if subsets else []
    for evaluator in evaluators.columns():
        lines += _evaluator_table(t, evaluator)
    for factor in by:
        lines += _factor_table(t, factor)
    unfinished = int(t.drop_duplicates("ablation")["not_finished"].sum())
    if unfinished:
        lines += [f"{unfinished} run(s) not finished (running, failed or killed) are left out.", ""]
    for title, path in (figures or {}).items():
        lines += [f"![{title}]({path.name})", ""]
    return "\n".join(lines)


def _columns(rows: list[list[str]]) -> list[str]:
    """Rows as text columns, each as wide as its widest cell."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]


TERMINAL = ["", "seeds", "FID (last)", "95%", "mean", "best", "KID", "N", "Δ vs baseline [95%]", "verdict"]


def for_terminal(result: tuple[str, pd.DataFrame, list[Path]], experiment: str, by=()) -> str:
    """What compare() returned, for a terminal: its table (to_terminal), or what it said instead."""
    text, t, files = result
    return to_terminal(t, experiment, t.attrs["left_out"], files, t.attrs["logged"], by) if files else text


def to_terminal(
    t: pd.DataFrame, experiment: str, left_out: list[str], files: list[Path], logged: str = "", by=()
) -> str:
    """The table for a terminal: the main columns aligned (the objectives, subsets and figures are
    in the files), FID against each factor of `by`, what each verdict can tell, the runs left out
    and why, and where it all went."""
    lines = [f"FID table, experiment '{experiment}' (lower is better; ± std over seeds)", ""]
    if (t["backbone"] != "inception").any():
        lines += [SMOKE_BANNER, ""]
    blocks = list(t.groupby(MEASUREMENT, sort=False))
    for (backbone, n, _, generation), block in blocks:
        if len(blocks) > 1:
            lines += [f"{'Inception' if backbone == 'inception' else 'smoke numbers'}, N = {n}, {generation}:"]
        cells = [_main_cells(r) for _, r in block.iterrows()]
        rows = [[c[0], c[2].split(" ")[0], *c[3:]] for c in cells]
        lines += _columns([TERMINAL, *rows]) + [""]
        lines += [line for line in _detectable(block) if line]
    for factor in by:
        rows = sorted(
            (
                [
                    str(r["values"][factor]),
                    r["setting"],
                    plus_minus(r["fid"], r["fid_std"]),
                    interval_text(r["fid_ci_low"], r["fid_ci_high"]),
                ]
                for _, r in t.iterrows()
            ),
            key=lambda row: (_number(row[0]) if _number(row[0]) is not None else float("inf"), row[0], row[1]),
        )
        lines += ["", f"FID against {factor}:", *_columns([[factor, "", "FID (last)", "95%"], *rows])]
    if left_out:
        lines += ["", f"left out, not finished: {', '.join(left_out)}"]
    if files:
        folder = files[0].parent
        lines += ["", f"wrote to {folder}: " + ", ".join(p.name for p in files if p.suffix != ".pdf")]
    if logged:
        lines += [f"logged to {logged}"]
    return "\n".join(lines)


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def factor_figure(t: pd.DataFrame, factor: str):
    """FID (last) against one factor: a line per setting of the other parameters, each point the
    mean over seeds with its 95% interval as an error bar (± std where there is none)."""
    fig, ax = plt.subplots(figsize=(6.4, 3.8), dpi=150, constrained_layout=True)
    others = t.apply(
        lambda r: setting_name(r["ablation"], {k: v for k, v in r["varied"].items() if k != factor}), axis=1
    )
    numeric = all(_number(r["values"][factor]) is not None for _, r in t.iterrows())
    categories = sorted({r["values"][factor] for _, r in t.iterrows()})
    for label, group in t.groupby(others, sort=True):
        xs = [
            (_number(v) if numeric else categories.index(v)) for v in (r["values"][factor] for _, r in group.iterrows())
        ]
        order = np.argsort(xs)
        ys = group["fid"].to_numpy()[order]
        low = np.where(np.isnan(group["fid_ci_low"]), group["fid"] - group["fid_std"].fillna(0), group["fid_ci_low"])
        high = np.where(np.isnan(group["fid_ci_high"]), group["fid"] + group["fid_std"].fillna(0), group["fid_ci_high"])
        ax.errorbar(
            np.asarray(xs)[order], ys, yerr=[ys - low[order], high[order] - ys], marker="o", capsize=3, label=label
        )
    if numeric:
        values = [_number(v) for v in categories]
        if min(values) > 0 and max(values) / min(values) >= 10:
            ax.set_xscale("log")
    else:
        ax.set_xticks(range(len(categories)), categories)
    ax.set_xlabel(factor)
    ax.set_ylabel("FID at the last evaluation (lower is better)")
    ax.set_title(f"FID against {factor} (mean over seeds, 95% interval)" + _smoke_mark(t))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return fig


def fid_curve(run_id: str) -> list[tuple[int, float]]:
    """A run's FID per evaluation: [(epoch, fid)]."""
    return [(m.step, m.value) for m in track.client().get_metric_history(run_id, keys.FID)]


def fid_band(run_id: str) -> list[tuple[int, float, float]]:
    """A run's 95% interval of FID per evaluation: [(epoch, low, high)]."""
    c = track.client()
    low, high = (
        {m.step: m.value for m in c.get_metric_history(run_id, keys.ci(keys.FID, side))} for side in ("low", "high")
    )
    return [(step, low[step], high[step]) for step in low if step in high]


def fid_curves_figure(t: pd.DataFrame):
    """FID over epochs, one line per row of the table (mean over its runs); a row of one run
    shows its 95% interval over the test faces as a band."""
    curves, bands = {}, {}
    for _, row in t.iterrows():
        per_epoch: dict[int, list[float]] = {}
        for run_id in row["run_ids"]:
            for step, value in fid_curve(run_id):
                per_epoch.setdefault(step, []).append(value)
        label = row["setting"] if row["backbone"] == "inception" else f"{row['setting']} ({row['backbone']})"
        curves[label] = [(step, float(np.mean(v))) for step, v in per_epoch.items()]
        if len(row["run_ids"]) == 1:
            bands[label] = fid_band(row["run_ids"][0])
    return viz.fid_curves(
        curves, title="FID over training (mean over seeds; band: one run's 95% interval)" + _smoke_mark(t), bands=bands
    )


def _smoke_mark(t: pd.DataFrame) -> str:
    """What a figure's title adds when its numbers come from a random-init backbone."""
    return (
        "\nSMOKE NUMBERS: random-init Inception, not comparable with real FID"
        if (t["backbone"] != "inception").any()
        else ""
    )


def cross_ablation_grid(runs: pd.DataFrame, n: int = 4, baseline: str = "baseline"):
    """photo | real sketch | each ablation's final model, on the same test faces: one finished
    run per ablation (lowest seed) that has a checkpoint. Ablations trained on other data or at
    another size than the first are left out. A figure at the model's own resolution (one image
    pixel per figure pixel), or None when no checkpoints are here."""
    from .data import load_faces
    from .train.loop import fixed_samples, trained_model

    done = runs[runs["status"] == Status.FINISHED].sort_values("params.seed")
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
        models[a][1].generate(samples["photo"], samples["landmarks"], samples["mask"]) for a in order
    ]
    return viz.titled_figure(viz.sample_grid(columns), ["photo", "real sketch", *order])


def html_page(markdown: str, folder: Path) -> str:
    """The Markdown as one HTML page with its figures inside (the MLflow UI shows HTML artifacts
    in a frame that cannot follow relative links)."""
    import base64
    import re

    import mistune

    body = mistune.html(markdown)
    embed = lambda m: f'src="data:image/png;base64,{base64.b64encode((folder / m.group(1)).read_bytes()).decode()}"'  # noqa
    body = re.sub(r'src="([^"/]+\.png)"', embed, body)
    return (
        "<!doctype html><html><head><meta charset='utf-8'><style>body{font-family:system-ui,sans-serif;"
        "margin:1.5em;color:#222} table{border-collapse:collapse;margin:.5em 0 1.5em} td,th{border:1px solid #ccc;"
        "padding:.25em .6em;text-align:right} td:first-child,td:nth-child(2),th{text-align:left} "
        "img{max-width:100%}</style></head><body>" + body + "</body></html>"
    )


def save_figure(fig, stem: Path) -> list[Path]:
    """A figure as PNG (at its own pixel size), PDF and SVG."""
    paths = [stem.with_suffix(ext) for ext in (".png", ".pdf", ".svg")]
    for path in paths:
        fig.savefig(path, dpi=fig.dpi)
    plt.close(fig)
    return paths


def _write(t: pd.DataFrame, runs: pd.DataFrame, experiment: str, sweep: str, by, out_dir: Path) -> tuple[str, list]:
    """The figures, and the table as Markdown, HTML and CSV, under out_dir; (the text, the files)."""
    stem = f"{experiment}-{sweep}" if sweep else experiment
    out_dir.mkdir(parents=True, exist_ok=True)
    files = save_figure(fid_curves_figure(t), out_dir / f"{stem}-fid")
    figures = {"FID over training": files[0]}
    for factor in by:
        files += save_figure(factor_figure(t, factor), out_dir / f"{stem}-by-{factor}")
        figures[f"FID against {factor}"] = files[-3]
    grid = cross_ablation_grid(runs)
    if grid is not None:
        files += save_figure(grid, out_dir / f"{stem}-samples")
        figures["photo | real sketch | each ablation, on the same test faces"] = files[-3]
    text = to_markdown(t, experiment + (f", sweep {sweep}" if sweep else ""), figures, by)
    files += [out_dir / f"{stem}.md", out_dir / f"{stem}.html", out_dir / f"{stem}.csv"]
    files[-3].write_text(text, encoding="utf-8")
    files[-2].write_text(html_page(text, out_dir), encoding="utf-8")
    _flat(t).to_csv(files[-1], index=False)
    return text, files


def _flat(t: pd.DataFrame) -> pd.DataFrame:
    """The table without its columns of dicts and lists: what a CSV and MLflow's table hold."""
    return t.drop(columns=["values", "varied", "run_ids"])


def _log_table(experiment: str, t: pd.DataFrame, files: list[Path]) -> str:
    """The table and its files, in a run of `<experiment>-compare` (apart from the training runs):
    its page."""
    c = track.client()
    run_id = c.create_run(
        track.experiment_id(c, f"{experiment}-compare"),
        run_name=f"{experiment} {dt.datetime.now():%Y-%m-%d %H:%M:%S}",
        tags={keys.KIND: keys.COMPARE, keys.COMPARED: experiment},
    ).info.run_id
    with track.OwnedRun(c, run_id, system_metrics=False) as run:
        c.log_table(run_id, _flat(t), keys.FID_TABLE)
        for path in files:
            c.log_artifact(run_id, str(path))
    return run.url()


def compare(
    experiment: str = "faces",
    out_dir: Path | None = None,
    log: bool = True,
    by: list[str] = (),
    sweep: str = "",
    mixed: bool = False,
) -> tuple[str, pd.DataFrame, list[Path]]:
    """The table as Markdown with its figures (FID curves; FID against each factor of `by`;
    photo | real sketch | each ablation), written under runs/compare/ (experiment.md, .html,
    .csv, and the figures as PNG, PDF and SVG) and logged to a run of the experiment
    `<experiment>-compare`, apart from the training runs. Returns the text, the table and the
    files written."""
    from .runs import sweep as sweep_dead

    for factor in by:
        if factor not in SETTINGS:
            raise ParamError(f"--by {factor}: not a setting of a face run{closest(factor, SETTINGS)}")
    runs = collect(experiment, sweep)
    if sweep_dead([experiment]):  # runs whose process died count as not finished, and say so
        runs = collect(experiment, sweep)
    t = table(runs, mixed=mixed)
    if t.empty:
        return (
            f"No finished runs with an FID in experiment '{experiment}' yet: run `labkit ablate params/....yaml` "
            "first.\n",
            t,
            [],
        )
    for factor in by:
        if len({r["values"][factor] for _, r in t.iterrows()}) < 2:
            raise ParamError(
                f"--by {factor}: every finished run has {factor}={t.iloc[0]['values'][factor]}; "
                "nothing to set against it"
            )
    text, files = _write(t, runs, experiment, sweep, by, Path(out_dir) if out_dir else runs_dir() / "compare")
    t.attrs["left_out"] = [
        f"{r['tags.mlflow.runName']} ({r['status']})" for _, r in runs.iterrows() if r["status"] != Status.FINISHED
    ]
    t.attrs["logged"] = _log_table(experiment, t, files) if log else ""
    return text, t, files
