"""The runner end to end: params file -> papermill kernel -> MLflow run -> FID table."""

import datetime as dt
import os
import re
import subprocess
import sys
import urllib.parse
from pathlib import Path

import nbformat
import numpy as np
import pytest
from conftest import ROOT, tiny_params, training_runs
from PIL import Image

from labkit import cli, keys, lablog, plan, track
from labkit.compare import SMOKE_BANNER
from labkit.data import write_synthetic_set
from labkit.viz import HEADER_PX


def _params(tmp_path, name, **extra):
    return tiny_params(tmp_path, name, **{"experiment": "t", **extra})


def _runs(experiment="t"):
    return training_runs(experiment)


def test_bad_params_are_refused_before_anything_runs(bare_lab, tmp_path, capsys):
    bad = _params(tmp_path, "bad", lamda_l1=10.0)
    wrong_type = _params(tmp_path, "wrong", n_epochs="two")
    assert cli.main(["ablate", str(bad), str(wrong_type)]) == 2
    err = capsys.readouterr().err
    assert "did you mean 'lambda_l1'" in err and "parameter 'n_epochs' must be int" in err
    assert cli.main(["ablate", str(_params(tmp_path, "tiny")), "--executor", "rey"]) == 2
    assert "no executor named 'rey' (did you mean 'ray'?)" in capsys.readouterr().err
    assert not (bare_lab / "mlflow.db").exists()  # nothing ran, no run was created


@pytest.mark.slow
def test_ablate_tracks_runs_keeps_failures_resumes_and_compares(lab, tmp_path, capsys):
    good = _params(tmp_path, "tiny")
    # faces that pass every check before the run, and too few to hold out: it fails inside the notebook
    faces = write_synthetic_set(tmp_path / "too-few-to-hold-out", count=8, progress=False)
    broken = _params(tmp_path, "broken", data_root=str(faces), val_fraction=0.05)
    assert cli.main(["ablate", str(good), str(broken), "--lablog"]) == 1  # one failed; logged though smoke runs
    captured = capsys.readouterr()
    out = captured.out
    assert "1 job(s)" not in out and "2 job(s): 1 ok, 1 failed" in out
    # while it ran, a line with its epoch and FID (a log's, not a terminal's: one per new FID);
    # then the summary with each run's FID and its page in the UI's training view
    assert re.search(r"tiny-s0  epoch \d+/\d+  step \d+/\d+.*FID \d+\.\d\d", captured.err), captured.err
    assert re.search(r"tiny-s0 +FINISHED +\d+\.\d\d +http://\S+/runs/\w+\?workflowType=machine_learning", out)

    runs = {r.info.run_name: r for r in _runs()}
    ok, failed = runs["tiny-s0"], runs["broken-s0"]
    actions = "\n".join(lablog.read_entry(lablog.log_dir() / f"{dt.date.today()}.md").sections["Actions"])
    assert f"  - run:{ok.info.run_id[:8]}\n" in actions + "\n"  # its name, status and FID render from it
    assert f"  - run:{failed.info.run_id[:8]}: DataError" in actions  # a failure carries its error
    assert ok.info.status == "FINISHED" and failed.info.status == "FAILED"
    for key in ("fid", "fid_best", "fid_mean", "kid", "loss_G"):
        assert key in ok.data.metrics
    c = track.client()
    assert (
        [a.path for a in c.list_artifacts(ok.info.run_id, "notebook")]
        == [  # the notebook, and as HTML
            f"notebook/tiny-s0-{ok.info.run_id[:8]}.{ext}" for ext in ("html", "ipynb")
        ]
    )
    images = [a.path for a in c.list_artifacts(ok.info.run_id, "images")]
    assert any("samples" in p for p in images) and any("error_heatmap" in p for p in images)
    executed = lab / dt.date.today().isoformat() / f"tiny-s0-{ok.info.run_id[:8]}.ipynb"
    nb = nbformat.read(executed, as_version=4)
    assert any("injected-parameters" in c.metadata.get("tags", []) for c in nb.cells)
    assert any(o.get("output_type") == "display_data" for c in nb.cells for o in c.get("outputs", []))
    # the failed notebook is kept, with its error, and attached to its run
    failed_nb = nbformat.read(failed.data.tags["labkit.notebook"], as_version=4)
    assert any(
        o.get("output_type") == "error" and "too-few-to-hold-out: val_fraction=0.05" in o.get("evalue", "")
        for c in failed_nb.cells
        for o in c.get("outputs", [])
    )

    # the same params again: the finished run is found, not duplicated
    assert cli.main(["ablate", str(good), "--no-progress"]) == 0
    assert "SKIPPED" in capsys.readouterr().out and len(_runs()) == 2

    # a run killed mid-way stays RUNNING; rerunning its params resumes that same run
    c.update_run(ok.info.run_id, status="RUNNING")
    assert cli.main(["ablate", str(good), "--no-progress"]) == 0
    assert len(_runs()) == 2 and c.get_run(ok.info.run_id).info.status == "FINISHED"
    resumed = nbformat.read(c.get_run(ok.info.run_id).data.tags["labkit.notebook"], as_version=4)
    assert any("resuming run" in o.get("text", "") for c in resumed.cells for o in c.get("outputs", []))

    assert cli.main(["compare", "--experiment", "t"]) == 0
    table = capsys.readouterr().out  # the terminal's table: aligned columns, what it left out, where it wrote
    assert SMOKE_BANNER.splitlines()[0] in table and "lower is better" in table
    assert re.search(r"^baseline +1 +\d+\.\d\d +\[\d+\.\d\d, \d+\.\d\d\]", table, re.MULTILINE), table
    assert "left out, not finished: broken-s0 (FAILED)" in table
    assert f"wrote to {lab / 'compare'}: t-fid.png" in table and "logged to http://" in table
    markdown = (lab / "compare" / "t.md").read_text()
    assert "## random-init backbone: smoke numbers" in markdown and "lower is better" in markdown
    assert "| baseline | GAN + 100·L1 | 1 (0) |" in markdown
    assert "1 run(s) not finished" in markdown
    assert "| ablation | ar | cuhk | xm2vts |" in markdown and "(N 2)" in markdown
    assert "![FID over training](t-fid.png)" in markdown  # figures by relative path
    assert (lab / "compare" / "t.csv").is_file()
    assert "data:image/png;base64," in (lab / "compare" / "t.html").read_text()
    assert not c.search_runs([c.get_experiment_by_name("t").experiment_id], f"tags.`{keys.KIND}` = 'compare'")
    compare_runs = c.search_runs(
        [c.get_experiment_by_name("t-compare").experiment_id], f"tags.`{keys.KIND}` = 'compare'"
    )
    artifacts = {a.path for a in c.list_artifacts(compare_runs[0].info.run_id)}
    assert {
        "fid_table.json",
        "t.md",
        "t.html",
        "t.csv",
        *[f"t-{f}.{e}" for f in ("fid", "samples") for e in ("png", "pdf", "svg")],
    } <= artifacts


@pytest.mark.slow
def test_plain_papermill_runs_the_notebook(lab, tmp_path):
    params = _params(tmp_path, "plain", experiment="plain")
    out = tmp_path / "out.ipynb"
    result = subprocess.run(
        [
            os.path.join(os.path.dirname(sys.executable), "papermill"),
            str(ROOT / "notebooks" / "baseline.ipynb"),
            str(out),
            "-f",
            str(params),
            "--cwd",
            str(ROOT / "notebooks"),
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    runs = _runs("plain")
    assert len(runs) == 1 and runs[0].info.status == "FINISHED" and "fid" in runs[0].data.metrics


@pytest.mark.slow
def test_ablations_over_seeds_in_parallel_and_their_comparison(lab, tmp_path, capsys):
    files = [
        _params(tmp_path, "base", experiment="abl", ablation="baseline"),
        _params(tmp_path, "glad", experiment="abl", ablation="glad", lambda_glad=100.0),
        _params(tmp_path, "local_glad", experiment="abl", ablation="local_glad", local=True, lambda_glad=100.0),
    ]
    assert cli.main(["ablate", *map(str, files[1:]), "--seeds", "2", "--workers", "2", "--no-progress"]) == 0
    assert cli.main(["ablate", str(files[0]), "--no-progress"]) == 0
    runs = _runs("abl")
    assert sorted(r.info.run_name for r in runs) == ["base-s0", "glad-s0", "glad-s1", "local_glad-s0", "local_glad-s1"]
    assert all(r.info.status == "FINISHED" for r in runs)
    c = track.client()
    by_name = {r.info.run_name: r.info.run_id for r in runs}
    images = [a.path for a in c.list_artifacts(by_name["local_glad-s1"], "images")]
    assert all(any(view in p for p in images) for view in ("local_views", "glad_views", "chamfer_views"))
    capsys.readouterr()

    assert cli.main(["compare", "--experiment", "abl"]) == 0
    assert re.search(r"^glad +2 +\d+\.\d\d ± \d", capsys.readouterr().out, re.MULTILINE)  # the terminal's
    table = (lab / "compare" / "abl.md").read_text()  # the table with its objectives, as written
    assert "| glad | GAN + 100·L1 + 100·glad | 2 (0, 1) |" in table
    assert (
        "| local_glad | GAN + 100·L1 + 100·glad + 25·Σ L1_local + 0.25·Σ GAN_local + 0.1·d_CM(real, fake) "
        "[logged: 0.1·d_CM(fake, real)] |"
    ) in table
    glad_row = next(line for line in table.splitlines() if line.startswith("| glad |"))
    assert " ± " in glad_row and glad_row.rstrip(" |").split("| ")[-1] in ("lower", "higher", "no clear difference")
    # under the table, each row's detectable difference, from the width of its paired interval
    low, high = map(float, re.search(r"\[([-+.\d]+), ([-+.\d]+)\] \| [a-z ]+ \|$", glad_row).groups())
    power = next(line for line in table.splitlines() if line.startswith("Smallest difference from the baseline"))
    sizes = dict(item.rsplit(" ", 1) for item in power.split("spread): ")[1].split(" FID.")[0].split(", "))
    assert set(sizes) == {"glad", "local_glad"}, power
    detectable = float(sizes["glad"])
    # (t_0.975 + t_0.8) standard errors, the interval t_0.975 of them: from 1.11 half-widths (with
    # one degree of freedom, the seeds' spread alone) to 1.43 (the faces' alone)
    assert 1.1 * (high - low) / 2 - 0.01 <= detectable <= (high - low) / 2 * (1.959964 + 0.841621) / 1.959964 + 0.01
    # the term summary: the same rows told per ablation, the lab log's lines about these runs, the
    # table for a paper
    assert cli.main(["log", "add", "glad sharper than run:base-s0? not yet clear"]) == 0
    assert cli.main(["log", "add", "--section", "ideas", "glad at 256 px"]) == 0
    assert cli.main(["report", "--experiment", "abl"]) == 0
    report = (lab / "report" / "abl" / "report.md").read_text()
    assert "## What was measured" in report and "**Not every number compares**: random-init" in report
    assert "### local_glad" in report and f"[{low:+.2f}, {high:+.2f}]" in report
    assert "glad sharper than [base-s0" in report and "## Next term\n\n- glad at 256 px" in report
    tex = (lab / "report" / "abl" / "table.tex").read_text()
    assert r"\toprule" in tex and tex.count(r" \\") == 4 and "local\\_glad & 2 &" in tex
    assert (lab / "report" / "abl" / "report.html").read_text().count("data:image/png;base64") == 2
    grid = np.asarray(Image.open(lab / "compare" / "abl-samples.png"))
    # 4 faces x (photo | real | baseline | glad | local_glad) at their own 32 px, 2 px gaps, each pixel
    # repeated 4 times (whole pixels) so that a column is wide enough for its title above
    assert grid.shape[:2] == (HEADER_PX + 4 * (4 * 32 + 3 * 2), 4 * (5 * 32 + 4 * 2))

    # a run logged before the delete-two values holds the delete-one values alone: its interval is
    # the delete-one jackknife's, marked, and a difference from it is paired by those values
    base = next(r for r in runs if r.info.run_name == "base-s0")
    artifacts = Path(urllib.parse.urlparse(base.info.artifact_uri).path)
    with np.load(artifacts / "fid" / "jackknife.npz") as f:
        assert "fid~pairs" in f
        np.savez(artifacts / "fid" / "jackknife.npz", **{k: v for k, v in f.items() if "~pairs" not in k})
    assert cli.main(["compare", "--experiment", "abl", "--no-mlflow"]) == 0
    table = (lab / "compare" / "abl.md").read_text()
    assert "]‡ |" in next(line for line in table.splitlines() if line.startswith("| baseline |"))
    assert "‡ Runs logged before the delete-two values" in table and "before the jackknife" not in table
    older_glad_row = next(line for line in table.splitlines() if line.startswith("| glad |"))
    assert older_glad_row.rstrip(" |").split("| ")[-1] in ("lower", "higher", "no clear difference")
    assert "]‡ |" not in older_glad_row

    # a run logged before the jackknife holds bootstrap replicates instead: its interval is still
    # shown, marked, and a difference from it is not paired with later runs'
    (artifacts / "fid" / "jackknife.npz").unlink()
    fid, kid = base.data.metrics["fid"], base.data.metrics["kid"]
    noise = np.random.default_rng(0).normal(size=200)
    np.savez(artifacts / "fid" / "bootstrap.npz", epoch=np.array(2), fid=fid + noise, kid=kid + noise / 100)
    assert cli.main(["compare", "--experiment", "abl", "--no-mlflow"]) == 0
    table = (lab / "compare" / "abl.md").read_text()
    base_row = next(line for line in table.splitlines() if line.startswith("| baseline |"))
    assert "]‡ |" in base_row
    assert "‡ Runs logged before the jackknife" in table
    glad_row = next(line for line in table.splitlines() if line.startswith("| glad |"))
    assert "n/a (‡ runs logged before the jackknife do not pair with later ones)" in glad_row


def test_kernels_talk_over_unix_sockets(tmp_path, capfd):
    """The runner's kernels open no TCP port: their sockets are files in the runner's own folder
    (and ipykernel has no unencrypted-TCP warning to print)."""
    import papermill

    from labkit.kernels import LocalKernelManager

    nb = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_code_cell(
                "import json, ipykernel.connect\ninfo = json.load(open(ipykernel.connect.get_connection_file()))\n"
                "print(info['transport'], info['ip'])"
            )
        ]
    )
    nbformat.write(nb, tmp_path / "in.ipynb")
    out = papermill.execute_notebook(
        str(tmp_path / "in.ipynb"),
        str(tmp_path / "out.ipynb"),
        kernel_name="python3",
        progress_bar=False,
        kernel_manager_class=LocalKernelManager,
    )
    transport, ip = out.cells[0].outputs[0]["text"].split()
    assert transport == "ipc" and ip == str(LocalKernelManager.socket_dirs[os.getpid()] / "kernel")
    assert "TCP" not in capfd.readouterr().err


@pytest.mark.slow
def test_a_grid_sweep_nests_its_runs_under_one_parent_and_compares_by_factor(lab, tmp_path, capsys):
    params = _params(tmp_path, "base", experiment="sw")
    command = [
        "ablate",
        str(params),
        "--grid",
        "lambda_l1=50,100",
        "--grid",
        "ngf=4,8",
        "--no-progress",
        "--workers",
        "2",
    ]
    jobs = plan.plan([params], grid={"lambda_l1": [50, 100], "ngf": [4, 8]}, seeds=2)
    assert [(j.cfg.lambda_l1, j.cfg.ngf, j.cfg.seed) for j in jobs] == [
        (l1, ngf, seed) for l1 in (50.0, 100.0) for ngf in (4, 8) for seed in (0, 1)
    ]
    assert jobs[0].label == "base-lambda_l1=50-ngf=4" and jobs[0].factors == {"lambda_l1": 50, "ngf": 4}

    assert cli.main(command) == 0
    out = capsys.readouterr().out
    c = track.client()
    exp = c.get_experiment_by_name("sw").experiment_id
    parents = c.search_runs([exp], f"tags.`{keys.KIND}` = 'sweep'")
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    parent = parents[0]
    assert parent.info.run_name == "base-sweep-lambda_l1-ngf" and parent.data.params["sweep.grid"]
    children = _runs("sw")
    assert sorted(r.info.run_name for r in children) == sorted(
        f"base-lambda_l1={l1}-ngf={ngf}-s0" for l1 in (50, 100) for ngf in (4, 8)
    )
    for run in children:
        assert run.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert run.data.tags["labkit.factor.lambda_l1"] == str(int(run.data.params["lambda_l1"].split(".")[0]))
    assert "FID table, experiment 'sw, sweep base-sweep-lambda_l1-ngf'" in out  # the parent's table, printed
    written = lab / "compare" / f"sweep-{parent.info.run_id[:8]}" / "sw-base-sweep-lambda_l1-ngf.md"
    assert "## FID against lambda_l1" in written.read_text() and "## FID against ngf" in written.read_text()
    artifacts = {a.path for a in c.list_artifacts(parent.info.run_id, "sweep")}
    assert {
        "sweep/runs.json",
        "sweep/sw-base-sweep-lambda_l1-ngf-by-ngf.png",
        "sweep/sw-base-sweep-lambda_l1-ngf.md",
    } <= artifacts

    # the same command again: the same parent, every run skipped
    assert cli.main(command) == 0
    assert capsys.readouterr().out.count("SKIPPED run") == 4
    assert len(c.search_runs([exp], f"tags.`{keys.KIND}` = 'sweep'")) == 1 and len(_runs("sw")) == 4

    assert cli.main(["compare", "--experiment", "sw", "--by", "lambda_l1", "--sweep", parent.info.run_name]) == 0
    assert "FID against lambda_l1:" in capsys.readouterr().out
    table = (lab / "compare" / f"sw-{parent.info.run_name}.md").read_text()
    rows = [line for line in table.split("## FID against lambda_l1")[1].splitlines() if line.startswith("| 50")]
    assert [r.split(" | ")[1] for r in rows] == ["baseline (ngf=4, lambda_l1=50.0)", "baseline (ngf=8, lambda_l1=50.0)"]
    assert (lab / "compare" / f"sw-{parent.info.run_name}-by-lambda_l1.png").is_file()
    assert cli.main(["compare", "--experiment", "sw", "--by", "lambda_ll"]) == 2
    assert "did you mean 'lambda_l1'" in capsys.readouterr().err

    # a run measured on other test faces is refused in the same table, unless asked
    other = _params(tmp_path, "more", experiment="sw", synthetic_count=30)
    assert cli.main(["ablate", str(other), "--no-progress"]) == 0
    capsys.readouterr()
    assert cli.main(["compare", "--experiment", "sw"]) == 2
    err = capsys.readouterr().err
    assert "measured differently" in err and "N = 6 test faces" in err and "N = 9 test faces" in err
    assert cli.main(["compare", "--experiment", "sw", "--mixed"]) == 0
    assert "smoke numbers, N = 9" in capsys.readouterr().out


@pytest.mark.slow
def test_a_search_samples_points_with_optuna_and_continues_its_study(lab, tmp_path, capsys):
    import optuna

    params = _params(tmp_path, "base", experiment="se")
    assert cli.main(["ablate", str(params), "--sample", "2", "--range", "lambda_l1=200:10"]) == 2
    assert cli.main(["ablate", str(params), "--sample", "2", "--range", "glad_mode=1:2"]) == 2
    assert cli.main(["ablate", str(params), "--range", "lr=1e-5:1e-3:log"]) == 2
    err = capsys.readouterr().err
    assert "LOW < HIGH" in err and "needs a number parameter" in err and "--range needs --sample" in err
    assert not _runs("se")

    command = [
        "ablate",
        str(params),
        "--sample",
        "3",
        "--range",
        "lambda_l1=10:200:log",
        "--sampler",
        "random",
        "--workers",
        "2",
        "--no-progress",
    ]
    assert cli.main(command) == 0
    runs = _runs("se")
    values = sorted(float(r.data.params["lambda_l1"]) for r in runs)
    assert len(runs) == 3 and len(set(values)) == 3 and values[0] >= 10 and values[-1] <= 200
    c = track.client()
    (parent,) = c.search_runs([c.get_experiment_by_name("se").experiment_id], f"tags.`{keys.KIND}` = 'sweep'")
    assert parent.info.run_name == "base-search-lambda_l1" and parent.info.status == "FINISHED"
    assert "test set" in parent.data.tags["labkit.sweep.objective"]
    assert all(r.data.tags["mlflow.parentRunId"] == parent.info.run_id for r in runs)
    (study,) = optuna.get_all_study_summaries(f"sqlite:///{lab / 'optuna.db'}")
    trials = optuna.load_study(study_name=study.study_name, storage=f"sqlite:///{lab / 'optuna.db'}").trials
    assert sorted(t.value for t in trials) == sorted(r.data.metrics["fid_last"] for r in runs)
    assert sorted(t.params["lambda_l1"] for t in trials) == values

    assert cli.main(command) == 0  # the same search again: its three trials are done
    assert len(_runs("se")) == 3
