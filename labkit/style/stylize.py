"""`labkit stylize`: every image of a content folder in the style of every image of a style
folder, batched (content images of one size go through together), with a progress bar."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image
from tqdm.auto import tqdm

from .. import track
from ..provenance import pick_device
from .images import load_sets
from .training import trained_decoder
from .vgg import build_encoder


def stylize_folders(cfg, out_dir: str | Path, batch_size: int = 8, progress: bool = True) -> list[Path]:
    content, style = load_sets(cfg)
    encoder = build_encoder(cfg, pick_device(cfg.device))
    device = next(encoder.parameters()).device
    decoder = trained_decoder(cfg, track.run_id_of(cfg.decoder_run), device)
    variant = cfg.variant
    layers = tuple(sorted(set(decoder.inputs) | set(variant.layers(cfg))))
    context = variant.prepare(cfg, encoder, [img for _, img in content + style]) if variant.prepare else None
    groups: dict[tuple, list] = {}
    for name, img in content:
        groups.setdefault(tuple(img.shape), []).append((name, img))
    batches = [group[i : i + batch_size] for group in groups.values() for i in range(0, len(group), batch_size)]
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    with (
        torch.no_grad(),
        tqdm(total=len(content) * len(style), desc=f"stylize ({variant.name})", disable=not progress) as bar,
    ):
        for s_name, s_img in style:
            s_feats = encoder.encode(s_img[None].to(device), layers)
            for batch in batches:
                c_feats = encoder.encode(torch.stack([img for _, img in batch]).to(device), layers)
                inputs, _ = variant.apply(cfg, c_feats, s_feats, context)
                out = decoder(inputs, s_feats).clamp(0, 1).cpu()
                for (c_name, _), img in zip(batch, out):
                    path = out_dir / f"{c_name}__{s_name}__{variant.name}.png"
                    Image.fromarray((img.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)).save(path)
                    written.append(path)
                bar.update(len(batch))
    return written
