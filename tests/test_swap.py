"""Style swap variants against brute force and their defining properties."""

import pytest
import torch

from labkit.style.swap import (
    assignment_swap,
    avatar_swap,
    colour,
    frequency_swap,
    gram_aware_swap,
    low_pass,
    multiscale_style,
    swap,
    swap_plain,
    zca,
)


def _brute_force(content, style, k=3):
    """Per location: NCC with every style patch, best patch, overlaps averaged. Loops only."""
    n, c, h, w = content.shape
    hs, ws = style.shape[2:]
    patches = [style[0, :, y : y + k, x : x + k] for y in range(hs - k + 1) for x in range(ws - k + 1)]
    out = torch.zeros_like(content)
    count = torch.zeros(1, 1, h, w)
    index = torch.zeros(n, h - k + 1, w - k + 1, dtype=torch.long)
    for b in range(n):
        for y in range(h - k + 1):
            for x in range(w - k + 1):
                q = content[b, :, y : y + k, x : x + k]
                scores = [float((q * p).sum() / p.norm()) for p in patches]
                best = max(range(len(patches)), key=scores.__getitem__)
                index[b, y, x] = best
                out[b, :, y : y + k, x : x + k] += patches[best]
                if b == 0:
                    count[0, 0, y : y + k, x : x + k] += 1
    return out / count, index


@pytest.fixture
def maps():
    torch.manual_seed(0)
    return torch.randn(2, 6, 7, 8), torch.randn(1, 6, 6, 7)


def test_argmax_swap_equals_brute_force(maps):
    content, style = maps
    expected, index = _brute_force(content, style)
    result = swap(content, style, chunk=4)
    assert torch.equal(result.index, index)
    assert torch.allclose(result.features, expected, atol=1e-5)
    assert torch.allclose(swap_plain(content, style), expected, atol=1e-5)


def test_chunked_equals_unchunked(maps):
    content, style = maps
    whole = swap(content, style, chunk=10**6)
    for chunk in (1, 3, 7):
        part = swap(content, style, chunk=chunk)
        assert torch.equal(part.index, whole.index) and torch.allclose(part.features, whole.features)
    soft = [swap(content, style, mode="softmax", temperature=0.1, chunk=c).features for c in (2, 10**6)]
    assert torch.allclose(soft[0], soft[1], atol=1e-5)


def test_the_swap_under_autocast_is_the_fp32_swap():
    """A decoder trained with swapped features runs the swap inside autocast: it still matches and
    rebuilds in fp32 (bf16's three digits flip near-tied argmaxes; fp16 overflows patch energies)."""
    torch.manual_seed(1)
    content, style = torch.randn(2, 64, 12, 12) * 30, torch.randn(1, 64, 12, 12) * 30  # VGG-like magnitudes
    for mode in ("argmax", "softmax"):
        fp32 = swap(content, style, mode=mode)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            mixed = swap(content, style, mode=mode)
            low = swap(content.bfloat16(), style.bfloat16(), mode=mode)
        assert torch.equal(mixed.index, fp32.index) and torch.equal(mixed.features, fp32.features), mode
        assert low.features.dtype == torch.float32


def test_swapping_a_map_with_itself_returns_it(maps):
    _, style = maps
    result = swap(style, style)
    assert torch.allclose(result.features, style, atol=1e-5)
    assert torch.allclose(result.confidence, torch.ones_like(result.confidence), atol=1e-5)
    assert result.distinct_share() == 1.0


def test_softmax_approaches_argmax_as_temperature_falls(maps):
    content, style = maps
    hard = swap(content, style).features
    errors = [
        (swap(content, style, mode="softmax", temperature=t).features - hard).abs().max().item()
        for t in (1.0, 1e-2, 1e-6)
    ]
    assert errors[0] > errors[2] and errors[2] < 1e-4
    flat = swap(content, style, mode="softmax", temperature=1e3).features  # every patch weighs the same
    assert flat[0, :, 3, 3].std() < hard[0, :, 3, 3].std()


@pytest.mark.parametrize("method", ["exact", "sinkhorn"])
@pytest.mark.parametrize("limit", [2, 3])
def test_assignment_swap_respects_its_usage_limit(maps, method, limit):
    content, style = maps
    result = assignment_swap(content, style, limit=limit, method=method)
    for image in result.index:  # the limit holds per content image
        assert torch.bincount(image.flatten()).max() <= limit
    assert result.features.shape == content.shape
    greedy = swap(content[:1], style)
    assert greedy.usage().max() > limit  # the greedy swap reuses patches freely
    with pytest.raises(ValueError, match="raise the limit"):
        assignment_swap(content, style[:, :, :3, :3], limit=1)


def test_exact_assignment_is_optimal_for_its_limit(maps):
    content, style = maps
    exact = assignment_swap(content[:1], style, limit=2, method="exact")
    sink = assignment_swap(content[:1], style, limit=2, method="sinkhorn")
    assert exact.confidence.sum() >= sink.confidence.sum() - 1e-5
    assert exact.confidence.sum() <= swap(content[:1], style).confidence.sum() + 1e-5  # a limit costs score


def test_frequency_swap_keeps_the_high_frequencies(maps):
    content, style = maps
    result = frequency_swap(content, style, cutoff=1.5)
    low = low_pass(content, 1.5)
    assert torch.allclose(result.features - swap(low, style).features, content - low, atol=1e-5)
    assert torch.allclose(low_pass(torch.ones(1, 2, 9, 9), 2.0), torch.ones(1, 2, 9, 9), atol=1e-6)


def test_channel_weights_change_what_matches():
    torch.manual_seed(1)
    style = torch.randn(1, 2, 6, 6)
    content = style[:, :, :4, :4].clone()
    content[:, 0] = torch.randn(4, 4) * 10  # channel 0 of the content is misleading
    plain = swap(content, style)
    weighted = swap(content, style, channel_weights=torch.tensor([0.0, 1.0]))
    # with channel 0 ignored, the content's own patch (channel 1 identical) is found again
    assert torch.all(weighted.confidence > 0.999)
    assert not torch.equal(plain.index, weighted.index)


def test_gram_aware_and_multiscale_variants(maps):
    content, style = maps
    assert torch.equal(gram_aware_swap(content, style, beta=0.0).index, swap(content, style).index)
    moved = gram_aware_swap(content, style, beta=5.0)
    assert moved.features.shape == content.shape
    bank = multiscale_style(style, (0.5, 1.0, 2.0))
    assert [m.shape[-1] for m in bank] == [3, 7, 14]
    assert swap(content, bank).n_style_patches == sum((m.shape[2] - 2) * (m.shape[3] - 2) for m in bank)


def _avatar_reference(content, style, k=5):
    """Avatar-Net's models/avatar_net.py transcribed in numpy, with loops for the swap: ZCA by
    the SVD of the Gram matrix (zca_normalization), the content reflect-padded and the style's
    patches taken 'SAME' (zero-padded), the best patch by its dot product with the normalised
    style patch, overlaps divided by their count, then zca_colorization with the style's kernel."""
    import numpy as np

    def zca(f):  # f: (H, W, C), TensorFlow's layout
        mean = f.mean((0, 1), keepdims=True)
        x = (f - mean).reshape(-1, f.shape[2])
        u, s, vt = np.linalg.svd(x.T @ x / (f.shape[0] * f.shape[1]))
        valid = s > 1e-5
        s = np.maximum(s, 1e-5)
        white = ((x @ u) * (np.sqrt(1 / s) * valid)) @ vt
        return white.reshape(f.shape), (u * (np.sqrt(s) * valid)) @ vt, mean

    pad = (k - 1) // 2
    s_white, kernel, s_mean = zca(style[0].permute(1, 2, 0).double().numpy())
    s_pad = np.pad(s_white, ((pad, pad), (pad, pad), (0, 0)))
    hs, ws = s_white.shape[:2]
    patches = [s_pad[y : y + k, x : x + k] for y in range(hs) for x in range(ws)]
    outputs, indices = [], []
    for image in content:
        c_white, _, _ = zca(image.permute(1, 2, 0).double().numpy())
        h, w = c_white.shape[:2]
        c_pad = np.pad(c_white, ((pad, pad), (pad, pad), (0, 0)), mode="reflect")
        acc, count = np.zeros_like(c_pad), np.zeros(c_pad.shape[:2] + (1,))
        index = np.zeros((h, w), dtype=np.int64)
        for y in range(h):
            for x in range(w):
                scores = [float((c_pad[y : y + k, x : x + k] * p).sum() / (np.linalg.norm(p) + 1e-7)) for p in patches]
                index[y, x] = int(np.argmax(scores))
                acc[y : y + k, x : x + k] += patches[index[y, x]]
                count[y : y + k, x : x + k] += 1
        swapped = (acc / count)[pad : pad + h, pad : pad + w].reshape(-1, c_white.shape[2])
        outputs.append(torch.from_numpy((swapped @ kernel).reshape(h, w, -1) + s_mean).permute(2, 0, 1))
        indices.append(torch.from_numpy(index))
    return torch.stack(outputs), torch.stack(indices)


def test_the_avatar_swap_equals_avatar_nets_decorator():
    torch.manual_seed(0)
    content, style = torch.randn(2, 6, 7, 8, dtype=torch.float64), torch.randn(1, 6, 6, 7, dtype=torch.float64)
    content[:, :3] += 2 * content[:, 3:]  # correlated channels: whitening has work to do
    expected, index = _avatar_reference(content, style)
    result = avatar_swap(content, style, k=5, chunk=7)
    assert torch.equal(result.index, index)
    assert torch.allclose(result.features, expected, atol=1e-9)
    white, colouring, mean = zca(content)
    cov = torch.einsum("nchw,ndhw->ncd", white, white) / (7 * 8)
    assert torch.allclose(cov, torch.eye(6, dtype=torch.float64).expand(2, 6, 6), atol=1e-9)
    assert torch.allclose(colour(white, colouring, mean), content, atol=1e-9)  # colouring undoes whitening


def test_the_avatar_swap_refuses_patches_it_cannot_place():
    with pytest.raises(ValueError, match="odd patch size"):
        avatar_swap(torch.randn(1, 4, 8, 8), torch.randn(1, 4, 8, 8), k=4)
    with pytest.raises(ValueError, match="too large for 2 x 2"):
        avatar_swap(torch.randn(1, 4, 2, 2), torch.randn(1, 4, 8, 8), k=5)
