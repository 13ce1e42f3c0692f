"""Training a decoder to invert VGG features: pixel + perceptual feature loss, optional TV and
AdaIN losses, optionally on swapped features; checkpointed and resumable like every run."""
from __future__ import annotations

import time
import warnings
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from .. import track, viz
from ..paths import checkpoint_dir
from ..provenance import pick_device
from ..train.checkpoint import Checkpoints
from ..weights import WeightsUnavailable
from .decoder import Decoder
from .images import DEFAULT_CONTENT, DEFAULT_STYLE, load_images, random_crops
from .losses import adain_loss, tv
from .swap import swap
from .vgg import VGGEncoder

STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1")


def build_encoder(cfg, device: torch.device | None = None) -> VGGEncoder:
    """The VGG19 encoder of a config; 'auto' falls back to random-init (loudly) without weights."""
    device = device or pick_device(cfg.device)
    weights = cfg.vgg_weights
    if weights == "auto":
        try:
            encoder = VGGEncoder("imagenet", cfg.vgg_convention, cfg.channel_order)
            weights = "imagenet"
        except WeightsUnavailable as exc:
            warnings.warn("\n" + "!" * 78 + "\nVGG19 FALLBACK: random-init encoder (smoke run: images will not be "
                          f"stylised as with the real VGG)\n{exc}\n" + "!" * 78, stacklevel=2)
            encoder, weights = VGGEncoder("random-init", cfg.vgg_convention, cfg.channel_order, seed=cfg.seed), \
                "random-init"
    else:
        encoder = VGGEncoder(weights, cfg.vgg_convention, cfg.channel_order, seed=cfg.seed)
    if weights == "imagenet" and cfg.vgg_convention == "caffe":
        warnings.warn("torchvision's VGG19 weights were trained on the torchvision convention; with "
                      "vgg_convention='caffe' load Caffe-converted weights (vgg_weights=FILE.pth)", stacklevel=2)
    encoder.weights = weights
    return encoder.to(device)


def encoder_tags(encoder: VGGEncoder) -> dict:
    """What a style run's features mean: random-init encoders are smoke runs."""
    return {"style.vgg_weights": encoder.weights, "style.vgg_convention": encoder.convention,
            "style.comparable": "yes" if encoder.weights != "random-init" else "NO: random-init smoke encoder"}


def prepare(cfg) -> tuple[list, list, VGGEncoder]:
    """What every style notebook starts from: content and style images (RGB [0, 1]) and the encoder."""
    content = load_images(cfg.content_dir, DEFAULT_CONTENT, cfg.image_size)
    style = load_images(cfg.style_dir, DEFAULT_STYLE, cfg.image_size)
    return content, style, build_encoder(cfg)


@dataclass
class DecoderResult:
    decoder: Decoder
    steps_done: int
    resumed_from: int
    reconstructions: np.ndarray  # input | reconstruction, a few crops


def _swap_batch(feats: torch.Tensor, style_feats: torch.Tensor, cfg) -> torch.Tensor:
    return torch.cat([swap(feats[i:i + 1], style_feats[i:i + 1], cfg.patch_size, chunk=cfg.chunk).features
                      for i in range(len(feats))])


def train_decoder(cfg, encoder: VGGEncoder, content: list, style: list, run, progress: bool = True
                  ) -> DecoderResult:
    """Train (or continue training) the run's decoder for cfg.steps steps on random crops of the
    content and style images; a checkpoint every cfg.checkpoint_every steps holds decoder,
    optimiser, step and config."""
    device = next(encoder.parameters()).device
    run.set_tags(encoder_tags(encoder))
    torch.manual_seed(cfg.seed)
    decoder = Decoder(cfg.decoder_kind).to(device)
    optimizer = torch.optim.Adam(decoder.parameters(), lr=cfg.lr)
    checkpoints = Checkpoints(checkpoint_dir(run.run_id), "decoder.pt")
    start = 0
    state = checkpoints.load()
    if state is not None:
        decoder.load_state_dict(state["decoder"])
        optimizer.load_state_dict(state["optimizer"])
        start = state["step"]
        print(f"resuming decoder training of run {run.run_id} at step {start}")
    layers = tuple(sorted(set(STYLE_LAYERS) | set(decoder.inputs), key=STYLE_LAYERS.index))
    images = [img for _, img in content] + [img for _, img in style]
    style_images = [img for _, img in style]
    running: dict[str, list[float]] = {}
    started = time.time()
    bar = tqdm(range(start, cfg.steps), desc=f"decoder {cfg.decoder_kind}", disable=not progress,
               initial=start, total=cfg.steps)
    for step in bar:
        generator = torch.Generator().manual_seed(cfg.seed * 1_000_003 + step)  # same batches after a resume
        batch = random_crops(images, cfg.batch_size, cfg.image_size, generator).to(device)
        with torch.no_grad():
            feats = encoder.encode(batch, layers)
            target = {k: v for k, v in feats.items()}
            if cfg.train_with_swap:
                style_batch = random_crops(style_images, cfg.batch_size, cfg.image_size, generator).to(device)
                style_feats = encoder.encode(style_batch, layers)
                for name in decoder.inputs:
                    target[name] = _swap_batch(feats[name], style_feats[name], cfg)
        out = decoder(target)
        out_feats = encoder.encode(out, layers)
        terms = {"pixel": cfg.lambda_pixel * F.l1_loss(out, batch),
                 "feature": cfg.lambda_feature * sum(F.mse_loss(out_feats[n], target[n]) for n in decoder.inputs)}
        if cfg.lambda_tv > 0:
            terms["tv"] = cfg.lambda_tv * tv(out)
        if cfg.lambda_adain > 0:
            reference = style_feats if cfg.train_with_swap else feats
            terms["adain"] = cfg.lambda_adain * adain_loss({n: out_feats[n] for n in STYLE_LAYERS},
                                                           {n: reference[n] for n in STYLE_LAYERS})
        loss = sum(terms.values())
        if not torch.isfinite(loss):
            raise FloatingPointError(f"non-finite decoder loss at step {step + 1} ({ {k: float(v) for k, v in terms.items()} }); "
                                     f"the checkpoint at {checkpoints.path} is kept; lower lr")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        for k, v in {"loss": loss, **{f"loss_{k}": v for k, v in terms.items()}}.items():
            running.setdefault(k, []).append(float(v.detach()))
        if (step + 1) % cfg.log_every == 0:
            run.log_metrics({k: float(np.mean(v)) for k, v in running.items()}, step=step + 1)
            bar.set_postfix(loss=f"{np.mean(running['loss']):.3f}")
            running = {}
        if (step + 1) % cfg.checkpoint_every == 0 or step + 1 == cfg.steps:
            checkpoints.save({"decoder": decoder.state_dict(), "optimizer": optimizer.state_dict(), "step": step + 1,
                              "config": cfg.to_dict()})
    run.log_metrics({"decoder_seconds": time.time() - started})
    decoder.eval()
    with torch.no_grad():
        shown = random_crops(images, 4, cfg.image_size, torch.Generator().manual_seed(cfg.seed)).to(device)
        rebuilt = decoder(encoder.encode(shown, decoder.inputs)).clamp(0, 1)
    grid = viz.sample_grid([shown.cpu() * 2 - 1, rebuilt.cpu() * 2 - 1])
    run.log_image(grid, "reconstructions", step=cfg.steps)
    return DecoderResult(decoder, cfg.steps, start, grid)


def load_decoder(cfg, device: torch.device) -> Decoder:
    """The decoder trained by run cfg.decoder_run (a run name or id), checked for compatibility."""
    from ..lablog.runs import Resolver
    summary = Resolver().resolve(cfg.decoder_run)
    if summary is None:
        raise FileNotFoundError(f"decoder_run={cfg.decoder_run!r}: no such run in {track.tracking_uri()}")
    path = checkpoint_dir(summary.run_id) / "decoder.pt"
    if not path.is_file():
        raise FileNotFoundError(f"run {summary.name} ({summary.run_id}) has no decoder checkpoint at {path}")
    state = torch.load(path, map_location="cpu", weights_only=False)
    trained = state["config"]
    for key in ("decoder_kind", "vgg_convention", "channel_order"):
        if trained[key] != getattr(cfg, key):
            raise ValueError(f"decoder of run {summary.name} was trained with {key}={trained[key]!r}, this run has "
                             f"{getattr(cfg, key)!r}: they must match")
    decoder = Decoder(cfg.decoder_kind)
    decoder.load_state_dict(state["decoder"])
    return decoder.to(device).eval()
