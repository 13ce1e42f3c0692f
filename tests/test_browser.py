"""What a person sees, in headless Chromium (Debian's chromium and chromium-driver, driven by
Selenium; `.ci/run` installs them): the MLflow UI on the lab's store, and JupyterLab running a
notebook of the repository to its end."""

import contextlib
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from conftest import ROOT, TINY, free_port, put_back, serving

from labkit import cli, gitclean, track

CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(
    not (CHROMIUM and DRIVER),
    reason="needs Debian's chromium and chromium-driver "
    "(apt-get install chromium chromium-driver; .ci/run installs them)",
)


@contextlib.contextmanager
def _chromium(tmp_path, width: int = 1500):
    from selenium import webdriver

    options = webdriver.ChromeOptions()
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
        f"--window-size={width},1100",
    ):
        options.add_argument(flag)
    options.binary_location = CHROMIUM
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=DRIVER))
    try:
        yield driver
    finally:
        driver.quit()


def _wait(predicate, timeout: float, what: str):
    from selenium.common.exceptions import StaleElementReferenceException

    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            found = predicate()
        except StaleElementReferenceException:  # a widget redrew under the check: look again
            found = None
        if found:
            return found
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


PICTURES = os.environ.get("LABKIT_DOCS_PICTURES", "")  # a lab's runs/ (after make demo): its pictures go to docs/img


def _picture(page, element, tmp_path, name: str) -> None:
    """A screenshot of an element, kept for the docs when LABKIT_DOCS_PICTURES names the lab shown."""
    path = tmp_path / name
    element.screenshot(str(path))
    assert path.stat().st_size > 5000, name  # a picture, not a blank
    if PICTURES:
        shutil.copy(path, ROOT / "docs" / "img" / name)


@pytest.mark.slow
def test_the_links_labkit_prints_open_the_training_view_with_fid(lab, tmp_path, monkeypatch, capsys):
    """`labkit ui` serves on the port asked and prints the link of the runs measured last: the
    training view, FID columns in the runs table, the FID charts and the sample grids first (not
    MLflow's per-subset sections, no parameters above a picture); the lab log's run links point
    at that port and open the run."""
    from selenium.webdriver.common.by import By

    monkeypatch.setenv("LABKIT_LOG", str(tmp_path / "lablog"))
    if PICTURES:  # the demo's runs, for the docs' pictures
        monkeypatch.setenv("LABKIT_RUNS", str(Path(PICTURES).resolve()))
    else:
        params = tmp_path / "baseline.yaml"
        params.write_text(yaml.safe_dump({"ablation": "baseline", "experiment": "demo", **TINY}))
        assert cli.main(["ablate", str(params), "--no-progress", "--no-lablog"]) == 0
        assert cli.main(["compare"]) == 0
    capsys.readouterr()
    port = free_port()
    command = [sys.executable, "-m", "labkit.cli", "ui", "--port", str(port)]
    with (
        open(tmp_path / "ui.log", "w") as log,
        # a first start in a fresh environment compiles MLflow's modules: 2 minutes beside a busy suite
        serving(command, f"http://127.0.0.1:{port}/health", log, timeout=300),
        _chromium(tmp_path, width=1900) as page,
    ):
        link = _wait(lambda: re.findall(r"^open (http\S+)", (tmp_path / "ui.log").read_text(), re.M), 30, "the link")[0]
        assert link.startswith(f"http://127.0.0.1:{port}/#/experiments/") and "workflowType=machine_learning" in link
        page.get(link)
        text = lambda: page.find_element(By.TAG_NAME, "body").text  # noqa: E731
        _wait(lambda: "fid_last" in text() and "fid_best" in text(), 90, "the FID columns of the runs table")
        assert "Model training" in text() and "baseline-s0" in text()
        _picture(page, page.find_element(By.TAG_NAME, "main"), tmp_path, "ui.png")

        page.get(link + "&compareRunsMode=CHART")
        words = lambda: " ".join(text().split())  # noqa: E731 (a section's name and count are two elements)
        _wait(lambda: "Samples (2)" in words() and "System metrics" in words(), 90, "the chart view's sections")
        shown = words()  # the headline's sections come first: no per-subset or interval section before them
        assert shown.index("FID (3)") < shown.index("Samples (2)") < shown.index("System metrics"), shown
        image = _wait(
            lambda: [
                i
                for i in page.find_elements(By.TAG_NAME, "img")
                if "images%2Fsamples" in (i.get_attribute("src") or "")
                and page.execute_script("return arguments[0].naturalWidth", i) > 0
            ],
            90,
            "a sample grid drawn in its card",
        )
        assert image and "ablation:" not in text()  # no run parameters above the pictures

        compared = Path(os.environ["LABKIT_RUNS"]) / "compare"  # compare's page as people see it: its first
        page.get((compared / "demo.html").as_uri())  # table, and its side-by-side samples
        _picture(page, page.find_element(By.TAG_NAME, "table"), tmp_path, "table.png")
        grid = page.find_element(By.CSS_SELECTOR, "img[alt^='photo | real sketch | each ablation']")
        page.execute_script("arguments[0].scrollIntoView()", grid)
        _picture(page, grid, tmp_path, "samples.png")

        assert cli.main(["log", "add", "first look run:baseline-s0"]) == 0
        assert cli.main(["log", "show"]) == 0
        html = (Path(os.environ["LABKIT_RUNS"]) / "lablog.html").read_text()
        run_link = re.search(r'<a class="run" href="([^"]+)"', html).group(1)
        assert run_link.startswith(f"http://127.0.0.1:{port}/#/experiments/"), run_link
        page.get(run_link.replace("&amp;", "&"))
        _wait(lambda: "baseline-s0" in text() and "Overview" in text(), 60, "the run's page")

        # the term summary: one page that needs nothing beside it, its figures drawn, the log's line in it
        assert cli.main(["report", "--experiment", "demo", "--out", str(tmp_path / "report")]) == 0
        page.get((tmp_path / "report" / "report.html").as_uri())
        figures = page.find_elements(By.TAG_NAME, "img")
        assert len(figures) == 2 and all(f.get_attribute("src").startswith("data:image/png") for f in figures)
        assert all(page.execute_script("return arguments[0].naturalWidth", f) > 100 for f in figures)
        assert "Term summary" in text() and "first look" in text() and "Per ablation" in text()


@pytest.mark.slow
def test_the_docs_site_builds_and_its_pages_show_their_pictures(tmp_path):
    """mkdocs build --strict (no warning), then every page served and opened: each picture loaded."""
    from selenium.webdriver.common.by import By

    site = tmp_path / "site"
    build = subprocess.run(
        [os.path.join(os.path.dirname(sys.executable), "mkdocs"), "build", "--strict", "--site-dir", str(site)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert build.returncode == 0, build.stderr
    pages = sorted(p.relative_to(site).parent.as_posix() for p in site.rglob("index.html") if "search" not in p.parts)
    port = free_port()
    command = [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1", "--directory", str(site)]
    with (
        open(tmp_path / "http.log", "w") as log,
        serving(command, f"http://127.0.0.1:{port}/", log),
        _chromium(tmp_path) as page,
    ):
        pictures = 0
        for name in pages:
            page.get(f"http://127.0.0.1:{port}/{'' if name == '.' else name + '/'}")
            _wait(lambda: page.find_elements(By.TAG_NAME, "article"), 30, f"the page {name}")
            for image in page.find_elements(By.CSS_SELECTOR, "article img"):
                loaded = _wait(lambda i=image: page.execute_script("return arguments[0].complete", i), 10, "a picture")
                assert loaded and page.execute_script("return arguments[0].naturalWidth", image) > 100, (name, image)
                pictures += 1
        assert len(pages) >= 20 and pictures >= 3


def _jupyterlab(port: int, root: Path) -> list[str]:
    """The command that serves JupyterLab on port (no token, no password) over the folder root."""
    return [
        os.path.join(os.path.dirname(sys.executable), "jupyter"),
        "lab",
        "--no-browser",
        f"--port={port}",
        "--ServerApp.ip=127.0.0.1",
        "--IdentityProvider.token=",
        "--ServerApp.password=",
        f"--ServerApp.root_dir={root}",
    ] + (["--allow-root"] if os.geteuid() == 0 else [])


@pytest.mark.slow
def test_jupyterlab_runs_a_notebook_to_its_end_and_git_stays_clean(lab, tmp_path):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    notebook = ROOT / "notebooks" / "baseline.ipynb"
    original = notebook.read_bytes()
    port = free_port()
    command = _jupyterlab(port, ROOT)
    try:
        with (
            open(tmp_path / "jupyter.log", "w") as log,
            serving(command, f"http://127.0.0.1:{port}/api/status", log),
            _chromium(tmp_path) as page,
        ):
            page.get(f"http://127.0.0.1:{port}/lab/tree/notebooks/baseline.ipynb")
            menu = lambda css, text: [m for m in page.find_elements(By.CSS_SELECTOR, css) if m.text == text]  # noqa
            _wait(lambda: menu(".lm-MenuBar-itemLabel", "Run"), 90, "JupyterLab's menu bar")
            _wait(lambda: "Python 3 (ipykernel)" in page.find_element(By.TAG_NAME, "body").text, 60, "the kernel")
            assert not page.find_elements(By.CSS_SELECTOR, ".jp-Dialog")  # no "select a kernel" dialog
            menu(".lm-MenuBar-itemLabel", "Run")[0].click()
            _wait(lambda: menu(".lm-Menu-itemLabel", "Run All Cells"), 10, "the Run menu")[0].click()

            def ended():
                exp = track.client().get_experiment_by_name("faces")
                runs = track.client().search_runs([exp.experiment_id]) if exp else []
                return runs if runs and runs[0].info.status != "RUNNING" else None

            [run] = _wait(ended, 420, "the notebook's run to end")
            assert run.info.status == "FINISHED", run.data.tags.get("labkit.error")
            assert run.info.run_name == "baseline-s0" and "Run by hand" in run.data.tags["mlflow.note.content"]
            attached = [a.path for a in track.client().list_artifacts(run.info.run_id, "notebook")]
            assert sorted(attached) == ["notebook/baseline.html", "notebook/baseline.ipynb"]
            body = page.find_element(By.TAG_NAME, "body").text
            assert "IProgress not found" not in body
            assert page.find_elements(By.CSS_SELECTOR, ".widget-hprogress")  # tqdm's bars are widgets here
            assert not page.find_elements(By.CSS_SELECTOR, "[data-mime-type='application/vnd.jupyter.error']")
            # fit's live panel: one output area redrawn in place, its plots and the newest grid drawn
            [panel] = page.find_elements(By.CSS_SELECTOR, ".labkit-panel")
            images = panel.find_elements(By.TAG_NAME, "img")
            assert len(images) == 2 and all(page.execute_script("return arguments[0].naturalWidth", i) for i in images)
            ActionChains(page).key_down(Keys.CONTROL).send_keys("s").key_up(Keys.CONTROL).perform()
            # the file changes before the post-save hook records it in git, and the server stopped in
            # between would never run the hook: wait for the tab's unsaved mark to clear, which
            # JupyterLab does when the save's reply (sent after the hook) arrives
            _wait(
                lambda: (
                    notebook.read_bytes() != original
                    and not page.find_elements(By.CSS_SELECTOR, ".lm-TabBar-tab.jp-mod-dirty")
                ),
                60,
                "the save",
            )
            page.save_screenshot(str(tmp_path / "jupyterlab.png"))
        assert b'"outputs": [\n' in notebook.read_bytes() and b'"output_type"' in notebook.read_bytes()
        status = subprocess.run(
            ["git", "status", "--porcelain", str(notebook)], cwd=ROOT, capture_output=True, text=True
        )
        diff = subprocess.run(["git", "diff", "--stat", str(notebook)], cwd=ROOT, capture_output=True, text=True)
        assert status.stdout == "", diff.stdout  # run and saved with its outputs, yet clean in git
    finally:
        put_back(notebook, original)
        gitclean.refresh(notebook)


SWAP_EXPLORER = """import torch
from labkit.config import StyleConfig
from labkit.style.decoder import Decoder
from labkit.style.images import load_sets
from labkit.style.swaprun import SwapLab
from labkit.style.vgg import build_encoder

cfg = StyleConfig(ablation="swap_softmax", image_size=64, vgg_weights="random-init", device="cpu")
content, style = load_sets(cfg)
lab = SwapLab(cfg, None, content, style, build_encoder(cfg, torch.device("cpu")), Decoder(cfg.decoder_kind).eval())
lab.explore()"""


def _slide(page, box, label: str, key: str) -> None:
    """Move the slider labelled `label` in box by one step with the keyboard (a person's arrow key)."""
    from selenium.webdriver.common.by import By

    [slider] = [
        s
        for s in box.find_elements(By.CSS_SELECTOR, ".widget-slider")
        if s.find_element(By.TAG_NAME, "label").text == label
    ]
    handle = slider.find_element(By.CSS_SELECTOR, ".noUi-handle")
    handle.click()
    handle.send_keys(key)


@pytest.mark.slow
def test_jupyterlab_draws_the_explorers_and_redraws_them_as_a_person_selects_and_slides(lab, tmp_path, tiny_cfg):
    """The run explorer (a run selected in its table, the epoch slid back) and the swap explorer (the
    position and the temperature slid) in a notebook that JupyterLab runs: each change redrawn."""
    import nbformat
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import Select

    from labkit.data import load_faces
    from labkit.train import fit

    for seed in (0, 1):
        cfg = tiny_cfg(seed=seed)  # experiment faces, as notebooks/explore.ipynb reads
        run = track.open_run(cfg, notebook="baseline")
        fit(cfg, load_faces(cfg, progress=False), run, progress=False)
        run.end()
    notebook = nbformat.read(ROOT / "notebooks" / "explore.ipynb", as_version=4)  # the lab's, and a swap's cell
    notebook.cells.append(nbformat.v4.new_code_cell(SWAP_EXPLORER))
    nbformat.write(notebook, tmp_path / "explore.ipynb")
    port = free_port()
    with (
        open(tmp_path / "jupyter.log", "w") as log,
        serving(_jupyterlab(port, tmp_path), f"http://127.0.0.1:{port}/api/status", log),
        _chromium(tmp_path) as page,
    ):
        page.get(f"http://127.0.0.1:{port}/lab/tree/explore.ipynb")
        menu = lambda css, text: [m for m in page.find_elements(By.CSS_SELECTOR, css) if m.text == text]  # noqa
        _wait(lambda: menu(".lm-MenuBar-itemLabel", "Run"), 90, "JupyterLab's menu bar")
        _wait(lambda: "Python 3 (ipykernel)" in page.find_element(By.TAG_NAME, "body").text, 60, "the kernel")
        menu(".lm-MenuBar-itemLabel", "Run")[0].click()
        _wait(lambda: menu(".lm-Menu-itemLabel", "Run All Cells"), 10, "the Run menu")[0].click()
        drawn = lambda css: [  # noqa: E731
            i
            for i in page.find_elements(By.CSS_SELECTOR, f"{css} img")
            if page.execute_script("return arguments[0].complete && arguments[0].naturalWidth", i)
        ]
        _wait(lambda: len(drawn(".labkit-explore")) == 3, 120, "the run explorer's curves, samples and heatmap")
        runs_box = page.find_element(By.CSS_SELECTOR, ".labkit-explore").find_element(By.XPATH, "..")
        table = Select(runs_box.find_element(By.CSS_SELECTOR, ".labkit-runs select"))
        assert [o.text.split()[0] for o in table.options] == ["baseline-s1", "baseline-s0"]
        table.select_by_index(0)  # ctrl-click: both runs
        _wait(lambda: len(drawn(".labkit-explore")) == 4, 60, "a heatmap for each of two runs")
        caption = lambda: runs_box.find_element(By.CSS_SELECTOR, ".labkit-explore").text  # noqa: E731
        _wait(lambda: "baseline-s1: |generated - real|" in caption() and "at epoch 2" in caption(), 30, "captions")
        _slide(page, runs_box, "epoch", Keys.LEFT)
        _wait(lambda: "at epoch 1" in caption(), 60, "the samples of epoch 1")
        _picture(page, runs_box, tmp_path, "run-explorer.png")

        _wait(lambda: drawn(".labkit-swap-explore"), 120, "the swap explorer's picture")
        swap_box = page.find_element(By.CSS_SELECTOR, ".labkit-swap-explore").find_element(By.XPATH, "..")
        status = lambda: swap_box.find_element(By.CSS_SELECTOR, ".labkit-swap-status").text  # noqa: E731
        _wait(lambda: "the patch taken at (3, 3)" in status(), 30, "the first probe's status")
        picture = drawn(".labkit-swap-explore")[0].get_attribute("src")
        _slide(page, swap_box, "row", Keys.RIGHT)
        _wait(lambda: "the patch taken at (4, 3)" in status(), 60, "the probe one row down")
        _wait(lambda: drawn(".labkit-swap-explore")[0].get_attribute("src") != picture, 30, "the probe redrawn")
        _slide(page, swap_box, "temperature", Keys.RIGHT)
        _wait(lambda: "temperature" in swap_box.text and "0.0561" in swap_box.text, 60, "the temperature moved")
        assert not page.find_elements(By.CSS_SELECTOR, "[data-mime-type='application/vnd.jupyter.error']")
