"""The training loop: progress bar, loss logs, FID evaluations, checkpoints, exact resume."""
from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from .. import viz
from ..config import HARDWARE_PARAMS
from ..data import DataError
from ..metrics import FidEvaluator, load_backbone
from ..paths import checkpoint_dir
from ..provenance import device_description, pick_device
from .checkpoint import Checkpoints, set_rng_state
from .pix2pix import NonFiniteLoss, Pix2Pix



@dataclass
class Evaluation:
    epoch: int
    fid: float
    kid: float
    n_real: int
    n_fake: int
    per_subset: dict = field(default_factory=dict)  # {subset: {fid, kid, n}}


@dataclass
class FitResult:
    model: Pix2Pix
    history: list[Evaluation]
    checkpoint: Path
    backbone: str
    last_grid: np.ndarray | None = None
    last_heatmap: np.ndarray | None = None
    resumed_from: int = 0
    samples: dict = field(default_factory=dict)

    @property
    def best(self) -> Evaluation:
        return min(self.history, key=lambda e: e.fid)

    def fid_mean(self) -> float:
        return float(np.mean([e.fid for e in self.history]))

    def sample_outputs(self, pieces: bool = False):
        """The final model's output on the fixed test faces (every piece of it with pieces)."""
        s = self.samples
        return self.model.generate(s["photo"], s["landmarks"], s["mask"], pieces=pieces)


def summary_metrics(history: list[Evaluation]) -> dict[str, float]:
    """What the runs table compares: the table shows only a metric's last value."""
    best = min(history, key=lambda e: e.fid)
    return {"fid_best": best.fid, "fid_best_epoch": best.epoch, "fid_mean": float(np.mean([e.fid for e in history])),
            "fid_last": history[-1].fid, "kid_last": history[-1].kid, "fid_n_fake": history[-1].n_fake}


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def stack_items(items: list[dict]) -> dict:
    """Test items as batched tensors (photo, sketch, landmarks, mask) plus their names."""
    out = {k: torch.stack([torch.as_tensor(it[k]) for it in items]) for k in ("photo", "sketch", "landmarks", "mask")}
    out["names"] = [it["name"] for it in items]
    return out


def fixed_samples(test, n: int) -> dict:
    """n test faces spread over the test set (so over its subsets), the same at every evaluation;
    'index' says where they sit in the test set."""
    index = np.unique(np.linspace(0, len(test) - 1, min(n, len(test))).round()).astype(int)
    return {**stack_items([test.items[i] for i in index]), "index": torch.as_tensor(index)}


def _require_landmarks(data) -> None:
    missing = [p.name for ds in (data.train, data.test) for p in ds.pairs if p.landmarks is None]
    if missing:
        raise DataError(f"{data.root}: the local networks need landmarks for every face; {len(missing)} have none "
                        f"({', '.join(missing[:10])}{' ...' if len(missing) > 10 else ''}). Run `labkit landmarks "
                        f"{data.root}` or add their points to landmarks_manual.csv.")


def fit(cfg, data, run, progress: bool = True) -> FitResult:
    """Train (or continue training) the run's model and evaluate it every cfg.eval_every epochs.

    A checkpoint after every epoch holds networks, optimisers, schedules, the AMP scaler, RNG
    states, epoch, step and the evaluation history; a rerun of the same run id continues from
    it and logs to the same MLflow run."""
    try:
        return _fit(cfg, data, run, progress)
    except BaseException:
        run.finish("FAILED")
        raise


def _fit(cfg, data, run, progress: bool) -> FitResult:
    device = pick_device(cfg.device)
    if cfg.local:
        _require_landmarks(data)
    # the FID backbone first: a missing weights file stops the run before any training, and
    # building it (it draws random numbers) before seeding keeps training independent of it
    backbone = load_backbone(cfg.fid_backbone, cfg.fid_dims, device)
    seed_everything(cfg.seed)
    model = Pix2Pix(cfg, device)
    checkpoints = Checkpoints(checkpoint_dir(run.run_id))
    start_epoch, step, history = 0, 0, []
    state = checkpoints.load()
    if state is not None:
        changed = {k for k, v in state["config"].items() if k not in HARDWARE_PARAMS and cfg.to_dict().get(k) != v}
        if changed:
            raise RuntimeError(f"{checkpoints.path} was written with other settings ({', '.join(sorted(changed))}); "
                               "start a fresh run instead of resuming this one")
        model.load_state_dict(state["model"])
        start_epoch, step = state["epoch"], state["step"]
        history = [Evaluation(**e) for e in state["history"]]
        set_rng_state(state["rng"])
        print(f"resuming run {run.run_id} after epoch {start_epoch} (step {step})")

    test = stack_items(data.test.items)
    evaluator = FidEvaluator(test["sketch"], backbone, data.fingerprint, subsets=[p.subset for p in data.test.pairs],
                             batch_size=cfg.fid_batch_size)
    run.set_tags({**evaluator.provenance(), "labkit.device": device_description(device),
                  "labkit.data.fingerprint": data.fingerprint, "labkit.data.root": str(data.root),
                  "labkit.data.synthetic": data.synthetic,
                  "labkit.data.n_train": len(data.train), "labkit.data.n_test": len(data.test)})
    if not backbone.is_real:
        print("!" * 78 + "\n!! FID backbone: random-init (smoke run). These FIDs are NOT comparable with real ones.\n"
              + "!" * 78)
    fixed = fixed_samples(data.test, cfg.grid_samples)
    result = FitResult(model=model, history=history, checkpoint=checkpoints.path, backbone=backbone.name,
                       resumed_from=start_epoch, samples=fixed)

    for epoch in range(start_epoch, cfg.total_epochs):
        data.train.set_epoch(epoch)
        loader = DataLoader(data.train, batch_size=cfg.batch_size, shuffle=True, num_workers=cfg.num_workers,
                            generator=torch.Generator().manual_seed(cfg.seed * 100_003 + epoch),
                            pin_memory=device.type == "cuda")
        running: dict[str, list[float]] = {}
        started = time.time()
        bar = tqdm(loader, desc=f"epoch {epoch + 1}/{cfg.total_epochs}", disable=not progress, leave=False)
        for batch in bar:
            try:
                losses = model.train_step(batch)
            except NonFiniteLoss as exc:
                raise NonFiniteLoss(f"{exc} at epoch {epoch + 1}, step {step + 1}. The checkpoint of epoch "
                                    f"{epoch} is kept at {checkpoints.path}; lower lr or check the data") from None
            step += 1
            for k, v in losses.items():
                running.setdefault(k, []).append(v)
            if step % cfg.log_every == 0:
                run.log_metrics({k: float(np.mean(v)) for k, v in running.items()}, step=step)
                bar.set_postfix(G=f"{np.mean(running['loss_G']):.3f}", D=f"{np.mean(running['loss_D']):.3f}")
                running = {}
        run.log_metrics({"lr": model.lr, "epoch_seconds": time.time() - started}, step=epoch + 1)
        model.end_epoch()

        if (epoch + 1) % cfg.eval_every == 0 or epoch + 1 == cfg.total_epochs:
            fakes = model.generate(test["photo"], test["landmarks"], test["mask"], cfg.fid_batch_size)
            scores = evaluator.evaluate(fakes)
            history.append(Evaluation(epoch=epoch + 1, **scores))
            run.log_metrics({"fid": scores["fid"], "kid": scores["kid"],
                             **{f"{m}/{name}": v[m] for name, v in scores["per_subset"].items() for m in ("fid", "kid")}},
                            step=epoch + 1)
            run.log_metrics(summary_metrics(history))
            shown = fakes[fixed["index"]]
            result.last_grid = viz.sample_grid([fixed["photo"], fixed["sketch"], shown])
            result.last_heatmap = viz.error_heatmap(shown, fixed["sketch"], fixed["names"])
            run.log_image(result.last_grid, "samples", step=epoch + 1)
            run.log_image(result.last_heatmap, "error_heatmap", step=epoch + 1)
            per_subset = "".join(f"  {name} {v['fid']:.2f} (N {v['n']})" for name, v in scores["per_subset"].items())
            print(f"epoch {epoch + 1}: FID {scores['fid']:.2f}  KID {scores['kid']:.4f}  "
                  f"(N real {scores['n_real']}, N fake {scores['n_fake']}, {backbone.name}){per_subset}")
        checkpoints.save({"model": model.state_dict(), "epoch": epoch + 1, "step": step,
                          "history": [e.__dict__ for e in history], "config": cfg.to_dict()})
    if result.last_grid is None:  # resumed a finished run: show its final model anyway
        shown = model.generate(fixed["photo"], fixed["landmarks"], fixed["mask"], cfg.fid_batch_size)
        result.last_grid = viz.sample_grid([fixed["photo"], fixed["sketch"], shown])
        result.last_heatmap = viz.error_heatmap(shown, fixed["sketch"], fixed["names"])
    return result
