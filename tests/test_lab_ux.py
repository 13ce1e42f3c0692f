"""The lab as MLflow, papermill and JupyterLab users expect it: run timing, typos under plain
papermill, clean notebooks in git, datasets, pictures from step 0, system metrics, HTML
notebooks, runs/ that can move, a --help that explains every option."""

import argparse
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from conftest import ROOT, put_back, tiny_params, training_runs

import labkit
from labkit import cli, gitclean, keys, track


def _params(tmp_path, name, **extra):
    return tiny_params(tmp_path, name, **{"experiment": "ux", **extra})


def _runs(experiment="ux"):
    return {r.info.run_name: r for r in training_runs(experiment)}


@pytest.mark.slow
def test_a_batch_run_records_its_own_time_its_data_its_pictures_and_the_machine(lab, tmp_path):
    first, second = _params(tmp_path, "first"), _params(tmp_path, "second", seed=1)
    assert cli.main(["ablate", str(first), str(second), "--no-progress", "--no-log"]) == 0
    runs = _runs()
    a, b = runs["first-s0"], runs["second-s1"]
    # made when its notebook started: the second run's duration does not hold the first one's
    assert b.info.start_time >= a.info.end_time
    assert float(b.data.tags["labkit.queued_seconds"]) >= (a.info.end_time - a.info.start_time) / 1000 - 1
    inputs = {d.dataset.name: d for d in b.inputs.dataset_inputs}
    assert set(inputs) == {f"synthetic-n24-m0 ({c})" for c in ("train", "test")}
    assert {d.dataset.digest for d in inputs.values()} == {b.data.tags[keys.DATA_FINGERPRINT]}
    images = [x.path for x in track.client().list_artifacts(b.info.run_id, "images")]
    assert any("samples+step+0+" in p for p in images)  # the untrained model: the slider starts on a picture
    assert any(k.startswith("system/cpu_utilization") for k in b.data.metrics)
    assert b.data.tags[keys.SPEED].endswith("fused Adam, eager")  # the path it took: precision resolved
    notebooks = [x.path for x in track.client().list_artifacts(b.info.run_id, keys.NOTEBOOK_DIR)]
    assert sorted(p.rsplit(".", 1)[1] for p in notebooks) == ["html", "ipynb"]


@pytest.mark.slow
def test_plain_papermill_refuses_a_typo_before_any_work(lab, tmp_path):
    out = tmp_path / "out.ipynb"
    result = subprocess.run(
        [
            os.path.join(os.path.dirname(sys.executable), "papermill"),
            str(ROOT / "notebooks" / "baseline.ipynb"),
            str(out),
            "-p",
            "lamda_l1",
            "5",
            "-p",
            "experiment",
            "typo",
            "--cwd",
            str(ROOT / "notebooks"),
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0
    assert "unknown parameter 'lamda_l1' (did you mean 'lambda_l1'?)" in result.stderr + result.stdout
    assert track.client().get_experiment_by_name("typo") is None  # no run was made


def _git_status(path) -> str:
    return subprocess.run(["git", "status", "--porcelain", str(path)], cwd=ROOT, capture_output=True, text=True).stdout


@pytest.mark.slow
def test_notebooks_stay_clean_in_git_after_they_ran(lab):
    """A tracked notebook run and saved in place (here by nbconvert, as JupyterLab's save does in
    the browser test) holds its outputs on disk, and git status shows nothing; a real edit
    still shows."""
    assert (
        subprocess.run(["git", "config", "--get", "filter.nbstripout.clean"], cwd=ROOT, capture_output=True).returncode
        == 0
    ), "run `make test` (it installs the git filter)"
    path = ROOT / "notebooks" / "lablog.ipynb"
    original = path.read_bytes()
    jupyter = os.path.join(os.path.dirname(sys.executable), "jupyter")
    try:
        subprocess.run(
            [jupyter, "nbconvert", "--to", "notebook", "--execute", "--inplace", str(path)],
            check=True,
            capture_output=True,
            cwd=ROOT / "notebooks",
        )
        executed = nbformat.read(path, as_version=4)
        assert any(c.get("outputs") for c in executed.cells if c.cell_type == "code")
        assert _git_status(path) == ""
        executed.cells[0].source += "\nA real edit."
        put_back(path, nbformat.writes(executed).encode())
        assert gitclean.refresh(path) is False and _git_status(path).startswith(" M")
    finally:
        put_back(path, original)
        gitclean.refresh(path)
    assert _git_status(path) == ""


@pytest.mark.slow
def test_a_moved_runs_folder_keeps_its_artifacts(lab, tmp_path, monkeypatch):
    c = track.client()
    run = c.create_run(track.experiment_id(c, "moving")).info.run_id
    c.log_text(run, "kept", "note.txt")
    moved = tmp_path / "elsewhere" / "runs"
    shutil.move(str(lab), str(moved))
    monkeypatch.setenv("LABKIT_RUNS", str(moved))
    c = track.client()
    assert c.get_run(run).info.artifact_uri.startswith((moved / "artifacts").as_uri())
    assert Path(c.download_artifacts(run, "note.txt", str(tmp_path))).read_text() == "kept"
    code = f"from labkit import track\ntrack.client().log_text({run!r}, 'new', 'after.txt')\n"  # a later session
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)
    assert [p.parent.parent.name for p in (moved / "artifacts").rglob("after.txt")] == [run]
    assert not lab.exists()


def test_the_links_labkit_writes_point_where_the_ui_serves(lab, monkeypatch, capsys):
    """Run pages open in the MLflow UI's training view, on the port a running `labkit ui` took;
    the experiment's link opens the runs table with the FID columns."""
    import json

    from labkit.paths import ui_address_file

    assert cli.main(["ui", "--port", "5123", "--print-only"]) == 0
    assert "--port 5123" in capsys.readouterr().out
    c = track.client()
    eid = track.experiment_id(c, "links")
    run = track.Run(c, c.create_run(eid).info.run_id)
    assert run.url() == f"http://127.0.0.1:5000/#/experiments/{eid}/runs/{run.run_id}?workflowType=machine_learning"
    ui_address_file().write_text(json.dumps({"url": "http://127.0.0.1:5123", "pid": os.getpid()}))  # ui serving
    assert run.url().startswith("http://127.0.0.1:5123/#/experiments/")
    view = json.loads(c.get_experiment(eid).tags[keys.SHARED_VIEW])
    assert "metrics.`fid_last`" in view["selectedColumns"] and view["orderByKey"] == "metrics.`fid_last`"
    assert track.experiment_url(eid).endswith(f"runs?workflowType=machine_learning&viewStateShareKey={keys.VIEW_KEY}")
    ui_address_file().write_text(json.dumps({"url": "http://127.0.0.1:5123", "pid": 2**22 + 1}))  # ui gone
    assert run.url().startswith("http://127.0.0.1:5000/")
    monkeypatch.setenv("LABKIT_UI", "http://lab.example:8080/")
    assert run.url().startswith("http://lab.example:8080/#/")


def _commands(parser: argparse.ArgumentParser, name: str = "labkit"):
    yield name, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub_name, sub in action.choices.items():
                yield from _commands(sub, f"{name} {sub_name}")


def test_every_option_says_what_it_does_and_its_default(capsys):
    """Every argument of every command has its help, `--help` ends each with its default, and
    `labkit --version` answers."""
    builtin = (argparse._HelpAction, argparse._VersionAction, argparse._SubParsersAction)
    for name, command in _commands(cli.parser()):
        for action in command._actions:
            if not isinstance(action, builtin):
                assert action.help, f"`{name}`: {action.option_strings or action.dest} has no help"
    for argv, shown in (
        (["ablate"], "(default: tpe)"),
        (["synth"], "(default: 48)"),
        (["ui"], "(default: 5000, or the next free one)"),
    ):
        with pytest.raises(SystemExit):
            cli.main([*argv, "--help"])
        assert shown in " ".join(capsys.readouterr().out.split()), argv
    with pytest.raises(SystemExit) as version:
        cli.main(["--version"])
    assert version.value.code == 0 and capsys.readouterr().out == f"labkit {labkit.__version__}\n"


def test_labkit_runs_shows_whole_names_in_aligned_columns():
    from labkit.runs import RunState, table

    sweep = "glad-lambda_glad=0.5-n_epochs=3-s0"  # a sweep's run name: longer than any fixed column
    lines = table(
        [
            RunState("a" * 32, sweep, "faces", "RUNNING", 12, 30.0, ""),
            RunState("b" * 32, "baseline-s0", "faces-at-256px", "FINISHED", None, None, "host:4242"),
        ]
    ).splitlines()
    assert sweep in lines[1] and "faces-at-256px" in lines[2]
    assert len({line.index(ident) for line, ident in zip(lines, ("id", "aaaaaaaa", "bbbbbbbb"))}) == 1
    assert len({len(line) - len(line.split()[-1]) for line in lines[:3]}) == 1  # the holders line up


def test_live_lines_show_each_running_job_from_its_heartbeat(lab, monkeypatch):
    """A line per running job of the batch (epoch, step, time left, FID), from the beat files:
    redrawn in place on a terminal, printed when there is news in a log; other runs' beats, older
    beats and ended runs are not shown."""
    import io
    import time

    from labkit import lease, live

    started = time.time()
    clock = [started]
    monkeypatch.setattr(time, "time", lambda: clock[0])
    lease.beat("r1", 10, "train", {"run": "glad-s0", "key": "k1", "epoch": 2, "epochs": 4, "steps": 40})
    lease.beat("r2", 5, "start", {"run": "other-s0", "key": "not-this-batch"})
    log = io.StringIO()
    lines = live.LiveLines({"k1"}, stream=log)
    lines.since = started - 1
    lines._draw()
    assert log.getvalue() == "  glad-s0  epoch 2/4  step 10/40\n"
    clock[0] = started + 10
    lease.beat("r1", 20, "train", {"run": "glad-s0", "key": "k1", "epoch": 3, "epochs": 4, "steps": 40, "fid": 41.234})
    clock[0] = started + 12
    lines._draw()
    lines._draw()  # nothing new: a log gets no repeat
    shown = log.getvalue().splitlines()
    assert len(shown) == 2 and re.fullmatch(r"  glad-s0  epoch 3/4  step 20/40  0m18s left  FID 41\.23", shown[1])
    lines.ended("r1")
    assert lines.beats() == {}

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    screen = Terminal()
    drawn = live.LiveLines({"k1"}, stream=screen)
    drawn.since = started - 1
    drawn.echo("one")  # what the runner says goes above the lines: they are cleared, then drawn again
    drawn.echo("two")
    line = "  glad-s0  epoch 3/4  step 20/40  FID 41.23\n"
    assert screen.getvalue() == line + "\x1b[F\x1b[2K" + line


def test_a_lab_set_up_without_make_gets_its_notebook_filter(tmp_path):
    """A conda environment never ran the Makefile: the first labkit command (or notebook) sets
    git's notebook filter up, and a notebook saved with outputs stays clean in git."""
    repo = tmp_path / "lab"
    (repo / "notebooks").mkdir(parents=True)
    notebook = repo / "notebooks" / "baseline.ipynb"
    shutil.copy(ROOT / "notebooks" / "baseline.ipynb", notebook)
    shutil.copy(ROOT / ".gitattributes", repo / ".gitattributes")
    git = lambda *a: subprocess.run(["git", "-C", str(repo), *a], capture_output=True, text=True, check=True)  # noqa: E731
    git("init", "-q")
    git("-c", "user.name=lab", "-c", "user.email=lab@example.org", "commit", "-q", "--allow-empty", "-m", "empty")
    assert gitclean.ensure(repo)[:1] == ["git's notebook filter (nbstripout)"]
    git("add", ".")
    git("-c", "user.name=lab", "-c", "user.email=lab@example.org", "commit", "-q", "-m", "lab")
    nb = nbformat.read(notebook, as_version=4)
    nb.cells[-1].outputs = [nbformat.v4.new_output("stream", text="ran\n")]
    nbformat.write(nb, notebook)
    assert gitclean.refresh(notebook) and git("status", "--porcelain").stdout == ""
    assert gitclean.ensure(repo) == []  # once is enough


def test_figures_read_at_a_glance():
    """A 32-px model's sample columns are enlarged in whole pixels until their titles fit; the FID
    curves take a log axis only over a wide range."""
    import matplotlib.pyplot as plt
    import numpy as np

    from labkit import viz

    grid = np.zeros((4 * 34, 5 * 34 - 2, 3), dtype=np.uint8)  # 5 columns of 32-px tiles, 2-px gaps
    fig = viz.titled_figure(grid, ["photo", "real sketch", "baseline", "local_glad", "local_align"])
    width, height = fig.canvas.get_width_height()
    assert width >= 5 * viz.MIN_TILE_PX and width % grid.shape[1] == 0 and height > grid.shape[0]
    narrow = viz.fid_curves({"a": [(1, 34.0), (2, 36.0)], "b": [(1, 38.0), (2, 41.0)]})
    wide = viz.fid_curves({"a": [(1, 300.0), (2, 30.0)]})
    assert narrow.axes[0].get_yscale() == "linear" and wide.axes[0].get_yscale() == "log"
    plt.close("all")
