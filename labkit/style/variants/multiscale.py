"""multiscale: style patches taken at several scales; its view shows which scale each content
location took its patch from."""

from dataclasses import dataclass

from ...knobs import knob
from .variant import Matched, Variant, register


@dataclass(frozen=True)
class MultiscaleKnobs:
    scales: str = knob("0.5,1,2", "multiscale: style scales, comma-separated")

    def rules(self) -> list[str]:
        problems = super().rules()  # the schema's own rules (this class is one base of StyleConfig)
        try:
            levels = [float(x) for x in self.scales.split(",")]
        except ValueError:
            return problems + [f"scales={self.scales!r}: write numbers separated by commas, e.g. '0.5,1,2'"]
        if not levels or min(levels) <= 0:
            problems.append(f"scales={self.scales!r}: every scale must be greater than 0")
        return problems


def scales(cfg) -> tuple[float, ...]:
    return tuple(float(x) for x in cfg.scales.split(","))


def swap(cfg, c, s, _):
    from ..swap import multiscale_style, swap

    return swap(c, multiscale_style(s, scales(cfg)), cfg.patch_size, chunk=cfg.chunk)


def matched(cfg, c, s, _):
    from ..swap import multiscale_style

    return Matched(c, multiscale_style(s, scales(cfg)))


def view(lab):
    """Which scale of the style each content location took its patch from."""
    import matplotlib.pyplot as plt

    from ...viz import figure_to_array
    from ..views import first_pair, rgb

    name, c_img, _, c, s = first_pair(lab)
    out, _, result = lab.stylise(c, s)
    source = result.source_map()[0].cpu().numpy()
    levels = scales(lab.cfg)
    fig, axes = plt.subplots(1, 3, figsize=(8, 2.8), constrained_layout=True)
    axes[0].imshow(rgb(c_img))
    axes[0].set_title("content", fontsize=8)
    im = axes[1].imshow(source, cmap="viridis", vmin=0, vmax=len(levels) - 1)
    bar = fig.colorbar(im, ax=axes[1], ticks=range(len(levels)), shrink=0.8)
    bar.ax.set_yticklabels([f"x{v:g}" for v in levels])
    axes[1].set_title("scale of each patch", fontsize=8)
    axes[2].imshow(rgb(out))
    axes[2].set_title("output", fontsize=8)
    for ax in axes:
        ax.axis("off")
    shares = ", ".join(f"x{v:g} {float((source == i).mean()):.0%}" for i, v in enumerate(levels))
    fig.suptitle(f"multi-scale swap ({name}): {shares}", fontsize=9)
    return figure_to_array(fig)


register(
    Variant(
        "multiscale",
        "Style patches taken at several scales (`scales`), so textures of another size can match (journal 10/12).",
        swap,
        view,
        "scale_map",
        knobs=MultiscaleKnobs,
        matched=matched,
    )
)
