"""Style swap on feature maps: pure functions of tensors, batched over content images.

Every variant matches each k x k content patch against the style's k x k patches (stride 1)
by normalised cross-correlation (NCC: both patches divided by their L2 norms, so scores are
in [-1, 1]) and rebuilds the content map from the chosen (un-normalised) style patches,
averaging where patches overlap (Chen & Schmidt). The score map (style patches x H x W) is
never built whole: style patches are visited in chunks, keeping a running best (argmax) or a
running log-sum-exp (softmax), so peak memory is set by `chunk`.

Variants: argmax; softmax with a temperature; frequency-separated (only the low-frequency
part of the content is swapped); globally matched (each style patch used a limited number of
times: exact assignment, or Sinkhorn for large problems); channel-weighted matching;
Gram-aware matching (query = content + the style's mean feature); multi-scale (style patches
from several scales); multi-layer (several layers at once); Avatar-Net's style decorator
(whitening, a 5 x 5 swap, colouring).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F


@dataclass
class SwapResult:
    features: torch.Tensor  # (N, C, H, W) swapped features
    index: torch.Tensor  # (N, H', W') best style patch per content patch (argmax of NCC)
    confidence: torch.Tensor  # (N, H', W') its NCC score in [-1, 1]
    n_style_patches: int
    bank: tuple[tuple[int, int], ...] = ()  # patch positions (rows, cols) of each style map in the bank

    def usage(self) -> torch.Tensor:
        """(n_style_patches,) how many content locations chose each style patch."""
        return torch.bincount(self.index.flatten(), minlength=self.n_style_patches)

    def usage_map(self, which: int = 0) -> torch.Tensor:
        """(rows, cols) how often each patch position of style map `which` was chosen."""
        start = sum(r * c for r, c in self.bank[:which])
        rows, cols = self.bank[which]
        return self.usage()[start : start + rows * cols].view(rows, cols)

    def source_map(self) -> torch.Tensor:
        """(N, H', W') which style map of the bank each content location took its patch from."""
        ends = torch.tensor([r * c for r, c in self.bank], device=self.index.device).cumsum(0)
        return torch.bucketize(self.index, ends, right=True)

    def distinct_share(self) -> float:
        """Share of the style patches used at least once."""
        return float((self.usage() > 0).float().mean())


def _maps(style) -> list[torch.Tensor]:
    return list(style) if isinstance(style, (list, tuple)) else [style]


def _grids(style, k: int) -> tuple[tuple[int, int], ...]:
    return tuple((m.shape[2] - k + 1, m.shape[3] - k + 1) for m in _maps(style))


def style_patches(style: torch.Tensor, k: int) -> torch.Tensor:
    """(P, C*k*k) every k x k patch (stride 1) of one style map (1, C, H, W) or several maps."""
    maps = _maps(style)
    return torch.cat(
        [
            F.unfold(s, k).squeeze(0).t()
            if s.shape[0] == 1
            else F.unfold(s, k).permute(0, 2, 1).reshape(-1, s.shape[1] * k * k)
            for s in maps
        ]
    )


def _norms(patches: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    return patches.norm(dim=1, keepdim=True).clamp_min(eps)


def _fold_average(columns: torch.Tensor, size: tuple[int, int], k: int) -> torch.Tensor:
    """(N, C*k*k, L) patches placed back with overlaps averaged."""
    ones = torch.ones(1, 1, *size, device=columns.device, dtype=columns.dtype)
    overlap = F.fold(F.unfold(ones, k), size, k)
    return F.fold(columns, size, k) / overlap


def _content_norms(query: torch.Tensor, k: int) -> torch.Tensor:
    """(N, 1, H', W') L2 norm of every k x k patch of query, without unfolding it."""
    ones = torch.ones(1, query.shape[1], k, k, device=query.device, dtype=query.dtype)
    return F.conv2d(query * query, ones).clamp_min(1e-16).sqrt()


def _filters(raw: torch.Tensor, c: int, k: int, weights: torch.Tensor | None) -> torch.Tensor:
    """Normalised (and channel-weighted) matching filters (P, C, k, k) from raw patches (P, C*k*k)."""
    f = raw.view(-1, c, k, k)
    if weights is not None:
        f = f * weights.to(f).view(1, -1, 1, 1)
    return f / f.flatten(1).norm(dim=1).clamp_min(1e-8).view(-1, 1, 1, 1)


def swap(
    content: torch.Tensor,
    style,
    k: int = 3,
    mode: str = "argmax",
    temperature: float = 0.05,
    chunk: int = 2048,
    channel_weights: torch.Tensor | None = None,
    query: torch.Tensor | None = None,
) -> SwapResult:
    """Swap every k x k patch of content (N, C, H, W) for its best-matching style patch, in
    fp32 whatever autocast is on (a decoder trained with swapped features runs it inside fp16 or
    bf16 autocast): patch energies over C*k*k values overflow fp16, whose clamp floors are 0,
    and bf16's three digits flip near-tied argmaxes.

    style: one map (1, C, Hs, Ws) or a list of maps (several scales): their patches form the
    bank. mode 'argmax' takes the best NCC; 'softmax' averages the style patches with weights
    softmax(NCC / temperature) (temperature -> 0 gives argmax). channel_weights (C,) weight
    the channels in the matching only. query, when given, is matched instead of content (the
    rebuilt map is still made of style patches): the Gram-aware variant uses it.
    Scores are computed `chunk` style patches at a time by conv2d: beside inputs and output,
    memory holds the style patches, one chunk of scores and the chosen patches.
    """
    if mode not in ("argmax", "softmax"):
        raise ValueError(f"mode must be 'argmax' or 'softmax', got {mode!r}")
    # fp16 and bf16 inputs computed in fp32; fp32 and fp64 as they come
    as_fp32 = lambda t: t.float() if t is not None and t.dtype in (torch.float16, torch.bfloat16) else t  # noqa: E731
    with torch.autocast(content.device.type, enabled=False):
        return _swap(
            as_fp32(content),
            [as_fp32(m) for m in style] if isinstance(style, (list, tuple)) else as_fp32(style),
            k,
            mode,
            temperature,
            chunk,
            as_fp32(channel_weights),
            as_fp32(query),
        )


def _swap(content, style, k, mode, temperature, chunk, channel_weights, query) -> SwapResult:
    n, c, h, w = content.shape
    bank = style_patches(style, k).to(content)  # (P, C*k*k) un-normalised
    q = query if query is not None else content
    if channel_weights is not None:
        q = q * channel_weights.to(q).view(1, -1, 1, 1)
    norms = _content_norms(q, k)  # (N, 1, H', W')
    grid = tuple(norms.shape[2:])
    best = torch.full((n, *grid), -float("inf"), device=content.device, dtype=content.dtype)
    index = torch.zeros((n, *grid), dtype=torch.long, device=content.device)
    if mode == "softmax":
        run_max = torch.full((n, 1, *grid), -float("inf"), device=content.device, dtype=content.dtype)
        run_sum = torch.zeros((n, 1, *grid), device=content.device, dtype=content.dtype)
        acc = torch.zeros((n, bank.shape[1], grid[0] * grid[1]), device=content.device, dtype=content.dtype)
    for start in range(0, len(bank), chunk):
        raw = bank[start : start + chunk]
        scores = F.conv2d(q, _filters(raw, c, k, channel_weights)) / norms  # (N, chunk, H', W'): NCC
        top, arg = scores.max(1)
        better = top > best
        best = torch.where(better, top, best)
        index = torch.where(better, arg + start, index)
        if mode == "softmax":
            logits = scores / temperature
            new_max = torch.maximum(run_max, logits.max(1, keepdim=True).values)
            scale = torch.exp(run_max - new_max)
            weights = torch.exp(logits - new_max)
            run_sum = run_sum * scale + weights.sum(1, keepdim=True)
            acc = acc * scale.flatten(2) + torch.einsum("pd,npl->ndl", raw, weights.flatten(2))
            run_max = new_max
        del scores
    if mode == "argmax":
        columns = bank[index.flatten(1)].permute(0, 2, 1)  # (N, C*k*k, L)
    else:
        columns = acc / run_sum.flatten(2)
    return SwapResult(_fold_average(columns, (h, w), k), index, best, len(bank), _grids(style, k))


def patch_scores(query: torch.Tensor, maps: list, k: int, row: int, col: int, weights=None) -> list[torch.Tensor]:
    """NCC of the query's (1, C, H, W) k x k patch at (row, col) with every k x k patch of each
    style map (channel-weighted as the swap weights them): one (H', W') map per style map, the
    scores the swap ranked this content patch's candidates by."""
    with torch.no_grad(), torch.autocast(query.device.type, enabled=False):
        w = 1.0 if weights is None else weights.float().to(query.device).view(1, -1, 1, 1)
        patch = query.float()[:, :, row : row + k, col : col + k] * w
        patch = patch / patch.norm().clamp_min(1e-8)
        scores = []
        for style in maps:
            weighted = style.float() * w
            ones = torch.ones(1, style.shape[1], k, k, device=style.device)
            norms = F.conv2d(weighted * weighted, ones).clamp_min(1e-16).sqrt()
            scores.append((F.conv2d(weighted, patch) / norms)[0, 0])
        return scores


def swap_plain(content: torch.Tensor, style: torch.Tensor, k: int = 3) -> torch.Tensor:
    """The textbook formulation (Chen & Schmidt): conv2d with the normalised style patches as
    filters, one-hot of the channel argmax, conv_transpose2d with the raw patches, divided by
    the overlap count. It builds the whole (P, H, W) score map: the reference for tests and
    for the memory benchmark."""
    bank = style_patches(style, k)
    c = content.shape[1]
    raw = bank.view(-1, c, k, k)
    filters = raw / _norms(bank).view(-1, 1, 1, 1)
    scores = F.conv2d(content, filters)
    one_hot = F.one_hot(scores.argmax(1), len(bank)).permute(0, 3, 1, 2).to(content)
    out = F.conv_transpose2d(one_hot, raw)
    overlap = F.conv_transpose2d(torch.ones_like(one_hot[:, :1]), torch.ones(1, 1, k, k).to(content))
    return out / overlap


def zca(features: torch.Tensor, eps: float = 1e-5) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """ZCA whitening of each map of features (N, C, H, W), as Avatar-Net's zca_normalization:
    centred, then multiplied by U diag(s^-1/2) U^T of the covariance's eigen-decomposition
    (eigenvalues at most eps dropped). Returns the whitened maps, the colouring matrices
    U diag(s^1/2) U^T (N, C, C) that undo it, and the means (N, C, 1, 1); in float64 inside."""
    n, c, h, w = features.shape
    x = features.double().flatten(2)
    mean = x.mean(2, keepdim=True)
    x = x - mean
    values, vectors = torch.linalg.eigh(x @ x.transpose(1, 2) / (h * w))
    valid = values > eps
    values = values.clamp_min(eps)

    def scaled(d):
        return vectors @ torch.diag_embed(torch.where(valid, d, torch.zeros_like(d))) @ vectors.transpose(1, 2)

    white = (scaled(values.rsqrt()) @ x).view(n, c, h, w)
    return white.to(features.dtype), scaled(values.sqrt()).to(features.dtype), mean.view(n, c, 1, 1).to(features.dtype)


def colour(white: torch.Tensor, colouring: torch.Tensor, mean: torch.Tensor) -> torch.Tensor:
    """Whitened maps (N, C, H, W) given the covariance and mean of zca's colouring and mean."""
    n, c, h, w = white.shape
    return (colouring @ white.flatten(2)).view(n, c, h, w) + mean


def avatar_swap(content: torch.Tensor, style: torch.Tensor, k: int = 5, chunk: int = 2048) -> SwapResult:
    """Avatar-Net's style decorator (Sheng et al., CVPR 2018; models/avatar_net.py, style_coding
    ZCA, style_interp 'normalized' at ratio 1): the content and the style are ZCA-whitened, every
    k x k patch of the whitened content is swapped for its best whitened style patch, and the
    result is coloured with the style's covariance and mean. As upstream, the content is
    reflect-padded and the style zero-padded by (k - 1) / 2, so every position has its patch
    (TensorFlow's 'SAME' patches). confidence is the NCC of the whitened features."""
    if k % 2 == 0:
        raise ValueError(f"the Avatar-Net swap needs an odd patch size, got {k}")
    pad, (h, w) = (k - 1) // 2, content.shape[2:]
    if pad >= min(h, w):
        raise ValueError(f"patch size {k} is too large for {h} x {w} feature maps (reflect padding by {pad})")
    white_content, _, _ = zca(content)
    white_style, colouring, mean = zca(style)
    result = swap(F.pad(white_content, (pad,) * 4, mode="reflect"), F.pad(white_style, (pad,) * 4), k, chunk=chunk)
    swapped = result.features[:, :, pad : pad + h, pad : pad + w]
    return dataclasses.replace(result, features=colour(swapped, colouring, mean))


def low_pass(features: torch.Tensor, cutoff: float) -> torch.Tensor:
    """Gaussian blur with sigma = cutoff (in feature pixels), per channel, reflect-padded."""
    if cutoff <= 0:
        return features
    radius = max(1, int(3 * cutoff))
    x = torch.arange(-radius, radius + 1, dtype=features.dtype, device=features.device)
    g = torch.exp(-(x**2) / (2 * cutoff**2))
    g = g / g.sum()
    c = features.shape[1]
    padded = F.pad(features, (radius, radius, radius, radius), mode="reflect")
    out = F.conv2d(padded, g.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(out, g.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def frequency_swap(content: torch.Tensor, style: torch.Tensor, cutoff: float = 2.0, **kwargs) -> SwapResult:
    """Swap only the low-frequency part of the content; keep its high-frequency residual."""
    low = low_pass(content, cutoff)
    result = swap(low, style, **kwargs)
    result.features = result.features + (content - low)
    return result


def gram_aware_swap(content: torch.Tensor, style: torch.Tensor, beta: float = 1.0, **kwargs) -> SwapResult:
    """Match (content + beta * the style's mean feature) against the style: a plain swap only
    minimises the distance to the content; the added style statistics pull the matches
    towards patches typical of the style (the journal's 01/06 plan, 'convolve c + s with s')."""
    query = content + beta * style.mean(dim=(2, 3), keepdim=True)
    return swap(content, style, query=query, **kwargs)


def multiscale_style(style_image_features, scales=(0.5, 1.0, 2.0)) -> list[torch.Tensor]:
    """The style map resized to several scales, for a bank of patches of several sizes."""
    s = style_image_features
    return [
        s if scale == 1.0 else F.interpolate(s, scale_factor=scale, mode="bilinear", align_corners=False)
        for scale in scales
    ]


def assignment_swap(
    content: torch.Tensor,
    style: torch.Tensor,
    k: int = 3,
    limit: int = 1,
    method: str = "auto",
    iterations: int = 200,
    epsilon: float = 0.05,
) -> SwapResult:
    """Globally matched swap: each style patch may be chosen at most `limit` times.

    'exact' solves the assignment (scipy's linear_sum_assignment on -NCC, every style patch
    repeated `limit` times); 'sinkhorn' solves entropic optimal transport with style-side
    capacities, then gives each content patch, most confident first, the heaviest style patch
    of its row that still has room; 'auto' is exact up to 4096 x 4096. Both hold the limit
    exactly. One content image at a time; both keep a (content x style patches) matrix.
    """
    from scipy.optimize import linear_sum_assignment

    if content.shape[0] != 1:
        return _stack(
            [
                assignment_swap(content[i : i + 1], style, k, limit, method, iterations, epsilon)
                for i in range(content.shape[0])
            ]
        )
    _, c, h, w = content.shape
    bank = style_patches(style, k).to(content)
    scores = (F.conv2d(content, _filters(bank, c, k, None)) / _content_norms(content, k))[0].flatten(1).t()  # (L, P)
    length, patches = scores.shape
    if patches * limit < length:
        raise ValueError(f"{patches} style patches x limit {limit} < {length} content patches: raise the limit")
    if method == "auto":
        method = "exact" if length * patches * limit <= 4096 * 4096 else "sinkhorn"
    if method == "exact":
        cost = -scores.repeat(1, limit).cpu().numpy()
        rows, cols_ = linear_sum_assignment(cost)
        index = torch.as_tensor(cols_ % patches, device=content.device)[np.argsort(rows)]
    else:
        a = torch.full((length,), 1.0 / length, device=content.device, dtype=content.dtype)
        cap = torch.full((patches,), limit / length, device=content.device, dtype=content.dtype)
        kernel = torch.exp((scores - scores.max()) / epsilon)
        u, v = torch.ones_like(a), torch.ones_like(cap)
        for _ in range(iterations):
            u = a / (kernel @ v).clamp_min(1e-30)
            v = torch.minimum(torch.ones_like(cap), cap / (kernel.t() @ u).clamp_min(1e-30))
        index = _round_with_capacity((u[:, None] * kernel * v[None]).cpu().numpy(), limit).to(content.device)
    best = scores.gather(1, index[:, None]).squeeze(1)
    out = _fold_average(bank[index].t()[None], (h, w), k)
    grid = (h - k + 1, w - k + 1)
    return SwapResult(out, index.view(1, *grid), best.view(1, *grid), patches, _grids(style, k))


def _round_with_capacity(plan: np.ndarray, limit: int) -> torch.Tensor:
    """Each row's heaviest column that has room left, rows taken most confident first."""
    room = np.full(plan.shape[1], limit)
    index = np.zeros(plan.shape[0], dtype=np.int64)
    for row in np.argsort(-plan.max(1)):
        weights = np.where(room > 0, plan[row], -np.inf)
        index[row] = j = int(np.argmax(weights))
        room[j] -= 1
    return torch.as_tensor(index)


def _stack(results: list[SwapResult]) -> SwapResult:
    return SwapResult(
        torch.cat([r.features for r in results]),
        torch.cat([r.index for r in results]),
        torch.cat([r.confidence for r in results]),
        results[0].n_style_patches,
        results[0].bank,
    )
