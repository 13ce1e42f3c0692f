"""Training a decoder to invert VGG features: pixel + perceptual feature loss, optional TV and
AdaIN losses, optionally on swapped features; checkpointed and resumable like every run."""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from .. import keys, viz
from ..speed import Speed
from ..train.checkpoint import Checkpoints
from ..train.runner import Runner
from ..train.window import LossWindow
from .decoder import Decoder
from .images import Pictures, random_crops
from .losses import adain_loss, tv
from .swap import swap
from .vgg import STYLE_LAYERS, VGGEncoder, encoder_tags


@dataclass
class DecoderResult:
    decoder: Decoder
    steps_done: int
    resumed_from: int
    reconstructions: np.ndarray  # input | reconstruction, a few crops


def _swap_batch(feats: torch.Tensor, style_feats: torch.Tensor, cfg) -> torch.Tensor:
    return torch.cat(
        [
            swap(feats[i : i + 1], style_feats[i : i + 1], cfg.patch_size, chunk=cfg.chunk).features
            for i in range(len(feats))
        ]
    )


def _losses(cfg, encoder, decoder, batch, style_batch, layers) -> dict[str, torch.Tensor]:
    """The weighted loss terms of one step: the decoder's output against the batch it encodes
    and, with train_with_swap, as Chen & Schmidt train theirs, also the batch's features
    style-swapped with the style crops decoded against themselves (no pixels to compare there)."""
    with torch.no_grad():
        feats = encoder.encode(batch, layers)
        target = dict(feats)
        if style_batch is not None:
            style_feats = encoder.encode(style_batch, layers)
            for name in decoder.inputs:
                target[name] = torch.cat([feats[name], _swap_batch(feats[name], style_feats[name], cfg)])
    out = decoder(target)
    out_feats = encoder.encode(out, layers)
    pixel = F.l1_loss if cfg.pixel_loss == "l1" else F.mse_loss
    terms = {
        "pixel": cfg.lambda_pixel * pixel(out[: len(batch)], batch),
        "feature": cfg.lambda_feature * sum(F.mse_loss(out_feats[n], target[n]) for n in decoder.inputs),
    }
    if cfg.lambda_tv > 0:
        terms["tv"] = cfg.lambda_tv * tv(out)
    if cfg.lambda_adain > 0:  # the swapped half's statistics against the style's, else the batch's against its own
        swapped, reference = (slice(len(batch), None), style_feats) if style_batch is not None else (slice(None), feats)
        terms["adain"] = cfg.lambda_adain * adain_loss(
            {n: out_feats[n][swapped] for n in STYLE_LAYERS}, {n: reference[n] for n in STYLE_LAYERS}
        )
    return terms


def _resume(state: dict | None, decoder, optimizer, scaler, run) -> int:
    """The step a decoder's training goes on from: its checkpoint's (loaded into it), else 0."""
    if state is None:
        return 0
    decoder.load_state_dict(state["decoder"])
    optimizer.load_state_dict(state["optimizer"])
    if state.get("scaler"):  # fp16's loss scale (empty, or absent in older checkpoints, without fp16)
        scaler.load_state_dict(state["scaler"])
    print(f"resuming decoder training of run {run.run_id} at step {state['step']}")
    return state["step"]


def _runner(cfg, run, decoder, optimizer, scaler, checkpoints: Checkpoints) -> Runner:
    """The loss window, logging, beats, finite check and checkpoint cadence of a decoder's training:
    a checkpoint every cfg.checkpoint_every steps and at the end holds decoder, optimiser, step
    and config."""

    def save(step: int) -> None:
        state = {
            "decoder": decoder.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scaler": scaler.state_dict(),
            "step": step,
        }
        checkpoints.save({**state, "config": cfg.to_dict()})

    return Runner(
        run=run,
        window=LossWindow(next(decoder.parameters()).device),
        log_every=cfg.log_every,
        save=save,
        checkpoint_due=lambda step: step % cfg.checkpoint_every == 0 or step == cfg.steps,
        where=lambda step: f"of the decoder at step {step}",
        checkpoints=checkpoints,
        advice="lower lr",
    )


def train_decoder(cfg, encoder: VGGEncoder, content: list, style: list, run, progress: bool = True) -> DecoderResult:
    """Train (or continue training) the run's decoder for cfg.steps steps on random crops of the
    content and style images."""
    device = next(encoder.parameters()).device
    run.set_tags(encoder_tags(encoder))
    run.progress["steps"] = cfg.steps
    run.beat(0, "start", force=True)
    torch.manual_seed(cfg.seed)
    decoder = Decoder(cfg.decoder_kind).to(device)
    # eager: a decoder trains for minutes, less than compiling it (and the encoder feeding it) takes
    speed = replace(Speed.of(cfg, device), compile=False)
    speed.prepare(decoder)
    optimizer, scaler = speed.adam(decoder.parameters(), cfg.lr, (0.9, 0.999)), speed.scaler()
    print(f"decoder training on {device}: {speed.describe()}")
    run.set_tags({keys.SPEED: speed.describe()})
    checkpoints = Checkpoints(run.run_id, "decoder")
    start = _resume(checkpoints.resume(cfg), decoder, optimizer, scaler, run)
    layers = tuple(sorted(set(STYLE_LAYERS) | set(decoder.inputs), key=STYLE_LAYERS.index))
    # few pictures on the device once, each step's crops cut there; a folder of thousands read as used
    images, style_images = Pictures([content, style], device), Pictures([style], device)
    if start == 0:  # the untrained decoder's pictures: the UI's image slider starts on a picture
        _reconstructions(cfg, encoder, decoder, images, run, 0)
    runner = _runner(cfg, run, decoder, optimizer, scaler, checkpoints)
    started = time.time()
    bar = tqdm(
        range(start, cfg.steps),
        desc=f"decoder {cfg.decoder_kind}",
        disable=not progress,
        initial=start,
        total=cfg.steps,
    )
    for step in bar:
        generator = torch.Generator().manual_seed(cfg.seed * 1_000_003 + step)  # same batches after a resume
        batch = speed.images(random_crops(images, cfg.batch_size, cfg.image_size, generator))
        style_batch = (
            speed.images(random_crops(style_images, cfg.batch_size, cfg.image_size, generator))
            if cfg.train_with_swap
            else None
        )
        with speed.autocast():
            terms = _losses(cfg, encoder, decoder, batch, style_batch, layers)
            loss = sum(terms.values())
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()  # fp16's gradients scaled out of underflow; a no-op otherwise
        scaler.step(optimizer)
        scaler.update()
        losses = {"loss": loss, **{f"loss_{k}": v for k, v in terms.items()}}
        means = runner.step_done(losses, step + 1, log=step + 1 == cfg.steps)
        if means:
            bar.set_postfix(loss=f"{means['loss']:.3f}")
    run.log_metrics({keys.DECODER_SECONDS: time.time() - started})
    run.beat(cfg.steps, "views", force=True)
    return DecoderResult(decoder, cfg.steps, start, _reconstructions(cfg, encoder, decoder, images, run, cfg.steps))


def _reconstructions(cfg, encoder, decoder, images: Pictures, run, step: int) -> np.ndarray:
    """input | reconstruction for a few fixed crops, logged at this step (and as the run's newest grid)."""
    device = next(encoder.parameters()).device
    was_training = decoder.training
    decoder.eval()
    with torch.no_grad():
        shown = random_crops(images, 4, cfg.image_size, torch.Generator().manual_seed(cfg.seed)).to(device)
        rebuilt = decoder(encoder.encode(shown, decoder.inputs)).clamp(0, 1)
    decoder.train(was_training)
    grid = viz.sample_grid([shown.cpu() * 2 - 1, rebuilt.cpu() * 2 - 1])
    run.log_image(grid, keys.RECONSTRUCTIONS, step=step)
    run.log_image_file(grid, keys.LAST_SAMPLES)
    return grid


def trained_decoder(cfg, run_id: str, device: torch.device) -> Decoder:
    """The decoder trained by run `run_id`, from its checkpoint, checked against this config's
    encoder (decoder kind, input convention, channel order)."""
    state = Checkpoints(run_id, "decoder").load()
    if state is None:
        raise FileNotFoundError(
            f"run {run_id} has no decoder checkpoint: is it a decoder_train run, and did it get "
            "past its first checkpoint?"
        )
    for key in ("decoder_kind", "vgg_convention", "channel_order"):
        if state["config"][key] != getattr(cfg, key):
            raise ValueError(
                f"the decoder of run {run_id} was trained with {key}={state['config'][key]!r}, this run "
                f"has {getattr(cfg, key)!r}: they must match"
            )
    decoder = Decoder(cfg.decoder_kind)
    decoder.load_state_dict(state["decoder"])
    return decoder.to(device).eval()
