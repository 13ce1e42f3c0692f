"""Style swap variants against brute force and their defining properties."""
import pytest
import torch

from labkit.style.swap import (assignment_swap, frequency_swap, gram_aware_swap, low_pass, multiscale_style, swap,
                               swap_plain)


def _brute_force(content, style, k=3):
    """Per location: NCC with every style patch, best patch, overlaps averaged. Loops only."""
    n, c, h, w = content.shape
    hs, ws = style.shape[2:]
    patches = [style[0, :, y:y + k, x:x + k] for y in range(hs - k + 1) for x in range(ws - k + 1)]
    out = torch.zeros_like(content)
    count = torch.zeros(1, 1, h, w)
    index = torch.zeros(n, h - k + 1, w - k + 1, dtype=torch.long)
    for b in range(n):
        for y in range(h - k + 1):
            for x in range(w - k + 1):
                q = content[b, :, y:y + k, x:x + k]
                scores = [float((q * p).sum() / p.norm()) for p in patches]
                best = max(range(len(patches)), key=scores.__getitem__)
                index[b, y, x] = best
                out[b, :, y:y + k, x:x + k] += patches[best]
                if b == 0:
                    count[0, 0, y:y + k, x:x + k] += 1
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
    whole = swap(content, style, chunk=10 ** 6)
    for chunk in (1, 3, 7):
        part = swap(content, style, chunk=chunk)
        assert torch.equal(part.index, whole.index) and torch.allclose(part.features, whole.features)
    soft = [swap(content, style, mode="softmax", temperature=0.1, chunk=c).features for c in (2, 10 ** 6)]
    assert torch.allclose(soft[0], soft[1], atol=1e-5)


def test_swapping_a_map_with_itself_returns_it(maps):
    _, style = maps
    result = swap(style, style)
    assert torch.allclose(result.features, style, atol=1e-5)
    assert torch.allclose(result.confidence, torch.ones_like(result.confidence), atol=1e-5)
    assert result.distinct_share() == 1.0


def test_softmax_approaches_argmax_as_temperature_falls(maps):
    content, style = maps
    hard = swap(content, style).features
    errors = [(swap(content, style, mode="softmax", temperature=t).features - hard).abs().max().item()
              for t in (1.0, 1e-2, 1e-6)]
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
