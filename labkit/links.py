"""Where the MLflow UI answers and the links into it that labkit writes (run pages, experiments'
runs tables, the lab log's references): its training view, and the runs view with the FID first.
Read without MLflow, so a command that only reads answers at once."""

from __future__ import annotations

import json
import os

from . import keys, lease
from .paths import tracking_uri, ui_address_file

DEFAULT_UI = "http://127.0.0.1:5000"
# the MLflow UI's training view (MLflow 3 opens its GenAI view unless told), and the runs table with
# the FID columns, lowest FID first: the view the experiments hold as keys.SHARED_VIEW
TRAINING_VIEW = "workflowType=machine_learning"


def _card(n: int, section: int, kind: str, key: str) -> dict:
    """A chart of MLflow's chart view, in the form its UI keeps them (ids are labkit's own)."""
    card = {"uuid": f"labkit-chart-{n}", "type": kind, "runsCountToCompare": 10, "deleted": False}
    card.update(metricSectionId=f"labkit-section-{section}", isGenerated=False)
    if kind == "IMAGE":  # without the run's every parameter above the picture
        return {**card, "imageKeys": [key], "step": 0, "showRunParams": False}
    line = {"lineSmoothness": 0, "xAxisScaleType": "linear", "xAxisKey": "step", "selectedXAxisMetricKey": ""}
    line.update(yAxisKey="metric", yAxisExpressions=[], ignoreOutliers=False, range={})
    line.update(useGlobalXaxisKey=True, useGlobalLineSmoothing=True)
    return {**card, "displayName": key, "metricKey": key, "scaleType": "linear", **(line if kind == "LINE" else {})}


_SECTIONS = {  # the chart view's first sections: the headline first, not per subset and interval
    "FID": [("LINE", keys.FID), ("LINE", keys.KID), ("BAR", keys.FID_BEST)],
    "Samples": [("IMAGE", keys.SAMPLES), ("IMAGE", keys.ERROR_HEATMAP)],
    "Losses": [("LINE", "loss_G"), ("LINE", "loss_D")],
}
RUNS_VIEW = {
    "selectedColumns": [  # (no Dataset column: the FID columns fit beside the run names)
        *(f"metrics.`{name}`" for name in (keys.FID_LAST, keys.FID_BEST, keys.FID_MEAN, keys.KID_LAST)),
        "params.`ablation`",
        "params.`seed`",
    ],
    "orderByKey": f"metrics.`{keys.FID_LAST}`",
    "orderByAsc": True,
    "isAccordionReordered": True,
    "compareRunSections": [
        {"uuid": f"labkit-section-{i}", "name": name, "display": True, "isReordered": False, "deleted": False}
        | {"isGenerated": False}
        for i, name in enumerate(_SECTIONS)
    ],
    "compareRunCharts": [
        _card(n, i, kind, key)
        for n, (i, kind, key) in enumerate(
            (i, *chart) for i, charts in enumerate(_SECTIONS.values()) for chart in charts
        )
    ],
}


def ui_url() -> str:
    """Where the MLflow UI answers: the tracking server; else LABKIT_UI; else the address a running
    `labkit ui` recorded (whatever its port); else where `labkit ui` serves by default."""
    base = tracking_uri()
    if base.startswith("http"):
        return base.rstrip("/")
    if os.environ.get("LABKIT_UI"):
        return os.environ["LABKIT_UI"].rstrip("/")
    try:
        serving = json.loads(ui_address_file().read_text())
        if lease.alive(int(serving["pid"])):
            return str(serving["url"]).rstrip("/")
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return DEFAULT_UI


def experiment_url(experiment_id: str) -> str:
    """An experiment's runs table in the training view, with the FID columns."""
    return f"{ui_url()}/#/experiments/{experiment_id}/runs?{TRAINING_VIEW}&viewStateShareKey={keys.VIEW_KEY}"


def run_url(experiment_id: str, run_id: str) -> str:
    """A run's page in the training view."""
    return f"{ui_url()}/#/experiments/{experiment_id}/runs/{run_id}?{TRAINING_VIEW}"
