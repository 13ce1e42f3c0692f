"""What a person sees, in headless Chromium (Debian's chromium and chromium-driver, driven by
Selenium; `.ci/run` installs them): the MLflow UI on the lab's store, and JupyterLab running a
notebook of the repository to its end."""

import contextlib
import os
import shutil
import subprocess
import sys
import time

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
def _chromium(tmp_path):
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
        "--window-size=1500,1100",
    ):
        options.add_argument(flag)
    options.binary_location = CHROMIUM
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=DRIVER))
    try:
        yield driver
    finally:
        driver.quit()


def _wait(predicate, timeout: float, what: str):
    deadline = time.time() + timeout
    while time.time() < deadline:
        found = predicate()
        if found:
            return found
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.slow
def test_the_mlflow_ui_shows_the_fid_curves_and_an_image_card(lab, tmp_path):
    from selenium.webdriver.common.by import By

    params = tmp_path / "baseline.yaml"
    params.write_text(yaml.safe_dump({"ablation": "baseline", "experiment": "demo", **TINY}))
    assert cli.main(["ablate", str(params), "--no-progress", "--no-log"]) == 0
    experiment = track.client().get_experiment_by_name("demo").experiment_id
    port = free_port()
    with (
        open(tmp_path / "mlflow.log", "w") as log,
        serving(cli.ui_command(port), f"http://127.0.0.1:{port}/health", log),
        _chromium(tmp_path) as page,
    ):
        page.get(f"http://127.0.0.1:{port}/#/experiments/{experiment}/runs?compareRunsMode=CHART")
        titled = lambda text: page.find_elements(By.XPATH, f"//*[normalize-space(text())='{text}']")  # noqa: E731
        fid = _wait(lambda: titled("fid"), 90, "the fid chart")[0]
        # the cards are drawn as they scroll into view: scroll the charts' panel down until the card is there
        scroll = (
            "let e = arguments[0]; while (e && !(e.scrollHeight > e.clientHeight + 20 && "
            "getComputedStyle(e).overflowY != 'visible')) e = e.parentElement; if (e) e.scrollTop += 400;"
        )

        def samples_card():
            page.execute_script(scroll, fid)
            return titled("samples")

        card = _wait(samples_card, 90, "the samples image card")[0]
        page.execute_script("arguments[0].scrollIntoView({block: 'center'})", card)
        image = _wait(
            lambda: [
                i
                for i in page.find_elements(By.TAG_NAME, "img")
                if "images%2Fsamples" in (i.get_attribute("src") or "")
                and page.execute_script("return arguments[0].naturalWidth", i) > 0
            ],
            60,
            "a sample grid drawn in its card",
        )
        assert image
        page.save_screenshot(str(tmp_path / "mlflow-ui.png"))


@pytest.mark.slow
def test_jupyterlab_runs_a_notebook_to_its_end_and_git_stays_clean(lab, tmp_path):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    notebook = ROOT / "notebooks" / "baseline.ipynb"
    original = notebook.read_bytes()
    port = free_port()
    command = [
        os.path.join(os.path.dirname(sys.executable), "jupyter"),
        "lab",
        "--no-browser",
        f"--port={port}",
        "--ServerApp.ip=127.0.0.1",
        "--IdentityProvider.token=",
        "--ServerApp.password=",
        f"--ServerApp.root_dir={ROOT}",
    ] + (["--allow-root"] if os.geteuid() == 0 else [])
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
