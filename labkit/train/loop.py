"""Training a face run: small steps (prepare, resume, one epoch, evaluate, save) joined by `fit`.

The training faces live on the device as uint8 and each batch is jittered there (labkit.data);
the losses are read, checked and logged by the runner every training loop shares
(labkit.train.runner). At each read the weights and BatchNorm statistics are checked too, and a
generator loss far beyond its first logged value counts as divergence: either fails the run
with the step and a hint. A run is scored by the evaluators (labkit.evaluators). Checkpoints
are written every `checkpoint_every` steps (or every `checkpoint_minutes`), after each
evaluation and at the end; each holds the position in the epoch's order, so a resume continues
with the very next batch. (Not at every epoch's end:
a CUFS epoch is seconds on a GPU, and the model with its optimiser states is 700 MB.)

With nproc > 1 the kernel hands the training to nproc processes (labkit.train.distributed) and
then loads what they trained; in those processes the same steps run with their World: every
rank trains its share of each step, rank 0 alone logs, beats, evaluates and writes checkpoints.
"""

from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass, field

import numpy as np
import torch
from tqdm.auto import tqdm

from .. import keys, viz
from ..data import DataError
from ..evaluators import Evaluator, Generated, Setting, build_all, measured_boxes
from ..evaluators.fid import with_interval
from ..metrics import load_backbone
from ..models.local import known_foreground
from ..provenance import device_description
from .checkpoint import Checkpoints, rng_state, set_rng_state
from .distributed import World, launch, rank_seed
from .init_from import start_from
from .panel import Panel, watched
from .pix2pix import Pix2Pix
from .runner import Diverged, Runner
from .window import LossWindow

NAN = float("nan")


@dataclass
class Evaluation:
    """One evaluation's results: what the evaluators returned, by the metrics' recorded names."""

    epoch: int
    metrics: dict = field(default_factory=dict)

    @property
    def fid(self) -> float:
        return self.metrics.get(keys.FID, NAN)

    @property
    def kid(self) -> float:
        return self.metrics.get(keys.KID, NAN)

    @property
    def fid_ci(self) -> list[float]:  # 95% jackknife interval over the test faces
        return [self.metrics.get(keys.ci(keys.FID, side), NAN) for side in ("low", "high")]

    @property
    def fid_val(self) -> float:  # on the validation faces (val_fraction > 0): what picks the best epoch
        return self.metrics.get(keys.FID_VAL, NAN)

    @property
    def fid_aligned(self) -> float:  # +align: against the warped test sketches
        return self.metrics.get(keys.FID_ALIGNED, NAN)

    @classmethod
    def from_state(cls, state: dict) -> Evaluation:
        """From a checkpoint's history, also one written before evaluations were the evaluators'
        results (named fields: fid, kid, their intervals, per_subset, fid_val, fid_aligned)."""
        if "metrics" in state:
            return cls(**state)
        metrics = {keys.FID_N_FAKE: state["n_fake"], keys.FID_VAL: state["fid_val"]}
        metrics[keys.FID_ALIGNED] = state["fid_aligned"]
        for metric in (keys.FID, keys.KID):
            metrics.update(with_interval(metric, state[metric], state.get(f"{metric}_ci")))
            for subset, sub in state["per_subset"].items():
                metrics.update(with_interval(metric, sub[metric], sub.get(f"{metric}_ci"), subset))
        return cls(state["epoch"], {k: v for k, v in metrics.items() if not np.isnan(v)})


def best_of(history: list[Evaluation]) -> Evaluation:
    """The best evaluation: the lowest validation FID when there are validation faces, else the
    lowest test FID (a choice made on the test set, so its test FID is optimistic)."""
    on_val = not np.isnan(history[0].fid_val)
    return min(history, key=lambda e: e.fid_val if on_val else e.fid)


def summary_metrics(history: list[Evaluation]) -> dict[str, float]:
    """What the runs table compares: the table shows only a metric's last value."""
    best = best_of(history)
    out = {
        keys.FID_BEST: best.fid,
        keys.FID_BEST_EPOCH: best.epoch,
        keys.FID_MEAN: float(np.mean([e.fid for e in history])),
        keys.FID_LAST: history[-1].fid,
        keys.KID_LAST: history[-1].kid,
    }
    if not np.isnan(best.fid_val):
        out[keys.FID_VAL_BEST] = best.fid_val
    return out


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
    return {**stack_items([test.item(i) for i in index]), "index": torch.as_tensor(index)}


def steps_per_epoch(n: int, cfg) -> int:
    """Steps over n training faces: batch_size a step, each of nproc processes taking its share
    of the faces (padded to a multiple of nproc, World.shard)."""
    return math.ceil(math.ceil(n / cfg.nproc) / (cfg.batch_size // cfg.nproc))


def epoch_order(n: int, seed: int, epoch: int) -> list[int]:
    """The order the training faces are visited in an epoch: fixed by (seed, epoch), so a resume
    mid-epoch picks up at the same place of the same order."""
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed * 100_003 + epoch)).tolist()


@dataclass
class Training:
    """A face run in progress, and its result: what a checkpoint holds and what the views need."""

    cfg: object
    data: object
    run: object  # every rank holds it; rank 0 alone writes to it
    device: torch.device
    model: Pix2Pix
    evaluators: list[Evaluator]  # rank 0's alone (labkit.evaluators)
    checkpoints: Checkpoints
    samples: dict  # fixed test faces for the grids
    world: World = field(default_factory=World)
    fid_backbone: object = None  # rank 0's: the evaluators share its features
    epoch: int = 0  # epochs completed
    batch: int = 0  # batches of the current epoch completed
    step: int = 0
    history: list[Evaluation] = field(default_factory=list)
    resumed_from: int = 0
    reference_loss: float = 0.0  # the first logged generator loss (divergence check)
    window: LossWindow | None = None  # losses summed on the device since the last log
    last_grid: np.ndarray | None = None
    last_heatmap: np.ndarray | None = None
    saved_at: float = field(default_factory=time.monotonic)  # of the last checkpoint
    panel: Panel | None = None  # the live view under the cell, where a person watches in JupyterLab

    @property
    def backbone(self) -> str:
        """The FID backbone's name ('' on the ranks that do not evaluate)."""
        return self.fid_backbone.name if self.fid_backbone is not None else ""

    @property
    def checkpoint(self):
        return self.checkpoints.path

    @property
    def best(self) -> Evaluation:
        return best_of(self.history)

    def fid_mean(self) -> float:
        return float(np.mean([e.fid for e in self.history]))

    def sample_outputs(self, pieces: bool = False):
        """The model's output on the fixed test faces (every piece of it with pieces)."""
        s = self.samples
        return self.model.generate(s["photo"], s["landmarks"], s["mask"], pieces=pieces)

    def log_view(self, image: np.ndarray, key: str, title: str = "", width: float = 12.0) -> None:
        """Log a picture of the final model to the run (at the last epoch) and display it."""
        self.run.log_image(image, key, step=self.epoch)
        viz.show(image, title or key, width)

    def state(self) -> dict:
        return {
            "model": self.model.state_dict(),
            "epoch": self.epoch,
            "batch": self.batch,
            "step": self.step,
            "history": [e.__dict__ for e in self.history],
            "reference_loss": self.reference_loss,
            **self.window.state(),
            "config": self.cfg.to_dict(),
        }


def _require_landmarks(data) -> None:
    missing = [p.name for ds in (data.train, data.test) for p in ds.pairs if p.landmarks is None]
    if missing:
        raise DataError(
            f"{data.root}: the local networks need landmarks for every face; {len(missing)} have none "
            f"({', '.join(missing[:10])}{' ...' if len(missing) > 10 else ''}). Run `labkit landmarks "
            f"{data.root}` or add their points to landmarks_manual.csv."
        )


def _local_foreground(data) -> str:
    """Where +local's hair and background regions come from: the parsing maps, or for faces
    without one the rule of labkit.models.local (the whole face is foreground)."""
    masks = [ds.bank["mask"] for ds in (data.train, data.test) if len(ds)]
    total = sum(len(m) for m in masks)
    labelled = sum(int(known_foreground(m).sum()) for m in masks)
    if labelled == total:
        return f"parsing maps ({total} faces)"
    return (
        f"{total - labelled} of {total} faces have no parsing map: each counts wholly as foreground "
        f"(hair = everything outside the part boxes, no background region)"
    )


def prepare(cfg, data, run, world: World = World(), record: bool = True) -> Training:
    """Device, FID backbone and evaluator, seeded model, and (with record) the run's data tags:
    the evaluators and the tags on rank 0 alone."""
    device = world.device(cfg.device)
    if cfg.local:
        _require_landmarks(data)
    if world.leads:
        run.beat(0, "start", force=True)
    # the FID backbone first: a missing weights file stops the run before any training, and
    # building it (it draws random numbers) before seeding keeps training independent of it
    backbone = load_backbone(cfg.fid_backbone, cfg.fid_dims, device) if world.leads else None
    seed_everything(cfg.seed)
    model = Pix2Pix(cfg, device, world)
    t = Training(
        cfg=cfg,
        data=data,
        run=run,
        device=device,
        model=model,
        evaluators=[],
        checkpoints=Checkpoints(run.run_id),
        samples={},
        window=LossWindow(device),
        world=world,
    )
    if not world.leads:
        torch.manual_seed(rank_seed(cfg.seed, world.rank))  # dropout masks of its own
        return t
    t.evaluators = build_all(Setting(cfg, data, backbone, device))
    t.fid_backbone, t.samples = backbone, fixed_samples(data.test, cfg.grid_samples)
    if record:
        _record_setup(t)
    return t


def _record_setup(t: Training) -> None:
    """What the run records of its setting: what its metrics mean, device and speed, the data."""
    cfg, data, run, world = t.cfg, t.data, t.run, t.world
    for evaluator in t.evaluators:
        evaluator.setup(run)
    selected_on = f"validation ({len(data.val)} faces)" if data.val is not None else "test (optimistic)"
    run.set_tags(
        {
            keys.FID_BEST_SELECTED_ON: selected_on,
            keys.DEVICE: device_description(t.device) + (f" x {world.size} processes" if world.size > 1 else ""),
            keys.SPEED: t.model.speed.describe(),
            keys.DATA_FINGERPRINT: data.fingerprint,
            keys.DATA_ROOT: str(data.root),
            keys.DATA_SYNTHETIC: data.synthetic,
            keys.DATA_N_TRAIN: len(data.train),
            keys.DATA_N_TEST: len(data.test),
        }
    )
    if cfg.local:
        foreground = _local_foreground(data)
        run.set_tags({keys.LOCAL_FOREGROUND: foreground})
        print(f"+local hair and background regions: {foreground}")
    run.log_dataset(data.root.name, data.fingerprint, str(data.root))
    where = f"{world.size} processes on {t.device.type}" if world.size > 1 else device_description(t.device)
    print(f"training on {data.summary()}\non {where}: {t.model.speed.describe()}")


def resume(t: Training, say: bool = True) -> None:
    """Continue from the run's newest readable checkpoint, when it has one of the same parameters;
    a run without one starts from init_from's weights, when it names some."""
    state = t.checkpoints.resume(t.cfg)
    if state is None:
        if t.cfg.init_from:
            started_from = start_from(t.model, t.cfg.init_from, t.run.client)
            if t.world.leads:
                t.run.set_tags({keys.INIT_FROM: started_from})
                print(f"starting from {started_from}")
        return
    t.model.load_state_dict(state["model"])
    t.epoch, t.batch, t.step = state["epoch"], state["batch"], state["step"]
    t.history = [Evaluation.from_state(e) for e in state["history"]]
    t.reference_loss = state["reference_loss"]
    t.window = LossWindow(t.device, state["sums"], state["window"])
    ranks = state.get("rng_ranks", [])
    if len(ranks) == t.world.size > 1:  # every rank's own stream, where it stood
        set_rng_state(ranks[t.world.rank])
    elif t.world.leads:
        set_rng_state(state["rng"])
    else:  # written by another number of processes: a stream of its own from here
        torch.manual_seed(rank_seed(t.cfg.seed, t.world.rank) + t.step)
    t.resumed_from = t.epoch
    if say and t.world.leads:
        print(f"resuming run {t.run.run_id} at epoch {t.epoch + 1}, batch {t.batch} (step {t.step})")


def _check_model(t: Training, means: dict[str, float], where: str) -> None:
    """At each read of the losses: the weights and BatchNorm statistics finite, and the generator
    loss within diverge_factor of its first logged value; raises Diverged saying where."""
    finite = torch.stack([torch.isfinite(x).all() for x in t.model.tensors()]).all()
    if not bool(finite):
        raise Diverged(f"non-finite weights or BatchNorm statistics {where}")
    if not t.reference_loss:
        t.reference_loss = means["loss_G"]
    elif t.cfg.diverge_factor and means["loss_G"] > t.cfg.diverge_factor * t.reference_loss:
        raise Diverged(
            f"the generator loss diverged: {means['loss_G']:.4g}, {means['loss_G'] / t.reference_loss:.0f}"
            f" x its first logged value {t.reference_loss:.4g}, {where}"
        )


def _runner(t: Training) -> Runner:
    """The loss window, logging, beats, checks and checkpoint cadence of the face training."""
    return Runner(
        run=t.run,
        window=t.window,
        log_every=t.cfg.log_every,
        save=lambda step: save(t),
        checkpoint_due=lambda step: checkpoint_due(t),
        where=lambda step: f"at epoch {t.epoch + 1}, step {step}",
        checkpoints=t.checkpoints,
        advice="lower lr or check the data",
        check=lambda means, where: _check_model(t, means, where),
        world=t.world,
    )


def train_epoch(t: Training, progress: bool = True) -> None:
    """The rest of the current epoch (all of it unless resumed mid-way), then the schedule's step.
    With several processes each trains its share (World.shard) of every step's faces."""
    cfg, data, leads = t.cfg, t.data.train, t.world.leads
    data.set_epoch(t.epoch)
    t.run.progress["epoch"] = t.epoch + 1
    mine, per = t.world.shard(epoch_order(len(data), cfg.seed, t.epoch)), cfg.batch_size // t.world.size
    batches = [mine[i : i + per] for i in range(t.batch * per, len(mine), per)]
    started = time.time()
    bar = tqdm(
        batches,
        desc=f"epoch {t.epoch + 1}/{cfg.total_epochs}",
        disable=not progress,
        leave=False,
        initial=t.batch,
        total=t.batch + len(batches),
    )
    runner = _runner(t)
    for indices in bar:
        losses = t.model.train_step(data.batch(indices, t.device))  # faces jittered on the device
        t.step, t.batch = t.step + 1, t.batch + 1
        means = runner.step_done(losses, t.step)
        if means:
            bar.set_postfix(G=f"{means['loss_G']:.3f}", D=f"{means['loss_D']:.3f}")
            if t.panel is not None:
                t.panel.step(t.step, means)
    if t.window.count:  # the epoch's last steps are checked even when they are not logged yet
        runner.read()
    if leads:
        t.run.log_metrics({keys.LR: t.model.lr, keys.EPOCH_SECONDS: time.time() - started}, step=t.epoch + 1)
    t.model.end_epoch()
    t.epoch, t.batch = t.epoch + 1, 0


def _generated(t: Training, split: str) -> Generated:
    """The model's sketches of a split's photos, on the device, as the run's FID measures them."""
    faces = {"test": t.data.test, "val": t.data.val}[split]
    f = faces.faces(t.device)
    images = t.model.generate(f["photo"], f["landmarks"], f["mask"], t.cfg.fid_batch_size, on_device=True)
    return Generated(images, t.fid_backbone, t.cfg.fid_batch_size, measured_boxes(t.cfg, faces))


def evaluate(t: Training) -> Evaluation:
    """The model scored by the run's evaluators (FID and KID on the test set with their
    intervals, per subset, on the validation faces, ...): logged at this epoch with the grids."""
    t.run.beat(t.step, "evaluate", force=True)
    splits = {"test"} | {split for e in t.evaluators for split in e.splits}
    generated = {split: _generated(t, split) for split in splits}
    e = Evaluation(epoch=t.epoch)
    lines = []
    for evaluator in t.evaluators:
        evaluator.reset()
        for split in evaluator.splits:
            evaluator.process(split, generated[split])
        results = evaluator.results()
        e.metrics.update(results)
        lines.append(evaluator.summary(results))
    t.history.append(e)
    t.run.progress[keys.FID] = e.metrics.get(keys.FID)
    t.run.log_metrics(e.metrics, step=t.epoch)
    t.run.log_metrics(summary_metrics(t.history))
    for evaluator in t.evaluators:
        evaluator.record(t.run, t.epoch)
    fakes = generated["test"].images
    _pictures(t, fakes[t.samples["index"].to(fakes.device)].cpu(), step=t.epoch)
    if t.panel is not None:
        t.panel.evaluation(t.epoch, e.metrics, t.last_grid)
    print(f"epoch {t.epoch}: " + "  ".join(lines))
    t.run.beat(t.step, "train", force=True)
    return e


def _pictures(t: Training, shown: torch.Tensor, step: int | None) -> None:
    """The sample grid and error heatmap of the fixed test faces; logged when step is given."""
    s = t.samples
    t.last_grid = viz.sample_grid([s["photo"], s["sketch"], shown])
    t.last_heatmap = viz.error_heatmap(shown, s["sketch"], s["names"])
    if step is not None:
        t.run.log_image(t.last_grid, keys.SAMPLES, step=step)
        t.run.log_image(t.last_heatmap, keys.ERROR_HEATMAP, step=step)
        t.run.log_image_file(t.last_grid, keys.LAST_SAMPLES)


def checkpoint_due(t: Training) -> bool:
    """Every checkpoint_every steps, else every checkpoint_minutes. Processes do not share a
    clock: they take rank 0's, asked at log steps only (one collective there, none per step)."""
    if t.cfg.checkpoint_every:
        return t.step % t.cfg.checkpoint_every == 0
    if t.world.size > 1 and t.step % t.cfg.log_every:
        return False
    return t.world.agree(time.monotonic() - t.saved_at > 60 * t.cfg.checkpoint_minutes, t.device)


def save(t: Training, best: bool = False) -> None:
    """The newest checkpoint, written by rank 0; with several processes it holds the mean of
    their loss windows and every rank's random state (each its own dropout stream)."""
    state = {}
    if t.world.size > 1:
        t.window.merge(t.world)
        state["rng_ranks"] = t.world.gather(rng_state())
    if t.world.leads:
        t.checkpoints.save({**t.state(), **state}, best=best)
    t.saved_at = time.monotonic()


def fit(cfg, data, run, progress: bool = True, world: World | None = None) -> Training:
    """Train (or continue training) the run's model, evaluating every cfg.eval_every epochs and
    at the end; checkpointed as the module's note says. With nproc > 1 (and no world: the
    notebook's kernel) the training runs in nproc processes first, and what they trained is
    loaded here as a finished run is."""
    launched = world is None and cfg.nproc > 1
    if launched:
        launch(cfg, run.run_id, cfg.total_epochs * steps_per_epoch(len(data.train), cfg), progress)
    world = world or World()
    run.progress.update(epochs=cfg.total_epochs, steps=cfg.total_epochs * steps_per_epoch(len(data.train), cfg))
    t = prepare(cfg, data, run, world, record=not launched)
    resume(t, say=not launched)
    if launched:
        print(
            f"trained by {cfg.nproc} processes to epoch {t.epoch}, step {t.step}: the views below are of its "
            "last checkpoint"
        )
    if world.leads and not launched and watched() and t.epoch < cfg.total_epochs:  # (a finished run trains no more)
        t.panel = Panel(f"{run.name} ({cfg.ablation})", [(e.epoch, e.metrics) for e in t.history])
    if t.step == 0 and world.leads:  # the untrained model's pictures: the UI's image slider starts on a picture
        _pictures(t, t.sample_outputs(), step=0)
    while t.epoch < cfg.total_epochs:
        train_epoch(t, progress)
        evaluated = t.epoch % cfg.eval_every == 0 or t.epoch == cfg.total_epochs
        improved = evaluated and world.leads and evaluate(t) is t.best
        if evaluated or (checkpoint_due(t) and not cfg.checkpoint_every):  # a step count saved within the epoch
            save(t, best=improved)
    if world.leads:
        if t.last_grid is None:  # resumed a finished run: show its final model anyway
            _pictures(t, t.sample_outputs(), step=None)
        run.beat(t.step, "views", force=True)  # training is over: the notebook's views get the slow allowance
    return t


def trained_model(cfg, run_id: str, device: str = "cpu") -> Pix2Pix | None:
    """The model a face run trained, from its newest readable checkpoint (None without one)."""
    state = Checkpoints(run_id).load()
    if state is None:
        return None
    model = Pix2Pix(cfg, torch.device(device))
    model.load_state_dict(state["model"])
    return model
