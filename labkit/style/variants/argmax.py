"""argmax: Chen & Schmidt's swap; its view shows where each content patch came from."""

from .variant import Variant, register


def swap(cfg, c, s, _):
    from ..swap import swap

    return swap(c, s, cfg.patch_size, chunk=cfg.chunk)


def view(lab):
    """Each content location coloured by where its style patch sits (red: across, green: down),
    beside the style image under the same colour key."""
    import numpy as np

    from ..views import first_pair, panels, rgb

    name, c_img, s_img, c, s = first_pair(lab)
    out, _, result = lab.stylise(c, s)
    rows, cols = result.bank[0]
    index = result.index[0].cpu()
    key = np.stack([*np.meshgrid(np.linspace(0, 1, cols), np.linspace(0, 1, rows)), np.full((rows, cols), 0.4)], -1)
    source = key.reshape(-1, 3)[index.flatten().numpy()].reshape(*index.shape, 3)
    return panels(
        [rgb(c_img), source, key, rgb(s_img), rgb(out)],
        ["content", "source of each patch", "colour key (style grid)", "style", "output"],
        f"argmax: where the patches came from ({name})",
    )


register(
    Variant(
        "argmax",
        "Chen & Schmidt's swap: each 3x3 content patch takes the style patch of highest normalised "
        "cross-correlation; overlaps are averaged.",
        swap,
        view,
        "correspondence",
    )
)
