"""The swap under the cursor: `lab.explore()` in a swap notebook. Choose a content image, a style
image and a content position (row and column sliders over the swap's grid) and see the
style patch the swap took there, the NCC score map of that content patch over the whole style
image, and its top-k alternatives; the variant's own knobs (temperature, patch size, layer, the
frequency split, the channel weights' strength, ...) re-run the swap, at a small size
(`SIZE` px on the short side, benchmarks/swap_explorer.py measures it), and redraw the result and
its heatmaps.

The pure functions draw; `SwapExplorer` wires them to ipywidgets. The scores come from the
variant's own `matched` (what its swap ranks by: the low-pass content of the frequency split, the
whitened maps of Avatar-Net, ...), so the top candidate is the patch an argmax swap took.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from .. import viz
from .swap import SwapResult, patch_scores
from .variants.variant import Matched
from .vgg import STYLE_LAYERS
from .views import rgb

SIZE = 96  # px, the short side the explorer swaps at
TOP = 5  # alternatives shown


def shrink(img: torch.Tensor, size: int = SIZE) -> torch.Tensor:
    """An image (3, H, W) with its short side at most `size` (kept when smaller)."""
    scale = size / min(img.shape[-2:])
    if scale >= 1:
        return img
    return F.interpolate(img[None], scale_factor=scale, mode="bilinear", align_corners=False, antialias=True)[0]


@dataclass
class Swapped:
    """One pair swapped at the explorer's size under one setting of the knobs."""

    cfg: object
    content: torch.Tensor  # (3, h, w)
    style: torch.Tensor
    output: torch.Tensor
    result: SwapResult
    matched: Matched
    layer: str
    seconds: float  # swap and decode

    @property
    def grid(self) -> tuple[int, int]:
        return tuple(self.result.index.shape[1:])


def swap_pair(lab, cfg, context, content: torch.Tensor, style: torch.Tensor, encoded: dict | None = None) -> Swapped:
    """Encode (once per image and layers, when given a dict to keep them in), swap (the variant's
    own swap under cfg) and decode one pair; timed from the swap to the decoded image."""
    layer = lab.variant.layers(cfg)[0]
    layers = tuple(sorted({*STYLE_LAYERS, *lab.decoder.inputs, *lab.variant.layers(cfg)}, key=STYLE_LAYERS.index))
    encoded = {} if encoded is None else encoded

    def features(img: torch.Tensor) -> dict:
        if (id(img), layers) not in encoded:
            encoded[id(img), layers] = lab.encoder.encode(img[None].to(lab.device), layers)
        return encoded[id(img), layers]

    with torch.no_grad():
        c, s = features(content), features(style)
        started = time.perf_counter()
        inputs, result = lab.variant.apply(cfg, c, s, context)
        output = lab.decoder(inputs, s).clamp(0, 1)[0].cpu()
        seconds = time.perf_counter() - started
        matched = lab.variant.matched(cfg, c[layer], s[layer], context)
    return Swapped(cfg, content, style, output, result, matched, layer, seconds)


def locate(index: int, grids: list[tuple[int, int]]) -> tuple[int, int, int]:
    """(map, row, col) of a patch of the bank, from its flat index (maps in order, rows first)."""
    for m, (rows, cols) in enumerate(grids):
        if index < rows * cols:
            return m, index // cols, index % cols
        index -= rows * cols
    raise IndexError("patch index beyond the bank")


def top_patches(scores: list[torch.Tensor], n: int = TOP) -> list[tuple[int, int, int, float]]:
    """The n best-scoring patches of the bank: (map, row, col, NCC), best first."""
    flat = torch.cat([s.flatten() for s in scores])
    values, indices = flat.topk(min(n, len(flat)))
    grids = [tuple(s.shape) for s in scores]
    return [(*locate(int(i), grids), float(v)) for v, i in zip(values, indices)]


@dataclass
class Probe:
    """One content position of a Swapped: the scores of its patch over the style, the patch taken."""

    swapped: Swapped
    row: int
    col: int
    scores: list[torch.Tensor]  # one (H', W') map per style map of the bank
    top: list[tuple[int, int, int, float]]
    chosen: tuple[int, int, int]  # (map, row, col) of the patch the swap took


def probe(swapped: Swapped, row: int, col: int) -> Probe:
    k, m = swapped.cfg.patch_size, swapped.matched
    row, col = min(row, swapped.grid[0] - 1), min(col, swapped.grid[1] - 1)
    scores = patch_scores(m.query, m.maps, k, row, col, m.weights)
    chosen = locate(int(swapped.result.index[0, row, col]), [tuple(s.shape) for s in scores])
    return Probe(swapped, row, col, scores, top_patches(scores), chosen)


def _footprint(p: Probe, which: str, m: int, row: int, col: int) -> tuple[float, float, float, float]:
    """(x, y, width, height) in image px of a k x k feature patch: of the content query or of style map m."""
    s, k, pad = p.swapped, p.swapped.cfg.patch_size, p.swapped.matched.pad
    feature = s.matched.query if which == "content" else s.matched.maps[m]
    image = s.content if which == "content" else s.style
    fy, fx = (image.shape[1 + i] / (feature.shape[2 + i] - 2 * pad) for i in (0, 1))
    return (col - pad) * fx, (row - pad) * fy, k * fx, k * fy


DISPLAY_PX = 200  # the short side the panels are shown at (whole-pixel enlargement)
RED, WHITE = (230, 30, 30), (255, 255, 255)


def _coloured(values: np.ndarray, cmap: str) -> np.ndarray:
    """Scores in [-1, 1] as RGB through a colour map; NaN (no patch there) black."""
    from matplotlib import colormaps

    rgba = colormaps[cmap]((np.nan_to_num(values, nan=-1.0) + 1) / 2)
    return (rgba[..., :3] * 255).round().astype(np.uint8)


def _pixels(img: torch.Tensor) -> np.ndarray:
    return (rgb(img) * 255).round().astype(np.uint8)


def _enlarged(image: np.ndarray, factor: int) -> np.ndarray:
    return np.repeat(np.repeat(image, factor, axis=0), factor, axis=1)


def _box(image: np.ndarray, box: tuple[float, float, float, float], colour, width: int = 2) -> None:
    """Outline (x, y, w, h) on image in place, clipped to it."""
    x0, y0 = max(0, round(box[0])), max(0, round(box[1]))
    x1, y1 = min(image.shape[1], round(box[0] + box[2])), min(image.shape[0], round(box[1] + box[3]))
    if x1 <= x0 or y1 <= y0:
        return
    for rows, cols in (
        (slice(y0, y0 + width), slice(x0, x1)),
        (slice(y1 - width, y1), slice(x0, x1)),
        (slice(y0, y1), slice(x0, x0 + width)),
        (slice(y0, y1), slice(x1 - width, x1)),
    ):
        image[rows, cols] = colour


def _scores_on_image(p: Probe, m: int) -> np.ndarray:
    """Style map m's scores, each patch's at its centre's cell, on the unpadded map's grid."""
    pad, k = p.swapped.matched.pad, p.swapped.cfg.patch_size
    scores = F.pad(p.scores[m][None, None], ((k - 1) // 2, k // 2, (k - 1) // 2, k // 2), value=float("nan"))[0, 0]
    return scores[pad : scores.shape[0] - pad, pad : scores.shape[1] - pad].cpu().numpy()


def _resized(values: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """A small map stretched over an image's pixels (nearest cell)."""
    rows = np.minimum((np.arange(shape[0]) * values.shape[0] / shape[0]).astype(int), values.shape[0] - 1)
    cols = np.minimum((np.arange(shape[1]) * values.shape[1] / shape[1]).astype(int), values.shape[1] - 1)
    return values[rows][:, cols]


def probe_panels(p: Probe) -> list[tuple[str, np.ndarray]]:
    """(title, RGB uint8) of the probe's pictures: the content with the probed patch, the output,
    the match confidence, the style under this patch's NCC scores with the top candidates and the
    one taken, then each top candidate cut from the style."""
    s = p.swapped
    factor, style_factor = (max(1, DISPLAY_PX // min(img.shape[1:])) for img in (s.content, s.style))
    scaled = lambda box, f: tuple(v * f for v in box)  # noqa: E731
    content = _enlarged(_pixels(s.content), factor)
    _box(content, scaled(_footprint(p, "content", 0, p.row, p.col), factor), RED)
    confidence = _coloured(_resized(s.result.confidence[0].cpu().numpy(), content.shape[:2]), "viridis")
    grid = s.grid
    cell = (p.col * content.shape[1] / grid[1], p.row * content.shape[0] / grid[0])
    _box(confidence, (*cell, content.shape[1] / grid[1], content.shape[0] / grid[0]), RED)
    style = _enlarged(_pixels(s.style), style_factor)
    m = p.chosen[0]
    heat = _coloured(_resized(_scores_on_image(p, m), style.shape[:2]), "magma")
    style = (0.45 * style + 0.55 * heat).round().astype(np.uint8)
    for tm, tr, tc, _ in p.top:
        if tm == m:
            _box(style, scaled(_footprint(p, "style", tm, tr, tc), style_factor), WHITE, 1)
    _box(style, scaled(_footprint(p, "style", *p.chosen), style_factor), RED)
    scale = f", scale map {m + 1} of {len(p.scores)}" if len(p.scores) > 1 else ""
    panels = [
        (f"content: patch ({p.row}, {p.col})", content),
        ("output", _enlarged(_pixels(s.output), factor)),
        ("match confidence (NCC taken; -1 purple .. 1 yellow)", confidence),
        (f"style under this patch's NCC (-1 black .. 1 pale{scale}); red: taken, white: top {TOP}", style),
    ]
    for rank, (tm, tr, tc, score) in enumerate(p.top, 1):
        crop = _crop(p, tm, tr, tc)
        taken = " (taken)" if (tm, tr, tc) == p.chosen else ""
        panels.append((f"#{rank}: NCC {score:.3f}{taken}", _enlarged(crop, max(1, 64 // max(crop.shape[:2])))))
    return panels


def _crop(p: Probe, m: int, row: int, col: int) -> np.ndarray:
    x, y, w, h = _footprint(p, "style", m, row, col)
    image = _pixels(p.swapped.style)
    top, left = max(0, int(y)), max(0, int(x))
    return image[top : max(top + 1, int(y + h)), left : max(left + 1, int(x + w))]


def probe_html(p: Probe) -> str:
    """The probe's panels as one HTML block: the four large ones in a row, the candidates below."""
    figure = (
        '<figure style="margin:0 8px 4px 0;max-width:{w}px"><img src="data:image/png;base64,{data}" alt="{t}">'
        '<figcaption style="font-size:11px">{t}</figcaption></figure>'
    )
    cells = [
        figure.format(w=max(image.shape[1], 96), data=viz.png_data(image), t=title) for title, image in probe_panels(p)
    ]
    row = '<div style="display:flex;flex-wrap:wrap;align-items:flex-start">{}</div>'
    title = f"<b>{p.swapped.cfg.variant.name}</b> at {p.swapped.layer}, patch {p.swapped.cfg.patch_size}"
    return f"<div>{title}{row.format(''.join(cells[:4]))}{row.format(''.join(cells[4:]))}</div>"


def with_strength(context, strength: float):
    """Channel weights blended towards all ones: 0 matches unweighted, 1 with the variant's weights."""
    return 1.0 - strength * (1.0 - context)


def knob_widget(name: str, value, rule: dict):
    """A slider (or menu, or text box) for one parameter, within its declared bounds; a value is
    taken when the slider is let go."""
    import ipywidgets as w

    common = dict(description=name, continuous_update=False, style={"description_width": "initial"})
    if rule.get("choices"):
        return w.Dropdown(options=list(rule["choices"]), value=value, description=name)
    lower = rule.get("at_least", rule.get("above"))
    if isinstance(value, int) and not isinstance(value, bool):
        return w.IntSlider(value=value, min=lower or 0, max=max((lower or 0) + 8, 4 * value), **common)
    if isinstance(value, float) and rule.get("above") is not None and value > 0:  # a scale: temperature
        exponent = float(np.log10(value))
        return w.FloatLogSlider(value=value, base=10, min=exponent - 2, max=exponent + 1.5, step=0.05, **common)
    if isinstance(value, float):
        low = lower if lower is not None else -max(2 * abs(value), 2.0)
        high = max(4 * abs(value), low + 2.0)
        return w.FloatSlider(value=value, min=low, max=high, step=(high - low) / 100, **common)
    return w.Text(value=str(value), **common)


def knob_widgets(lab) -> dict:
    """The explorer's knobs: patch size, the swap layer (where the variant lets it vary), the
    variant's own parameters, and the channel weights' strength where it matches by weights."""
    import ipywidgets as w

    fields = {f.name: f for f in dataclasses.fields(lab.cfg)}
    names = ["patch_size"] + ([] if lab.variant.fixed_layers else ["swap_layer"])
    names += [f.name for f in dataclasses.fields(lab.variant.knobs)] if lab.variant.knobs else []
    widgets = {n: knob_widget(n, getattr(lab.cfg, n), fields[n].metadata) for n in names}
    if isinstance(lab.context, torch.Tensor):
        widgets[STRENGTH] = w.FloatSlider(value=1.0, min=0.0, max=1.0, step=0.05, description=STRENGTH)
    return widgets


STRENGTH = "weights strength"  # 0: unweighted matching, 1: the variant's channel weights


class SwapExplorer:
    """Menus for the pair, sliders for the content position and the knobs, and the probe's picture."""

    def __init__(self, lab, size: int = SIZE):
        import ipywidgets as w

        self.lab = lab
        self.images = {
            which: [shrink(img, size) for _, img in pairs]
            for which, pairs in (("content", lab.content), ("style", lab.style))
        }
        self.content = w.Dropdown(options=[(n, i) for i, (n, _) in enumerate(lab.content)], description="content")
        self.style = w.Dropdown(options=[(n, i) for i, (n, _) in enumerate(lab.style)], description="style")
        self.row, self.col = (w.IntSlider(description=d, continuous_update=False) for d in ("row", "col"))
        self.knobs = knob_widgets(lab)
        self.status, self.view = w.HTML(), w.HTML()
        for widget, name in ((self.view, "labkit-swap-explore"), (self.status, "labkit-swap-status")):
            widget.add_class(name)
        for widget in (self.content, self.style, *self.knobs.values()):
            widget.observe(lambda _: self.reswap(), "value")
        for widget in (self.row, self.col):
            widget.observe(lambda _: self.redraw(), "value")
        position = w.VBox([self.content, self.style, self.row, self.col])
        self.box = w.VBox([w.HBox([position, w.VBox(list(self.knobs.values()))]), self.status, self.view])
        self.swapped, self._busy, self.encoded = None, False, {}
        self.reswap()

    def reswap(self) -> None:
        """The pair swapped again under the knobs' values; a value the variant refuses is named."""
        values = {n: widget.value for n, widget in self.knobs.items() if n != STRENGTH}
        context = self.lab.context
        if STRENGTH in self.knobs:
            context = with_strength(context, self.knobs[STRENGTH].value)
        try:
            cfg = dataclasses.replace(self.lab.cfg, **values)
            content, style = self.images["content"][self.content.value], self.images["style"][self.style.value]
            swapped = swap_pair(self.lab, cfg, context, content, style, self.encoded)
        except (ValueError, RuntimeError) as e:  # out of bounds (the config's message), a size the swap refuses
            self.status.value = f'<b style="color:#b00">not swapped: {e}</b>'
            return
        first = self.swapped is None
        self.swapped, self._busy = swapped, True
        self.row.max, self.col.max = swapped.grid[0] - 1, swapped.grid[1] - 1
        if first:
            self.row.value, self.col.value = swapped.grid[0] // 2, swapped.grid[1] // 2
        self._busy = False
        self.redraw()

    def redraw(self) -> None:
        if self._busy or self.swapped is None:
            return
        self.probe = probe(self.swapped, self.row.value, self.col.value)
        ranks = [t[:3] for t in self.probe.top]
        taken = (
            f"#{ranks.index(self.probe.chosen) + 1} of the top {TOP}"
            if self.probe.chosen in ranks
            else f"not in the top {TOP}"
        )
        h, w = self.swapped.content.shape[1:]
        self.view.value = probe_html(self.probe)
        self.status.value = (  # after the picture: a status that names the position describes what is drawn
            f"swap and decode at {h} x {w} px: {self.swapped.seconds * 1000:.0f} ms; "
            f"the patch taken at ({self.probe.row}, {self.probe.col}) is {taken} by NCC"
        )

    def _repr_mimebundle_(self, **kwargs):
        """The widgets, and their picture as HTML for a notebook read without a kernel (papermill's
        executed copy, its HTML in MLflow): JupyterLab shows the widgets."""
        bundle = self.box._repr_mimebundle_(**kwargs)
        bundle["text/html"] = f"<p>{self.status.value}</p>{self.view.value}"
        return bundle
