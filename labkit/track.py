"""Every run tracked in MLflow: one notebook execution = one run, resumable by its id.

Store: MLFLOW_TRACKING_URI when set (a team `mlflow server`), else sqlite:///runs/mlflow.db
with artifacts under runs/artifacts/. Runs are addressed by id through MlflowClient (not the
global active run), so the runner and a notebook kernel can work on the same run.
"""
from __future__ import annotations

import hashlib
import json
import platform

import mlflow
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from .config import HARDWARE_PARAMS, ParamError
from .paths import default_tracking_uri, project_root, runs_dir, tracking_uri
from .provenance import git_state, package_versions

KIND_TAG = "labkit.kind"              # "train" for ablation runs, "compare" for tables
ABLATION_TAG = "labkit.ablation"
RUN_KEY_TAG = "labkit.run_key"        # hash of the params: a rerun finds its run by it


def client() -> MlflowClient:
    uri = tracking_uri()
    mlflow.set_tracking_uri(uri)
    return MlflowClient(uri)


def experiment_id(c: MlflowClient, name: str) -> str:
    """The experiment's id, created on first use (artifacts under runs/ for the default store)."""
    exp = c.get_experiment_by_name(name)
    if exp is not None:
        return exp.experiment_id
    location = (runs_dir() / "artifacts" / name).as_uri() if tracking_uri() == default_tracking_uri() else None
    try:
        return c.create_experiment(name, artifact_location=location)
    except MlflowException:  # created meanwhile by a parallel process
        return c.get_experiment_by_name(name).experiment_id


class Run:
    """One MLflow run, addressed by id."""

    def __init__(self, c: MlflowClient, run_id: str):
        self.client, self.run_id = c, run_id
        self.info = c.get_run(run_id).info

    def log_metrics(self, values: dict[str, float], step: int | None = None) -> None:
        for key, value in values.items():
            self.client.log_metric(self.run_id, key, float(value), step=step)

    def log_image(self, image, key: str, step: int) -> None:
        self.client.log_image(self.run_id, image, key=key, step=step)

    def set_tags(self, tags: dict) -> None:
        for key, value in tags.items():
            self.client.set_tag(self.run_id, key, "" if value is None else str(value))

    def log_text(self, text: str, artifact_file: str) -> None:
        self.client.log_text(self.run_id, text, artifact_file)

    def metric_history(self, key: str) -> list[tuple[int, float]]:
        return [(m.step, m.value) for m in self.client.get_metric_history(self.run_id, key)]

    def finish(self, status: str = "FINISHED") -> None:
        self.client.set_terminated(self.run_id, status)

    def url(self) -> str:
        base = tracking_uri()
        if base.startswith("http"):
            return f"{base.rstrip('/')}/#/experiments/{self.info.experiment_id}/runs/{self.run_id}"
        return f"http://127.0.0.1:5000/#/experiments/{self.info.experiment_id}/runs/{self.run_id}"


def run_key(params: dict) -> str:
    stable = {k: v for k, v in sorted(params.items()) if k not in HARDWARE_PARAMS}
    return hashlib.sha256(json.dumps(stable, sort_keys=True, default=str).encode()).hexdigest()[:16]


def create_run(params: dict, run_name: str, tags: dict | None = None) -> str:
    """A new run for params (in params['experiment']), its id fixed before anything executes."""
    c = client()
    exp = experiment_id(c, params.get("experiment", "faces"))
    run = c.create_run(exp, run_name=run_name, tags={
        KIND_TAG: "train", ABLATION_TAG: params.get("ablation", ""), RUN_KEY_TAG: run_key(params), **(tags or {})})
    return run.info.run_id


def find_run(params: dict):
    """The newest run made from exactly these params, or None."""
    c = client()
    exp = c.get_experiment_by_name(params.get("experiment", "faces"))
    if exp is None:
        return None
    runs = c.search_runs([exp.experiment_id], f"tags.`{RUN_KEY_TAG}` = '{run_key(params)}'",
                         order_by=["attributes.start_time DESC"], max_results=1)
    return runs[0] if runs else None


def _check_params(c: MlflowClient, run_id: str, params: dict) -> dict:
    """Params not yet logged; refuses a resume whose params differ from the run's."""
    logged = c.get_run(run_id).data.params
    clash = [f"{k}: run has {logged[k]!r}, now {str(v)!r}" for k, v in params.items()
             if k in logged and logged[k] != str(v) and k not in HARDWARE_PARAMS]
    if clash:
        raise ParamError(f"run {run_id} was started with other parameters ({'; '.join(clash)}); "
                         "leave run_id empty (or use `labkit ablate --fresh`) to start a new run")
    return {k: v for k, v in params.items() if k not in logged}


def open_run(cfg, notebook: str | None = None) -> Run:
    """The run a notebook logs to: cfg.run_id when the runner fixed one (resumed if it existed
    before), else a new run. Params are logged, and provenance set as tags."""
    c = client()
    params = {k: v for k, v in cfg.to_dict().items() if k != "run_id"}
    if cfg.run_id:
        try:
            c.get_run(cfg.run_id)
        except MlflowException:
            raise ParamError(f"run_id={cfg.run_id!r} is not a run in {tracking_uri()}") from None
        run_id = cfg.run_id
        c.update_run(run_id, status="RUNNING")
    else:
        run_id = create_run(params, run_name=f"{cfg.ablation}-s{cfg.seed}")
    new_params = _check_params(c, run_id, params)
    if new_params:
        c.log_batch(run_id, params=[mlflow.entities.Param(k, str(v)) for k, v in new_params.items()])
    run = Run(c, run_id)
    root = project_root()
    git = git_state(root)
    run.set_tags({
        "mlflow.source.name": f"notebooks/{notebook}.ipynb" if notebook else "labkit",
        "mlflow.source.type": "NOTEBOOK" if notebook else "LOCAL",
        "mlflow.source.git.commit": git["commit"], "labkit.git.dirty": git["dirty"],
        "labkit.seed": cfg.seed, "labkit.python": platform.python_version(),
        **{f"labkit.version.{k}": v for k, v in package_versions().items()},
    })
    if git["dirty"]:
        run.log_text(git["diff"], "provenance/git_diff.patch")
    return run


