"""Sweeps: a grid of parameter values (`--grid NAME=V1,V2`) or points sampled by Optuna
(`--sample N --range NAME=LOW:HIGH[:log]`), each point run over the seeds, the runs nested in
the MLflow UI under one parent run per sweep.

The parent is found again by what the sweep is (a grid: its runs' keys; a search: its files,
ranges, trials and sampler), so the same command run again continues the same sweep: finished
runs are skipped, interrupted ones resume, and a search's Optuna study (kept in
runs/optuna.db) goes on from its last trial. The command that drives the sweep owns its parent
(track.OwnedRun) and ends it when the last run ends, with the sweep's table and its
FID-against-factor figures as artifacts. A run of the same parameters made before, outside any
sweep, is taken into the sweep rather than computed again.
"""

from __future__ import annotations

import hashlib
import json

import numpy as np

from . import keys, lease, track
from .config import ParamError
from .keys import Status
from .paths import runs_dir


def _key(what) -> str:
    return hashlib.sha256(json.dumps(what, sort_keys=True, default=str).encode()).hexdigest()[:16]


class Sweep:
    """A sweep's parent run, owned by the command that drives the sweep."""

    def __init__(self, jobs: list, factors: list[str], name: str, key: str, how: dict):
        experiments = {job.cfg.experiment for job in jobs}
        if len(experiments) > 1:
            raise ParamError(
                f"a sweep lives in one experiment; these params files name {sorted(experiments)}: sweep each apart"
            )
        self.experiment, self.factors = experiments.pop(), factors
        # one command drives a sweep: a second is refused before it could make a second parent
        self.lease = lease.Lease(f"sweep-{key}").acquire()
        c = track.client()
        exp = track.experiment_id(c, self.experiment)
        found = c.search_runs([exp], f"tags.`{keys.SWEEP_KEY}` = '{key}'", max_results=1)
        if found:
            run_id = found[0].info.run_id
        else:
            run_id = c.create_run(
                exp,
                run_name=track.unique_name(c, exp, name, key),
                tags={keys.KIND: keys.SWEEP, keys.SWEEP_KEY: key, keys.SWEEP_FACTORS: ",".join(factors)},
            ).info.run_id
            from mlflow.entities import Param

            common = {k: v for k, v in jobs[0].cfg.to_dict().items() if k not in factors and k != "seed"}
            c.log_batch(
                run_id,
                params=[
                    Param(k, str(v))
                    for k, v in {
                        **common,
                        **{f"sweep.{k}": json.dumps(v) for k, v in how.items()},
                        "sweep.seeds": ",".join(sorted({str(j.cfg.seed) for j in jobs}, key=int)),
                    }.items()
                ],
            )
        self.run = track.OwnedRun(c, run_id)

    def __enter__(self) -> Sweep:
        return self

    def __exit__(self, *exc) -> None:
        """As the parent run's owner: FAILED when the command fails, then the sweep is free."""
        try:
            self.run.__exit__(*exc)
        finally:
            self.lease.release()

    def adopt(self, jobs: list) -> list:
        """The jobs as runs of this sweep: nested under its parent, tagged with their factors."""
        for job in jobs:
            job.tags = {keys.PARENT: self.run.run_id, **{keys.FACTOR + k: str(v) for k, v in job.factors.items()}}
        return jobs

    def finish(self, outcomes: list) -> str:
        """Record the sweep's table and figures on the parent and end it: FINISHED when every
        run finished, else FAILED naming the others. Returns the table, for a terminal."""
        from .compare import compare, for_terminal

        members = sorted({o.run_id for o in outcomes if o.run_id})
        self.run.log_text(json.dumps(members, indent=1), keys.SWEEP_RUNS)
        try:
            result = compare(
                self.experiment,
                by=self.factors,
                sweep=self.run.name,
                mixed=True,
                log=False,
                out_dir=runs_dir() / "compare" / f"sweep-{self.run.run_id[:8]}",
            )
            for path in result[2]:
                self.run.client.log_artifact(self.run.run_id, str(path), keys.SWEEP_FILES)
            text = for_terminal(result, f"{self.experiment}, sweep {self.run.name}", self.factors)
        except ParamError as exc:
            text = f"no table: {exc}"
        bad = [o for o in outcomes if not o.status.done]
        error = "; ".join(f"{o.name or o.job.label} {o.status}" for o in bad)
        self.run.end(
            Status.FAILED if bad else Status.FINISHED,
            f"{len(bad)} of {len(outcomes)} runs did not finish: {error}" if bad else "",
        )
        return text


def grid_sweep(jobs: list, grid: dict[str, list], stem: str) -> Sweep:
    """The sweep of a grid's jobs (found again by their run keys)."""
    key = _key(sorted(job.cfg.run_key() for job in jobs))
    sweep = Sweep(jobs, list(grid), f"{stem}-sweep-{'-'.join(grid)}", key, {"grid": grid})
    sweep.adopt(jobs)
    return sweep


class Search:
    """Points sampled by an Optuna sampler (TPE, or plain random search), `workers` at a time,
    each run over the seeds; a point's value is its runs' mean FID on the validation faces
    when val_fraction > 0, else on the test set (which then also picks the winner: optimistic,
    and the parent says so). The study lives in runs/optuna.db, named by the sweep's key."""

    def __init__(
        self,
        specs: list[str],
        base: list,
        ranges: dict[str, tuple],
        trials: int,
        sampler: str,
        stem: str,
        seeds: int | None,
        overrides: list[str],
    ):
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.specs, self.seeds, self.overrides, self.trials = specs, seeds, overrides, trials
        self.ranges = ranges  # base and ranges: labkit.plan.plan_search, checked before anything runs
        self.on_val = getattr(base[0].cfg, "val_fraction", 0) > 0
        key = _key([sorted(j.cfg.run_key() for j in base), self.ranges, trials, sampler])
        self.sweep = Sweep(
            base,
            list(self.ranges),
            f"{stem}-search-{'-'.join(self.ranges)}",
            key,
            {"ranges": {k: list(v) for k, v in self.ranges.items()}, "trials": trials, "sampler": sampler},
        )
        self.sweep.run.set_tags(
            {
                keys.SWEEP_OBJECTIVE: "fid_val (validation faces)"
                if self.on_val
                else "fid_last on the test set: the winner is picked on test data (optimistic); "
                "set val_fraction to pick it on held-out training faces"
            }
        )
        pick = optuna.samplers.RandomSampler(seed=0) if sampler == "random" else optuna.samplers.TPESampler(seed=0)
        self.study = optuna.create_study(
            study_name=f"labkit-{key}",
            direction="minimize",
            sampler=pick,
            storage=f"sqlite:///{runs_dir() / 'optuna.db'}",
            load_if_exists=True,
        )

    def _point(self, trial) -> dict:
        return {
            name: (
                trial.suggest_int(name, low, high, log=log)
                if isinstance(low, int)
                else trial.suggest_float(name, low, high, log=log)
            )
            for name, (low, high, log) in self.ranges.items()
        }

    def _value(self, outcomes: list) -> float | None:
        c, metric = track.client(), keys.FID_VAL if self.on_val else keys.FID_LAST
        values = [c.get_run(o.run_id).data.metrics.get(metric) for o in outcomes if o.status.done]
        return float(np.mean(values)) if values and None not in values and len(values) == len(outcomes) else None

    def run(self, run_jobs, workers: int = 1) -> list:
        """Trials until `trials` have ended: first those an interrupted command left running,
        then new ones, `workers` at a time; every outcome."""
        from optuna.trial import TrialState

        from .plan import plan

        outcomes = []
        while True:
            trials = self.study.get_trials(deepcopy=False)
            left = self.trials - sum(t.state in (TrialState.COMPLETE, TrialState.FAIL) for t in trials)
            if left <= 0:
                return outcomes
            batch = [(t.number, t.params) for t in trials if t.state == TrialState.RUNNING][:left]
            while len(batch) < min(workers, left):
                trial = self.study.ask()
                batch.append((trial.number, self._point(trial)))
            jobs = {
                number: self.sweep.adopt(
                    plan(
                        self.specs, seeds=self.seeds, overrides=self.overrides, grid={k: [v] for k, v in point.items()}
                    )
                )
                for number, point in batch
            }
            ended = run_jobs([job for js in jobs.values() for job in js])
            outcomes += ended
            for number, js in jobs.items():
                mine = [o for o in ended if o.job.cfg.run_key() in {j.cfg.run_key() for j in js}]
                value = self._value(mine)
                if value is None:
                    self.study.tell(number, state=TrialState.FAIL)
                else:
                    self.study.tell(number, value)
