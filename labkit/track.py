"""Every run tracked in MLflow: one notebook execution = one run, resumable by its id.

Store: MLFLOW_TRACKING_URI when set (a team `mlflow server`), else sqlite:///runs/mlflow.db
with artifacts under runs/artifacts/. Runs are addressed by id through MlflowClient (not the
global active run), so the runner and a notebook kernel can work on the same run.

Who ends a run: exactly one owner, an `OwnedRun` (like MLflow's ActiveRun, a context manager
that ends the run FINISHED, FAILED or KILLED by how its block ends). `labkit ablate` owns the
runs it drives; a notebook run by hand (JupyterLab, plain papermill) owns its own. Everything
else holds a plain `Run`: it logs, and leaves the status alone.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import logging
import os
import platform
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

import mlflow
from mlflow.entities import Metric, Param, RunTag
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from . import keys, lease, store
from .config import Config, ParamError, from_namespace
from .keys import Status
from .links import RUNS_VIEW, experiment_url, run_url, ui_url  # noqa: F401 (their home: labkit.links)
from .paths import default_tracking_uri, project_root, runs_dir, tracking_uri
from .provenance import git_state, package_versions
from .store import find_reference, store_wait_minutes  # noqa: F401 (their home: labkit.store)

# MLflow's own INFO lines ("Creating initial MLflow database tables", "Started monitoring system
# metrics") would fill every notebook with red boxes; its warnings still show
logging.getLogger("mlflow").setLevel(logging.WARNING)


_READY: set[str] = set()


def _locked(exc: Exception) -> bool:
    return "database is locked" in str(exc)


class PatientClient:
    """An MlflowClient that waits out a locked SQLite store (a backup, a `sqlite3` shell, another
    tool holding it): a call that finds the store locked is tried again with backoff, saying so
    once, for up to store_wait_minutes(); a locked store's call changed nothing, so trying it
    again is safe. Every other error goes through as it came."""

    def __init__(self, c: MlflowClient, uri: str):
        self._client, self._uri = c, uri

    def __getattr__(self, name: str):
        attr = getattr(self._client, name)
        if not callable(attr):
            return attr

        def patient(*args, **kwargs):
            started, delay, said = time.monotonic(), 1.0, False
            while True:
                try:
                    return attr(*args, **kwargs)
                except MlflowException as exc:
                    waited, limit = time.monotonic() - started, 60 * store_wait_minutes()
                    if not _locked(exc):
                        raise
                    if waited >= limit:
                        raise store.StoreError(
                            f"{self._uri}: the store stayed locked by another process for {waited:.0f} s; gave up "
                            f"(LABKIT_STORE_WAIT_MINUTES={store_wait_minutes():g}). Close what holds it (a "
                            "`sqlite3` shell, a backup) and run the same command again: it resumes"
                        ) from None
                    if not said:
                        print(
                            f"labkit: the store {self._uri} is locked by another process; waiting up to "
                            f"{store_wait_minutes():g} min (LABKIT_STORE_WAIT_MINUTES)",
                            file=sys.stderr,
                            flush=True,
                        )
                        said = True
                    time.sleep(min(delay, max(limit - waited, 0)))
                    delay = min(2 * delay, 30.0)

        return patient


def login_refused(exc: Exception) -> store.StoreError | None:
    """The error to give when a tracking server with a login (labkit server) turned a call away."""
    text = str(exc)
    if not isinstance(exc, MlflowException) or not ("401 != 200" in text or "403 != 200" in text):
        return None
    who = os.environ.get("MLFLOW_TRACKING_USERNAME")
    if "401 != 200" in text:
        return store.StoreError(
            f"{tracking_uri()} asks for a login"
            + (f": user '{who}' and its password were not accepted" if who else "")
            + ". Set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD (the server's admin adds users)"
        )
    return store.StoreError(
        f"{tracking_uri()}: user '{who}' may not do this; ask the server's admin for EDIT (or MANAGE) on the experiment"
    )


def client(create: bool = True) -> MlflowClient:
    """A client of the store (waiting out a locked SQLite store: PatientClient). A SQLite store is
    created (schema and migrations) under a file lock the first time a process opens it, where
    `create` (parallel first starts would otherwise race); one that is empty or damaged is
    refused naming the fix."""
    uri = tracking_uri()
    chosen = "MLFLOW_TRACKING_URI" in os.environ
    mlflow.set_tracking_uri(uri)  # for MLflow's own functions (search_runs as a table)
    if not chosen:  # MLflow exports it; ours is derived from LABKIT_RUNS each time, not a user's choice
        os.environ.pop("MLFLOW_TRACKING_URI", None)
    path = store.store_path()
    if path is None:
        return MlflowClient(uri)
    if uri in _READY:
        return PatientClient(MlflowClient(uri), uri)
    store.check(path, create)
    with store.creating(path) if create else contextlib.nullcontext():  # a store only read exists already
        store.check(path, create)
        try:
            c = PatientClient(MlflowClient(uri), uri)  # creates and migrates the database when it is new
            c.search_experiments(max_results=1)
        except MlflowException as exc:
            damaged = store.damaged()
            if damaged is None:
                raise
            raise damaged from exc
        if uri == default_tracking_uri():
            follow_moved_runs(path)
    _READY.add(uri)
    return c


def follow_moved_runs(db: Path) -> list[str]:
    """runs/ moved or copied keeps its artifacts: the default store records artifact places as
    absolute paths, so those that point into another folder's runs/artifacts are rewritten to
    this one's (beside the store). Returns the old roots rewritten."""
    here = (db.parent / "artifacts").as_uri()
    with sqlite3.connect(db) as con:
        places = [row[0] for row in con.execute("SELECT artifact_location FROM experiments")]
        roots = {
            p[: p.index("/artifacts/") + len("/artifacts")]
            for p in places
            if p and p.startswith("file://") and "/artifacts/" in p
        } - {here}
        for old in roots:
            for table, column in (("experiments", "artifact_location"), ("runs", "artifact_uri")):
                con.execute(
                    f"UPDATE {table} SET {column} = ? || substr({column}, ?) WHERE substr({column}, 1, ?) = ?",
                    (here, len(old) + 1, len(old) + 1, old + "/"),
                )
    return sorted(roots)


def existing_experiment(c: MlflowClient, name: str):
    """The experiment of this name; an unknown one is refused with the list of those that exist."""
    exp = c.get_experiment_by_name(name)
    if exp is None:
        raise store.unknown_experiment(name, sorted(e.name for e in c.search_experiments() if e.name != "Default"))
    return exp


def headlines(run_ids) -> dict[str, tuple[float | None, str]]:
    """Per run id: its last FID (None for a run that measures none) and its page, for summaries."""
    c, out = client(create=False), {}
    for run_id in filter(None, run_ids):
        try:
            run = c.get_run(run_id)
        except MlflowException:
            continue
        out[run_id] = (run.data.metrics.get(keys.FID_LAST), run_url(run.info.experiment_id, run_id))
    return out


def _experiment_tags() -> dict[str, str]:
    return {keys.EXPERIMENT_KIND: keys.TRAINING_EXPERIMENT, keys.SHARED_VIEW: json.dumps(RUNS_VIEW)}


def experiment_id(c: MlflowClient, name: str) -> str:
    """The experiment's id, created on first use (artifacts under runs/ for the default store)."""
    exp = c.get_experiment_by_name(name)
    if exp is not None:
        for key, value in _experiment_tags().items():  # an experiment made by an older labkit, brought up to date
            if exp.tags.get(key) != value:
                c.set_experiment_tag(exp.experiment_id, key, value)
        return exp.experiment_id
    location = (runs_dir() / "artifacts" / name).as_uri() if tracking_uri() == default_tracking_uri() else None
    try:
        return c.create_experiment(name, artifact_location=location, tags=_experiment_tags())
    except MlflowException:  # created meanwhile by a parallel process
        return c.get_experiment_by_name(name).experiment_id


class Run:
    """One MLflow run, addressed by id: logging, never its status."""

    def __init__(self, c: MlflowClient, run_id: str):
        self.client, self.run_id = c, run_id
        run = c.get_run(run_id)
        self.info = run.info
        # how far it is, in every beat: the runner's live lines show it (labkit.live)
        self.progress = {"run": self.name, "key": run.data.tags.get(keys.RUN_KEY, "")}
        self._last_beat = self._last_stored_beat = -float("inf")
        self._highest: dict[str, int] | None = None

    @property
    def name(self) -> str:
        return self.info.run_name or self.run_id[:8]

    def _highest_steps(self) -> dict[str, int]:
        """The highest step the store holds per metric key (read once, then kept up to date)."""
        if self._highest is None:
            logged = self.client.get_run(self.run_id).data.metrics
            self._highest = {
                k: max((m.step for m in self.client.get_metric_history(self.run_id, k)), default=0) for k in logged
            }
        return self._highest

    def log_metrics(self, values: dict[str, float], step: int | None = None) -> None:
        """Metrics at a step (None: summaries, at step 0). A resumed run replays the steps between
        its checkpoint and where it stopped: what the store already holds at a step > 0 is not
        logged again, so no (key, step) appears twice."""
        highest = self._highest_steps()
        if step:
            values = {k: v for k, v in values.items() if step > highest.get(k, 0)}
            highest.update(dict.fromkeys(values, step))
        if values:
            now = int(time.time() * 1000)
            self.client.log_batch(self.run_id, metrics=[Metric(k, float(v), now, step or 0) for k, v in values.items()])

    def log_image(self, image, key: str, step: int) -> None:
        self.client.log_image(self.run_id, image, key=key, step=step)

    def log_image_file(self, image, artifact_file: str) -> None:
        self.client.log_image(self.run_id, image, artifact_file=artifact_file)

    def set_tags(self, tags: dict) -> None:
        if tags:  # one write for them all
            self.client.log_batch(self.run_id, tags=[RunTag(k, "" if v is None else str(v)) for k, v in tags.items()])

    def log_dataset(self, name: str, digest: str, source: str, contexts=("train", "test")) -> None:
        """The data as MLflow dataset inputs (the runs table's Dataset column), one per context."""
        from mlflow.entities import Dataset, DatasetInput, InputTag

        inputs = [
            DatasetInput(
                Dataset(
                    name=f"{name} ({context})", digest=digest, source_type="local", source=json.dumps({"uri": source})
                ),
                [InputTag("mlflow.data.context", context)],
            )
            for context in contexts
        ]
        try:
            self.client.log_inputs(self.run_id, inputs)
        except MlflowException as exc:
            # the store looks the dataset up, then inserts it: two runs of an experiment starting on the
            # same new data at once (the demo's two at a time) can both insert, and the second fails its
            # unique key. The first has stored it by then, so logging again links to that one.
            if not any(s in str(exc) for s in ("UNIQUE constraint failed", "duplicate key value")):
                raise
            self.client.log_inputs(self.run_id, inputs)

    def log_file(self, path: Path, artifact_dir: str) -> None:
        self.client.log_artifact(self.run_id, str(path), artifact_dir)

    def log_text(self, text: str, artifact_file: str) -> None:
        self.client.log_text(self.run_id, text, artifact_file)

    def log_arrays(self, arrays: dict, artifact_file: str) -> None:
        """Named arrays as one .npz artifact (replacing the one at that path)."""
        import numpy as np

        path = Path(artifact_file)
        with tempfile.TemporaryDirectory() as tmp:
            np.savez(Path(tmp) / path.name, **arrays)
            self.client.log_artifact(self.run_id, str(Path(tmp) / path.name), str(path.parent))

    def metric_history(self, key: str) -> list[tuple[int, float]]:
        return [(m.step, m.value) for m in self.client.get_metric_history(self.run_id, key)]

    def beat(self, step: int, phase: str = "train", force: bool = False) -> None:
        """Tell the runner this run is alive: at once with force (every logged step), else at
        most every lease.BEAT_SECONDS (cheap enough to call every step). The store gets it too,
        at most every 2 * BEAT_SECONDS, for whoever watches from another machine."""
        now = time.monotonic()
        if force or now - self._last_beat >= lease.BEAT_SECONDS:
            beat = lease.beat(self.run_id, step, phase, self.progress)
            self._last_beat = now
            if now - self._last_stored_beat >= 2 * lease.BEAT_SECONDS:
                self.client.set_tag(self.run_id, keys.HEARTBEAT, json.dumps(beat.__dict__))
                self._last_stored_beat = now

    def url(self) -> str:
        """The run's page in the MLflow UI (ui_url says where that is), in its training view."""
        return run_url(self.info.experiment_id, self.run_id)

    def end(self, status: Status = Status.FINISHED, error: str = "") -> None:
        """A plain handle does not end its run: its owner (the runner) does."""

    def __enter__(self) -> Run:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        """As MLflow's ActiveRun: FINISHED when the block ends normally, FAILED on any exception
        (the error kept as a tag)."""
        self.end(
            Status.FINISHED if exc_type is None else Status.FAILED, f"{exc_type.__name__}: {exc}" if exc_type else ""
        )


def attach_notebook(run: Run, path: Path) -> None:
    """An executed notebook, and the same as HTML (the MLflow UI shows .ipynb files as raw JSON)."""
    import nbformat
    from nbconvert import HTMLExporter

    html, _ = HTMLExporter().from_notebook_node(nbformat.read(path, as_version=4))
    run.client.log_artifact(run.run_id, str(path), keys.NOTEBOOK_DIR)
    # written where it is logged from, never moved: runs/ may be on another filesystem than $TMPDIR
    with tempfile.TemporaryDirectory() as tmp:
        page = Path(tmp) / f"{path.stem}.html"
        page.write_text(html, encoding="utf-8")
        run.client.log_artifact(run.run_id, str(page), keys.NOTEBOOK_DIR)
    run.set_tags({keys.NOTEBOOK: path})


def run_lease(run_id: str) -> lease.Lease:
    """Held by whoever owns the run: while it is held the run is alive, whatever its status says."""
    return lease.Lease(keys.owner_lease(run_id))


class OwnedRun(Run):
    """The run's owner: takes its lease (lease.LeaseHeld if a live process has it), marks it
    RUNNING, and alone ends it (FINISHED, FAILED with the error, KILLED), once."""

    def __init__(self, c: MlflowClient, run_id: str, system_metrics: bool = True):
        super().__init__(c, run_id)
        self.lease = run_lease(run_id).acquire()
        self.ended = False
        self.notebook: Path | None = None  # attached at the end (a notebook run by hand in JupyterLab)
        self.says_end = False  # a notebook run by hand says how its run ended (a runner says it itself)
        c.update_run(run_id, status=Status.RUNNING)
        self.monitor = None
        if system_metrics:  # CPU, memory, disk, network, and GPUs when there are: system/* metrics
            from mlflow.system_metrics.system_metrics_monitor import SystemMetricsMonitor

            self.monitor = SystemMetricsMonitor(run_id, resume_logging=True, tracking_uri=tracking_uri())
            self.monitor.start()

    def end(self, status: Status = Status.FINISHED, error: str = "") -> None:
        if self.ended:
            return
        self.ended = True
        if self.monitor is not None:
            self.monitor.finish()
            # one last sample: a run shorter than the sampling interval still gets its system metrics
            self.monitor.collect_metrics()
            self.monitor.publish_metrics(self.monitor.aggregate_metrics())
            self.monitor.mlflow_logger.flush()
        try:
            if self.notebook is not None and self.notebook.is_file():
                attach_notebook(self, self.notebook)  # as last saved: JupyterLab saves every two minutes
            if error.strip():
                self.client.set_tag(self.run_id, keys.ERROR, error.strip().splitlines()[0][:500])
            elif status == Status.FINISHED:  # a resumed run: an earlier attempt's error and beat are stale
                tags = self.client.get_run(self.run_id).data.tags
                if keys.ERROR in tags:
                    self.client.set_tag(self.run_id, keys.EARLIER_ERROR, tags[keys.ERROR])
                for stale in (keys.ERROR, keys.HEARTBEAT):
                    if stale in tags:
                        self.client.delete_tag(self.run_id, stale)
            self.client.set_terminated(self.run_id, status)
            if self.says_end:
                fid = self.client.get_run(self.run_id).data.metrics.get(keys.FID_LAST)
                print(
                    f"run {self.name} {status}" + (f": FID {fid:.2f}" if fid is not None else "") + f"\n  {self.url()}"
                )
        finally:
            self.lease.release()


def run_name(c: MlflowClient, exp_id: str, label: str, seed: int, run_key: str) -> str:
    """The one naming rule: `<label>-s<seed>`, label being the params file's stem (or the
    ablation, for a notebook run by hand; with a sweep's values for a run of a sweep)."""
    return unique_name(c, exp_id, f"{label}-s{seed}", run_key)


def unique_name(c: MlflowClient, exp_id: str, base: str, run_key: str) -> str:
    """`base`, unique in its experiment: when runs of other parameters hold it already, `-2`,
    `-3`, ... is added."""
    taken = {
        r.info.run_name
        for r in c.search_runs([exp_id], f"attributes.run_name LIKE '{base}%'", max_results=5000)
        if r.data.tags.get(keys.RUN_KEY) != run_key
    }
    name, n = base, 1
    while name in taken:
        n += 1
        name = f"{base}-{n}"
    return name


def create_run(cfg: Config, label: str, tags: dict | None = None) -> str:
    """A new run for cfg (in cfg.experiment), its id fixed before anything executes."""
    c = client()
    exp = experiment_id(c, cfg.experiment)
    key = cfg.run_key()
    run = c.create_run(
        exp,
        run_name=run_name(c, exp, label, cfg.seed, key),
        tags={keys.KIND: keys.TRAIN, keys.ABLATION: cfg.ablation, keys.RUN_KEY: key, keys.LABEL: label, **(tags or {})},
    )
    return run.info.run_id


def find_run(cfg: Config):
    """The newest run made from the same parameters (same identity), or None."""
    c = client()
    exp = c.get_experiment_by_name(cfg.experiment)
    if exp is None:
        return None
    runs = c.search_runs(
        [exp.experiment_id],
        f"tags.`{keys.RUN_KEY}` = '{cfg.run_key()}'",
        order_by=["attributes.start_time DESC"],
        max_results=1,
    )
    return runs[0] if runs else None


def all_runs(c: MlflowClient) -> list:
    """Every run of the store, newest first."""
    exps = [e.experiment_id for e in c.search_experiments()]
    return c.search_runs(exps, order_by=["attributes.start_time DESC"], max_results=50000) if exps else []


def run_id_of(ref: str) -> str:
    """The id of the run a reference means (see find_reference); a clear error when none does."""
    run = find_reference(ref, all_runs(client()))
    if run is None:
        raise FileNotFoundError(f"no run named or labelled '{ref}' (nor an id starting so) in {tracking_uri()}")
    return run.info.run_id


def open_run(cfg: Config, run_id: str = "", notebook: str | None = None, reuse: bool = False) -> Run:
    """The run a notebook logs to: `run_id` when the runner fixed one (a plain handle: the runner
    owns it), else (with reuse) the run of the same parameters, else a new run; these this process
    owns. Params are logged (a resume of other parameters is refused), provenance set as tags."""
    c = client()
    if run_id:
        try:
            logged = c.get_run(run_id).data.params
        except MlflowException:
            raise ParamError(f"run_id={run_id!r} is not a run in {tracking_uri()}") from None
        clash = cfg.differences(logged)
        if clash:
            raise ParamError(
                f"run {run_id} was started with other parameters ({'; '.join(clash)}); leave run_id "
                "empty (or use `labkit ablate --fresh`) to start a new run"
            )
        run = Run(c, run_id)
    else:  # the same parameters find their run, as `labkit ablate` finds it (Restart & Run All too)
        existing = find_run(cfg) if reuse else None
        try:
            run = OwnedRun(c, existing.info.run_id if existing else create_run(cfg, label=cfg.ablation))
        except lease.LeaseHeld as exc:
            raise ParamError(
                f"these parameters are being run already (run {existing.info.run_name}): {exc}. Wait for it, or "
                "change a parameter for a run of its own"
            ) from None
        if existing is not None:
            print(f"the run of these parameters exists ({existing.info.status}): continuing it")
        logged = existing.data.params if existing else {}
    params, settings = cfg.recorded()
    new = {k: v for k, v in params.items() if k not in logged}
    if new:
        c.log_batch(run.run_id, params=[Param(k, str(v)) for k, v in new.items()])
    run.set_tags({keys.SETTINGS: ", ".join(f"{k}={v}" for k, v in settings.items())})  # a resume may change them
    git = git_state(project_root())
    run.set_tags(
        {
            keys.SOURCE_NAME: f"notebooks/{notebook}.ipynb" if notebook else "labkit",
            keys.SOURCE_TYPE: "NOTEBOOK" if notebook else "LOCAL",
            keys.SOURCE_COMMIT: git["commit"],
            keys.GIT_DIRTY: git["dirty"],
            keys.SEED: cfg.seed,
            keys.PYTHON: platform.python_version(),
            keys.VERSIONS: ", ".join(f"{k} {v}" for k, v in package_versions().items()),
        }
    )
    if git["dirty"]:
        run.log_text(git["diff"], keys.GIT_DIFF)
    return run


def _owned_by_this_kernel(run: OwnedRun) -> None:
    """A notebook run by hand owns its run: an error in any cell ends it FAILED, a kernel that
    stops before the last cell's `run.end()` ends it KILLED."""
    from IPython import get_ipython

    ip = get_ipython()
    if ip is not None:

        def failed(result):
            if result.error_in_exec is not None:
                error = result.error_in_exec
                run.end(Status.FAILED, f"{type(error).__name__}: {error}")

        ip.events.register("post_run_cell", failed)
    atexit.register(lambda: run.end(Status.KILLED, "the kernel stopped before the notebook's last cell"))


def start(namespace: dict) -> tuple[Config, Run]:
    """What a notebook's first cell calls with its globals(): the config (every injected name
    checked), and its run, opened or resumed."""
    cfg = from_namespace(namespace)
    run = open_run(cfg, str(namespace.get("run_id") or ""), notebook=cfg.ablation, reuse=True)
    if isinstance(run, OwnedRun):
        from .gitclean import ensure

        ensure(project_root())  # opened by hand (a conda environment, no make): notebooks stay clean in git
        _owned_by_this_kernel(run)
        run.says_end = True
        session = namespace.get("__session__")  # JupyterLab's path of the notebook
        run.notebook = Path(session) if session and Path(session).suffix == ".ipynb" else None
        if keys.NOTE not in run.client.get_run(run.run_id).data.tags:
            run.set_tags(
                {
                    keys.NOTE: f"Run by hand from notebooks/{cfg.ablation}.ipynb (not through `labkit ablate`): "
                    "its values are the notebook's own, and what was injected into it."
                }
            )
    lease.dump_stacks_on_signal(run.run_id)
    run.beat(0, "start", force=True)
    print(f"MLflow run {run.name} ({run.run_id})\n  {run.url()}")
    return cfg, run
