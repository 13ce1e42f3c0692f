"""The term summary, written from the runs: `labkit report --experiment faces`.

What the group reads at the end of a term (the seeds' summary, by hand until now): what was
measured and whether the numbers compare; the FID table with its intervals, paired differences
and verdicts; per ablation its loss formula and numbers; the FID curves and the same test faces
side by side; per subset; the lab log's entries about these runs, and their ideas as next
term's plan. Written under runs/report/<experiment>/ as Markdown with its figures, one
self-contained HTML page, and the table as LaTeX (booktabs) for a paper. Everything is read
from the MLflow store, as compare reads it: the report is compare's table, told in full.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd

from . import compare, keys
from .config import ParamError
from .paths import runs_dir


def tag_values(runs: pd.DataFrame, name: str) -> list[str]:
    column = runs.get(f"tags.{name}", pd.Series(dtype=object)).dropna()
    return sorted({str(v) for v in column if str(v)})


def provenance(runs: pd.DataFrame, t: pd.DataFrame) -> list[str]:
    """What makes the numbers comparable (or says they are not): how FID was measured, on which
    faces and data, by which code."""
    comparable = tag_values(runs, keys.FID_COMPARABLE)
    lines = ["## What was measured", ""]
    for (backbone, n, faces, generation), block in t.groupby(compare.MEASUREMENT, sort=False):
        lines.append(
            f"- {backbone} features, N = {n} test faces (faces digest `{str(faces)[:12]}`), {generation}: "
            f"{', '.join(block['setting'])}"
        )
    weights = tag_values(runs, "fid.weights_sha256")
    lines += [
        f"- FID by {', '.join(tag_values(runs, 'fid.library')) or 'pytorch-fid'}; backbone weights sha256 "
        + (", ".join(f"`{w[:12]}`" for w in weights) or "unknown"),
        f"- data: {', '.join(f'`{d[:12]}`' for d in tag_values(runs, keys.DATA_FINGERPRINT)) or 'unknown'}",
        f"- code: commit {', '.join(f'`{c[:10]}`' for c in tag_values(runs, keys.SOURCE_COMMIT)) or 'unknown'}",
        "",
    ]
    if comparable == ["yes"] and len(t.groupby(compare.MEASUREMENT)) == 1:
        lines += ["Every number below was measured the same way: they compare with each other.", ""]
    else:
        why = [c.removeprefix("NO: ") for c in comparable if c != "yes"]
        lines += [
            "**Not every number compares**: "
            + ("; ".join(why) if why else "the runs were measured in more than one way (see each block)")
            + ". Published FIDs compare only with Inception features on the same test faces.",
            "",
        ]
    return lines


def per_ablation(t: pd.DataFrame) -> list[str]:
    """Each row of the table told in words: objective, seeds, FID with its interval, mean and best
    FID, and its difference from the baseline with the verdict and the verdict's power."""
    lines = ["## Per ablation", ""]
    for _, r in t.iterrows():
        lines += [f"### {r['setting']}", "", f"Objective: {r['loss']}", ""]
        lines.append(f"- seeds: {compare.seeds_text(r['seeds'])}")
        lines.append(
            f"- FID at the last evaluation {compare.plus_minus(r['fid'], r['fid_std'])}, 95% interval "
            f"{compare.interval_text(r['fid_ci_low'], r['fid_ci_high'])} ({r['interval'] or 'no interval'})"
        )
        lines.append(
            f"- mean FID over the evaluations {compare.plus_minus(r['mean_fid'], r['mean_fid_std'])}; best FID "
            f"{r['fid_best']:.2f} (picked on the {r['best_on']} faces"
            + (", so optimistic)" if r["best_on"] == "test" else ")")
        )
        if r["baseline_setting"]:
            power = (
                ""
                if pd.isna(r["delta_detectable"])
                else f"; the smallest difference it tells apart: {r['delta_detectable']:.2f}"
            )
            lines.append(f"- against {r['baseline_setting']}: Δ FID {compare.delta_text(r)}, {r['verdict']}{power}")
        lines.append("")
    return lines


def lab_log(run_ids: set[str]) -> tuple[list[str], list[str]]:
    """(the lab log's entries that refer to these runs, each run named by its summary; their
    Ideas, as next term's plan)."""
    from . import lablog
    from .lablog.runs import _run_ids

    resolver = lablog.Resolver()
    entries = [e for e in lablog.all_entries() if _run_ids(e.text(empty_sections=False), resolver, e.date) & run_ids]
    if not entries:
        none = "No entry of the lab log refers to these runs (`labkit log add ... run:NAME`)."
        return ["## Lab log", "", none, ""], []
    text = lablog.to_text(sorted(entries, key=lambda e: e.date), resolver)
    # an entry's headings (its date, its sections) two levels down, under this section's
    body = [("##" + line) if line.startswith("#") else line for line in text.splitlines()]
    ideas = [line for e in entries for line in e.sections.get("Ideas", []) if line.strip()]
    plan = ["## Next term", "", *ideas, ""] if ideas else []
    return ["## Lab log", "", *body, ""], plan


def latex_escape(text: str) -> str:
    for a, b in (("\\", r"\textbackslash{}"), ("&", r"\&"), ("%", r"\%"), ("_", r"\_"), ("#", r"\#"), ("$", r"\$")):
        text = text.replace(a, b)
    return text.replace("±", r"$\pm$").replace("Δ", r"$\Delta$").replace("·", r"$\cdot$").replace("Σ", r"$\Sigma$")


def latex(t: pd.DataFrame, experiment: str) -> str:
    """The table as LaTeX with booktabs (\\usepackage{booktabs}): one row per setting, FID as
    mean ± std over seeds with its 95% interval, the difference from the baseline and its verdict."""
    rows = []
    for _, r in t.iterrows():
        delta = compare.delta_text(r)
        cells = [
            r["setting"],
            str(r["runs"]),
            compare.plus_minus(r["fid"], r["fid_std"]),
            compare.interval_text(r["fid_ci_low"], r["fid_ci_high"]),
            f"{r['fid_best']:.2f}",
            compare.plus_minus(r["kid"], r["kid_std"], 4),
            "--" if delta == "-" else delta,
            r["verdict"] or "--",
        ]
        rows.append(" & ".join(latex_escape(c) for c in cells) + r" \\")
    n = ", ".join(str(v) for v in t["n_real"].unique())
    return "\n".join(
        [
            r"\begin{table}[t]",
            r"\centering",
            rf"\caption{{FID on {latex_escape(experiment)} (N = {n} test faces): mean $\pm$ std over seeds, "
            r"95\% jackknife interval; $\Delta$ against the baseline, paired over the test faces.}",
            r"\begin{tabular}{lrrlrrll}",
            r"\toprule",
            r"Ablation & Seeds & FID & 95\% interval & Best FID & KID & $\Delta$ FID [95\%] & Verdict \\",
            r"\midrule",
            *rows,
            r"\bottomrule",
            r"\end{tabular}",
            r"\end{table}",
            "",
        ]
    )


def report(
    experiment: str, out_dir: Path | None = None, mixed: bool = False, runs: pd.DataFrame | None = None
) -> list[Path]:
    """The term summary of the experiment's finished runs (`runs`, when compare.collect read them
    already), under out_dir (default runs/report/<experiment>/): report.md with its figures,
    report.html (self-contained) and table.tex; with `mixed`, runs measured differently each in
    their own block, as compare's. Returns the files written."""
    runs = compare.collect(experiment) if runs is None else runs
    t = compare.table(runs, mixed=mixed)
    if t.empty:
        raise ParamError(
            f"no finished runs with an FID in experiment '{experiment}' yet: run `labkit ablate params/....yaml` first"
        )
    out = Path(out_dir) if out_dir else runs_dir() / "report" / experiment
    out.mkdir(parents=True, exist_ok=True)
    files = compare.save_figure(compare.fid_curves_figure(t), out / "fid-curves")
    figures = {"FID over training, per ablation": files[0]}
    grid = compare.cross_ablation_grid(runs)
    if grid is not None:
        files += compare.save_figure(grid, out / "samples")
        figures["photo | real sketch | each ablation, on the same test faces"] = files[-3]
    used = runs[runs["run_id"].isin({i for ids in t["run_ids"] for i in ids})]
    log, plan = lab_log(set(used["run_id"]))
    table = compare.to_markdown(t, experiment, figures).splitlines()[1:]  # its own title goes
    text = "\n".join(
        [
            f"# Term summary: experiment `{experiment}` ({dt.date.today():%Y-%m-%d})",
            "",
            *provenance(used, t),
            *table,
            "",
            *per_ablation(t),
            *log,
            *plan,
        ]
    )
    files += [out / "report.md", out / "report.html", out / "table.tex"]
    files[-3].write_text(text, encoding="utf-8")
    files[-2].write_text(compare.html_page(text, out), encoding="utf-8")
    files[-1].write_text(latex(t, experiment), encoding="utf-8")
    return files
