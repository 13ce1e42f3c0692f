"""The dated lab log: entries, appends under contention, run references against a real
MLflow store, batch records, a researcher's own journal imported, HTML."""

import datetime as dt
import multiprocessing
import re

import numpy as np
import pytest
from conftest import ROOT

from labkit import cli, keys, lablog, track
from labkit.config import SketchConfig
from labkit.jobs import Job, Outcome

JOURNAL = ROOT / "tests" / "fixtures" / "journal.md"  # the user's own journal, verbatim
TODAY = dt.date.today()


@pytest.fixture(autouse=True)
def _today():
    """Today as each test starts, not as the suite was collected: a suite may run past midnight."""
    global TODAY
    TODAY = dt.date.today()


def test_new_and_add(lab):
    entry, created = lablog.new("colour bug")
    assert created and entry.path.name == f"{TODAY}.md"
    text = entry.path.read_text()
    assert text.startswith(f"# {TODAY} · colour bug") and all(f"## {s}" in text for s in lablog.SECTIONS)
    _, created = lablog.new("colour bug")
    assert not created
    lablog.add("VGG input was 0-1, expects ±127", section="causes")
    lablog.add("retrain with the caffe convention", section="act")
    entry = lablog.read_entry(entry.path)
    assert entry.sections["Causes"] == ["- VGG input was 0-1, expects ±127"]
    assert entry.sections["Actions"] == ["- retrain with the caffe convention"]
    with pytest.raises(lablog.LabLogError, match="unknown section 'results'"):
        lablog.add("x", section="results")
    with pytest.raises(lablog.LabLogError, match="'2026-13-01' is not a date"):
        lablog.parse_date("2026-13-01")


def _append_many(args):
    log_dir, worker, count = args
    import os

    os.environ["LABKIT_LOG"] = log_dir
    for i in range(count):
        lablog.add(f"worker {worker} line {i}", section="actions")


@pytest.mark.slow
def test_concurrent_appends_and_an_edit_in_between_lose_nothing(lab):
    entry, _ = lablog.new("busy day")
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        pending = pool.map_async(_append_many, [(str(lablog.log_dir()), w, 15) for w in range(4)])
        # meanwhile the user saves an edit of their own
        lablog.add("my own note, typed while the batch ran", section="ideas")
        pending.get(timeout=120)
    lines = lablog.read_entry(entry.path).sections
    assert sorted(lines["Actions"]) == sorted(f"- worker {w} line {i}" for w in range(4) for i in range(15))
    assert lines["Ideas"] == ["- my own note, typed while the batch ran"]


def _runs_for_references():
    c = track.client()
    exp = track.experiment_id(c, "logtest")
    a = c.create_run(exp, run_name="glad-s1", tags={keys.ABLATION: "glad"}).info.run_id
    b = c.create_run(exp, run_name="base-s0", tags={keys.ABLATION: "baseline"}).info.run_id
    c.log_param(a, "seed", "1")
    c.log_metric(a, "fid_last", 28.0)
    c.set_tag(a, "fid.backbone", "inception")
    grid_1, grid_2 = np.zeros((8, 8, 3), np.uint8), np.full((8, 8, 3), 200, np.uint8)
    c.log_image(a, grid_1, key="samples", step=1)
    c.log_image(a, grid_2, key="samples", step=2)
    c.log_image(a, grid_2, artifact_file=keys.LAST_SAMPLES)
    c.set_terminated(a, "FINISHED")
    return a, b


def test_references_resolve_render_and_become_run_notes(lab):
    a, b = _runs_for_references()
    lablog.add(f"glad beats the baseline? run:glad-s1 vs run:{b[:8]}; and run:nonexistent-run", section="actions")
    entry = lablog.read_entry(lablog.log_dir() / f"{TODAY}.md")
    assert lablog.sync_notes(entry) == sorted([a, b])
    note = track.client().get_run(a).data.tags["mlflow.note.content"]
    assert "glad beats the baseline?" in note

    text = lablog.to_text(lablog.select())
    assert f"[glad-s1 [{a[:8]}] · glad · seed 1 · FID 28.00 · FINISHED]" in text
    assert "[base-s0 [" in text and "no FID yet · RUNNING]" in text
    assert "[run:nonexistent-run unresolved: no such run]" in text  # shown, never dropped

    html = lablog.to_html(lablog.select())
    assert 'href="http://127.0.0.1:5000/#/experiments/' in html and f"/runs/{a}" in html
    assert "run:nonexistent-run (unresolved: no such run)" in html
    assert html.count("data:image/png;base64,") == 1  # the last grid of the run with images
    lablog.add("an unrelated thought", section="ideas", date=TODAY - dt.timedelta(days=1))
    assert [e.date for e in lablog.select()] == [TODAY, TODAY - dt.timedelta(days=1)]
    assert [e.date for e in lablog.select(ablation="glad")] == [TODAY]  # through the referenced run


def test_a_batch_is_recorded_under_actions_with_its_runs(lab):
    a, b = _runs_for_references()
    job = Job(
        label="glad-s1",
        source="params/glad.yaml",
        notebook=ROOT / "notebooks" / "glad.ipynb",
        cfg=SketchConfig(ablation="glad"),
        params_file="params/glad.yaml",
    )
    outcomes = [
        Outcome(job, a, "FINISHED", None, 12.0),
        Outcome(job, b, "FAILED", lab / "x.ipynb", 3.0, "DataError: photo f-001-01.png has no sketch"),
    ]
    entry = lablog.record_batch(outcomes, "labkit ablate params/glad.yaml")
    actions = "\n".join(entry.sections["Actions"])
    assert "`labkit ablate params/glad.yaml`: 1 ok, 1 failed" in actions
    assert f"  - run:{a[:8]}\n" in actions + "\n"
    assert f"run:{b[:8]}: DataError: photo f-001-01.png has no sketch, notebook {lab / 'x.ipynb'}" in actions
    note = track.client().get_run(b).data.tags["mlflow.note.content"]
    assert f"**{TODAY}** · Actions · " in note and "labkit ablate params/glad.yaml" in note
    assert f"run:{a[:8]}" not in note  # only the lines about this run
    rendered = lablog.to_text(lablog.select())
    assert rendered.count("glad-s1 [") == 1  # the reference renders once, its text not repeated


def test_the_users_journal_imports_onto_the_right_dates(lab):
    dates = lablog.import_journal(JOURNAL, today=dt.date(2026, 11, 23))
    expected = [
        "2025-09-24",
        "2025-09-25",
        "2025-09-26",
        "2025-10-07",
        "2025-10-08",
        "2025-10-09",
        "2025-10-11",
        "2025-10-12",
        "2025-11-11",
        "2025-12-27",
        "2026-01-06",
    ]  # across the new year
    assert [d.isoformat() for d in dates] == expected
    source = JOURNAL.read_text(encoding="utf-8")
    # every dated section's text lands, intact, in its day's entry
    sections = re.split(r"^#{1,6}\s*(\d{1,2}/\d{1,2})\s*$", source, flags=re.M)
    for heading, body in zip(sections[1::2], sections[2::2]):
        month, day = map(int, heading.split("/"))
        date = next(d for d in dates if (d.month, d.day) == (month, day))
        entry_text = (lablog.log_dir() / f"{date}.md").read_text(encoding="utf-8")
        for line in body.splitlines():
            if line.strip() and not line.startswith("#"):
                assert line.rstrip() in entry_text, (heading, line)
    first = lablog.read_entry(lablog.log_dir() / "2025-09-24.md")
    assert any("轮廓不清晰" in line for line in first.sections["Problems"])
    assert any("batch=1的方向太飘" in line for line in first.sections["Causes"])
    assert any(
        "channel  attention" in line for line in lablog.read_entry(lablog.log_dir() / "2025-10-12.md").sections["Ideas"]
    )
    before = {p.name: p.read_text() for p in lablog.log_dir().glob("*.md")}
    assert lablog.import_journal(JOURNAL, today=dt.date(2026, 11, 23)) == []  # twice: nothing added
    assert before == {p.name: p.read_text() for p in lablog.log_dir().glob("*.md")}


def test_import_years_bad_dates_and_encodings(lab, tmp_path, capsys):
    path = tmp_path / "j.md"
    path.write_text("# My lab journal\n\n## 12/30\n1.a\n## 1/2\n2.b\n", encoding="utf-8")
    assert lablog.import_journal(path, start_year=2019) == [dt.date(2019, 12, 30), dt.date(2020, 1, 2)]
    first = lablog.read_entry(lablog.log_dir() / "2019-12-30.md")
    assert "My lab journal" not in first.text() and first.sections["Actions"] == ["1.a"]  # the title is no text
    assert cli.main(["log", "import", str(path), "--start-year", "2019"]) == 0
    assert "nothing new: " in capsys.readouterr().out
    path.write_text("## 9/24\nok\n## 13/45\nbad\n", encoding="utf-8")
    with pytest.raises(lablog.LabLogError, match=r"j.md:3: '## 13/45' is not a month/day date"):
        lablog.import_journal(path)
    path.write_bytes("## 9/24\n颜色单调\n".encode("gbk"))
    with pytest.raises(lablog.LabLogError, match=r"j.md: not UTF-8 .*iconv -f GBK"):
        lablog.import_journal(path)
    assert cli.main(["log", "import", str(path)]) == 2


def test_show_filters_and_writes_one_page(lab, capsys, tmp_path):
    lablog.import_journal(JOURNAL, today=dt.date(2026, 11, 23))
    out = tmp_path / "log.html"
    assert cli.main(["log", "show", "--since", "2025-10-01", "--until", "2025-10-31", "--html", str(out)]) == 0
    printed = capsys.readouterr().out
    dates = re.findall(r"^# (\d{4}-\d{2}-\d{2})", printed, flags=re.M)
    assert dates == ["2025-10-12", "2025-10-11", "2025-10-09", "2025-10-08", "2025-10-07"]  # newest first
    page = out.read_text(encoding="utf-8")
    assert page.count("<article") == 5 and '<article id="2025-10-12">' in page and "只能匹配相同尺度的特征" in page
    assert cli.main(["log", "show", "--since", "2025-13-01"]) == 2


@pytest.mark.slow
def test_the_lablog_notebook_shows_the_log(lab, tmp_path):
    import nbformat
    import papermill

    lablog.import_journal(JOURNAL, today=dt.date(2026, 11, 23))
    out = tmp_path / "lablog-out.ipynb"
    papermill.execute_notebook(
        str(ROOT / "notebooks" / "lablog.ipynb"),
        str(out),
        kernel_name="python3",
        parameters={"since": "2026-01-01"},
        progress_bar=False,
        cwd=str(ROOT / "notebooks"),
    )
    outputs = [o for c in nbformat.read(out, as_version=4).cells for o in c.get("outputs", [])]
    html = "".join(o.get("data", {}).get("text/html", "") for o in outputs)
    assert '<article id="2026-01-06">' in html and '<article id="2025-12-27">' not in html


def test_a_reference_in_an_old_entry_means_the_run_of_its_day(lab):
    """`run:glad-s0` written in October means October's glad-s0, not one made today with the
    same name; an entry written before any such run still finds it."""
    c = track.client()
    exp = track.experiment_id(c, "faces")
    october = dt.datetime(2025, 10, 20, 15, 0)
    old = c.create_run(exp, run_name="glad-s0", start_time=int(october.timestamp() * 1000)).info.run_id
    new = c.create_run(exp, run_name="glad-s0").info.run_id
    resolver = lablog.Resolver()
    assert resolver.resolve("glad-s0", dt.date(2025, 10, 20)).run_id == old
    assert resolver.resolve("glad-s0", dt.date.today()).run_id == new
    assert resolver.resolve("glad-s0", dt.date(2025, 9, 1)).run_id == new  # planned before it ran: the newest
