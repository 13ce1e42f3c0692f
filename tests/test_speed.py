"""The fast path against the reference path: the same training within stated tolerances, the
compile path and its fallback, on the CPU with tiny networks; the CUDA path where there is CUDA."""

import numpy as np
import pytest
import torch

from labkit import speed as speed_module
from labkit import track
from labkit.data import load_faces
from labkit.train import fit
from labkit.train.pix2pix import Pix2Pix

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
# The fast path as the lab takes it on this CPU (precision: auto): bf16 autocast where the CPU
# computes bf16 natively, fp32 where bf16 would only be emulated (and slow, and further from fp32).
# The test ids name it, so a report says which path was checked.
CPU_FAST_PATH = "bf16" if speed_module.native_bf16(torch.device("cpu")) else "fp32"


def _losses(cfg, steps: int = 100) -> np.ndarray:
    """(steps, 3) L1, G's GAN term and D's loss of `steps` steps on the same batches."""
    data = load_faces(cfg, progress=False)
    torch.manual_seed(cfg.seed)
    model = Pix2Pix(cfg, torch.device(cfg.device))
    out = []
    for step in range(steps):
        epoch, b = divmod(step, len(data.train) // cfg.batch_size)
        data.train.set_epoch(epoch)
        order = torch.randperm(len(data.train), generator=torch.Generator().manual_seed(epoch)).tolist()
        losses = model.train_step(
            data.train.batch(order[b * cfg.batch_size : (b + 1) * cfg.batch_size], torch.device(cfg.device))
        )
        out.append(torch.stack([losses["loss_G_L1"], losses["loss_G_GAN"], losses["loss_D"]]))
    return torch.stack(out).float().cpu().numpy()


def _window_gap(a: np.ndarray, b: np.ndarray, window: int = 25) -> np.ndarray:
    """Per loss, the largest gap between the means of `window`-step windows, relative to the loss's mean."""
    ma, mb = a.reshape(-1, window, a.shape[1]).mean(1), b.reshape(-1, window, b.shape[1]).mean(1)
    return np.abs(mb - ma).max(0) / np.abs(ma).mean(0)


def test_the_paths_this_machine_takes(tiny_cfg):
    fast, reference = Pix2Pix(tiny_cfg(), torch.device("cpu")), Pix2Pix(tiny_cfg(fast=False), torch.device("cpu"))
    expected = "bf16 autocast" if speed_module.native_bf16(torch.device("cpu")) else "fp32"
    assert fast.speed.describe() == f"{expected}, fused Adam, eager"
    assert reference.speed.describe() == "fp32, plain Adam, eager"
    assert fast.opt_G.defaults["fused"] and not reference.opt_G.defaults["foreach"]


def test_compile_auto_compiles_only_what_has_been_shown_to_gain(tiny_cfg):
    """On CUDA, auto compiles one process's baseline networks; not +local's fifteen networks
    (minutes of recompiling before a short run trains) nor a run on several processes (DDP with
    SyncBatchNorm has never run compiled); `on` compiles them all the same."""
    cuda = torch.device("cuda")  # only described here: nothing is put on it
    compiled = lambda **kw: speed_module.Speed.of(tiny_cfg(device="auto", precision="fp32", **kw), cuda).compile  # noqa: E731
    assert compiled() and not compiled(local=True) and not compiled(nproc=2, batch_size=4)
    assert compiled(local=True, compile="on") and not compiled(fast=False)


@pytest.mark.slow
@pytest.mark.parametrize("path", [CPU_FAST_PATH])
def test_the_fast_path_follows_fp32_over_100_steps(lab, tiny_cfg, path):
    """Stated tolerance, per 25-step window of the same batches over 100 steps: L1, G's GAN term
    and D's loss each within 2 % of fp32's, and under the gap between two fp32 seeds. Measured
    with native bf16: at most 0.5 % (1 or 2 threads); seeds apart: 9.5 %, 5-13 %, 11-65 %.
    Not further: past ~100 steps the GAN's dynamics amplify any last-bit difference, and even fp32
    with fused Adam against fp32 with plain Adam (the same update rule) drifts 2-20 % on G's GAN
    term and 5-85 % on D's loss by step 200, as far as bf16 does."""
    fp32 = _losses(tiny_cfg(fast=False))
    fast_cfg = tiny_cfg(fast=True)
    assert (
        Pix2Pix(fast_cfg, torch.device("cpu"))
        .speed.describe()
        .startswith({"bf16": "bf16 autocast", "fp32": "fp32"}[path])
    )
    fast = _losses(fast_cfg)
    other_seed = _losses(tiny_cfg(fast=False, seed=1))
    gap, seeds = _window_gap(fp32, fast), _window_gap(fp32, other_seed)
    assert (gap <= 0.02).all(), gap
    assert (gap < seeds).all(), (gap, seeds)


@pytest.mark.slow
@pytest.mark.parametrize("path", [CPU_FAST_PATH])
def test_the_fid_of_a_short_fast_training_lies_within_the_fp32_seed_spread(lab, tiny_cfg, path):
    def fid(**kw):
        cfg = tiny_cfg(n_epochs=2, n_epochs_decay=1, eval_every=3, **kw)
        return fit(cfg, load_faces(cfg, progress=False), track.open_run(cfg), progress=False).history[-1].fid

    seeds = [fid(fast=False, seed=s) for s in range(3)]
    fast = fid(fast=True)  # the lab's own choice on this CPU: `path`
    spread = max(seeds) - min(seeds)
    assert min(seeds) - spread / 2 <= fast <= max(seeds) + spread / 2, (fast, seeds)


@pytest.mark.slow
def test_the_compile_path_matches_eager(lab, tiny_cfg):
    """torch.compile of the networks (CUDA's default) runs on the CPU too: the same losses."""
    cfg = tiny_cfg(fast=False, image_size=32, ngf=4, ndf=4)
    eager = _losses(cfg, steps=2)
    compiled = _losses(tiny_cfg(fast=False, image_size=32, ngf=4, ndf=4, compile="on"), steps=2)
    assert np.allclose(eager, compiled, rtol=1e-3, atol=1e-4), (eager, compiled)


def _failing_compiler(monkeypatch) -> None:
    """torch.compile as on a machine whose compiler cannot build (no C++ compiler, no Triton)."""

    def failing_backend(graph, example_inputs):
        raise RuntimeError("no compiler for this machine")

    compile_in_place = torch.nn.Module.compile
    monkeypatch.setattr(torch.nn.Module, "compile", lambda self: compile_in_place(self, backend=failing_backend))


def test_a_compile_that_fails_falls_back_to_eager_with_one_warning(lab, tiny_cfg, monkeypatch):
    _failing_compiler(monkeypatch)
    cfg = tiny_cfg(compile="on", fast=False)
    with pytest.warns(UserWarning, match="torch.compile failed .*no compiler for this machine.*run eagerly") as seen:
        losses = _losses(cfg, steps=3)
    assert len([w for w in seen if "torch.compile failed" in str(w.message)]) == 1
    assert np.allclose(losses, _losses(tiny_cfg(fast=False), steps=3))


def test_a_compile_that_fails_first_when_generating_falls_back_too(lab, tiny_cfg, monkeypatch):
    """The step-0 pictures and FID generation call the compiled generator before any training
    step: a compiler that fails there falls back as a training step's does, with the same output
    as an eager generator; a whole run goes through with one warning."""
    cfg = tiny_cfg(fast=False)
    photos = load_faces(cfg, progress=False).test.faces(torch.device("cpu"))["photo"][:5]
    torch.manual_seed(0)
    eager = Pix2Pix(cfg, torch.device("cpu")).generate(photos, batch_size=2)
    _failing_compiler(monkeypatch)
    torch.manual_seed(0)
    model = Pix2Pix(tiny_cfg(fast=False, compile="on"), torch.device("cpu"))
    with pytest.warns(UserWarning, match="torch.compile failed .*no compiler for this machine") as seen:
        assert torch.equal(model.generate(photos, batch_size=2), eager)
        assert torch.equal(model.generate(photos, batch_size=2), eager)
    assert len([w for w in seen if "torch.compile failed" in str(w.message)]) == 1
    cfg = tiny_cfg(fast=False, compile="on")
    with pytest.warns(UserWarning, match="torch.compile failed") as seen:
        result = fit(cfg, load_faces(cfg, progress=False), track.open_run(cfg), progress=False)
    assert np.isfinite(result.history[-1].fid) and "eager" in result.model.speed.describe()
    assert len([w for w in seen if "torch.compile failed" in str(w.message)]) == 1


@cuda
def test_the_cuda_fast_path_follows_fp32(lab, tiny_cfg):
    fp32 = _losses(tiny_cfg(device="cuda", fast=False))
    fast = _losses(tiny_cfg(device="cuda"))
    assert (_window_gap(fp32, fast) <= 0.02).all()


@cuda
def test_a_cuda_run_trains_on_the_fast_path(lab, tiny_cfg):
    cfg = tiny_cfg(device="cuda")
    result = fit(cfg, load_faces(cfg, progress=False), track.open_run(cfg), progress=False)
    assert "fused Adam" in result.model.speed.describe() and "channels_last" in result.model.speed.describe()
    assert np.isfinite(result.history[-1].fid)


class _ListsToTensors(torch.overrides.TorchFunctionMode):
    """Counts tensors made from Python lists or tuples: on a GPU each is a copy the host waits for."""

    def __init__(self):
        super().__init__()
        self.made = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in (torch.tensor, torch.as_tensor) and args and isinstance(args[0], (list, tuple)):
            self.made.append(len(args[0]))
        return func(*args, **kwargs)


@pytest.mark.parametrize("local", [False, True])
def test_a_training_step_turns_no_python_list_into_a_device_tensor(lab, tiny_cfg, local):
    """A step's batch is one small host tensor (which faces, their jitters) copied to the device
    once, from pinned memory without waiting; nothing else in the step is made from Python values."""
    cfg = tiny_cfg(fast=False, local=local, image_size=64)
    data = load_faces(cfg, progress=False)
    model = Pix2Pix(cfg, torch.device("cpu"))
    model.train_step(data.train.batch([0, 1, 2, 3], torch.device("cpu")))  # the first step's one-off set-up
    with _ListsToTensors() as seen:
        model.train_step(data.train.batch([4, 5, 6, 7], torch.device("cpu")))
    assert seen.made == [4], seen.made  # the batch's plan: 4 faces


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is here: the script runs its checks")
def test_the_gpu_check_refuses_at_once_where_no_gpu_is_visible():
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    done = subprocess.run(
        ["bash", str(root / "benchmarks" / "gpu_check.sh")],
        env={"PYTHON": sys.executable, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2 and "no GPU is visible here" in done.stderr and done.stdout == ""
