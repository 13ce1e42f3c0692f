"""The weights a run starts from (`init_from`), as APDrawingGAN fine-tunes from its pre-training
checkpoint (`--continue_train`): a run of this lab, a labkit checkpoint, pix2pix's or
APDrawingGAN's own saved networks.

Upstream saves each network in a file of its own, `<epoch>_net_<name>.pth` (pix2pix: G and D;
APDrawingGAN also the six local generators GLEyel ... GLBG, their fusion GCombine and the six local
discriminators DLEyel ... DLBG), or (APDrawingGAN's save_networks2) all generators in one
`<epoch>_net_gen.pt` and all discriminators in `<epoch>_net_dis.pt`, each a {name: state dict}.
Their key names are labkit's: the U-Nets and PatchGANs are built in the same order, and only the
residual blocks of the fusion network name their layers otherwise (`conv_block`, here `body`).
Only the networks' weights are taken, as upstream's --continue_train takes them: the optimisers,
schedules and the epoch count start afresh.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import torch

from ..models.local import FACE_PARTS, REGIONS
from ..paths import checkpoints_dir, project_root
from .checkpoint import Checkpoints


class InitFromError(ValueError):
    """init_from names nothing this run can start from; the message says what and the fix."""


# upstream's network names -> where labkit's model keeps that network
_PARTS = dict(zip(("Eyel", "Eyer", "Nose", "Mouth", "Hair", "BG"), (*FACE_PARTS, *REGIONS)))
LOCAL_NETWORKS = {
    "G": "G.global_net",
    **{f"GL{name}": f"G.{'parts' if part in FACE_PARTS else 'regions'}.{part}" for name, part in _PARTS.items()},
    "GCombine": "G.fusion",
    "D": "D",
    **{f"DL{name}": f"D_parts.nets.{part}" for name, part in _PARTS.items()},
}
GLOBAL_NETWORKS = {"G": "G", "D": "D"}
UPSTREAM_FILE = re.compile(r"(?P<epoch>.+)_net_(?P<name>[A-Za-z]+)\.pth")


def where(source: str) -> Path:
    """init_from as a path: as given, or relative to the lab's folder (params files name them so)."""
    path = Path(source).expanduser()
    return path if path.is_absolute() or path.exists() else project_root() / path


def looks_like_a_path(source: str) -> bool:
    """A file or folder, not a run's name or id."""
    return "/" in source or source.endswith((".pt", ".pth"))


def networks_of(model) -> dict[str, torch.nn.Module]:
    """The model's networks by upstream's names (those it has: no local ones without `local`)."""
    names = LOCAL_NETWORKS if model.cfg.local else GLOBAL_NETWORKS
    found = {}
    for name, where in names.items():
        net = model
        for attribute in where.split("."):
            net = net[attribute] if isinstance(net, torch.nn.ModuleDict) else getattr(net, attribute, None)
            if net is None:
                break
        if net is not None:
            found[name] = net
    return found


def read_upstream(path: Path) -> dict[str, dict]:
    """{upstream network name: state dict} from one of upstream's files, or from a folder (its
    `latest_*` files, as --continue_train reads them)."""
    if path.is_dir():
        files = sorted(path.glob("latest_net_*.pth")) + sorted(path.glob("latest_net_*.pt"))
        if not files:
            raise InitFromError(
                f"init_from={str(path)!r}: the folder holds no latest_net_*.pth (pix2pix, APDrawingGAN)"
            )
        return {k: v for f in files for k, v in read_upstream(f).items()}
    if path.name.endswith(("_net_gen.pt", "_net_dis.pt")):  # save_networks2: every network in one file
        partner = path.with_name(path.name.replace("_net_gen.pt", "_net_dis.pt"))
        more = _load(partner) if partner != path and partner.is_file() else {}
        return {**_load(path), **more}
    match = UPSTREAM_FILE.fullmatch(path.name)
    if not match:
        raise InitFromError(
            f"init_from={str(path)!r}: not a file name upstream writes (<epoch>_net_<name>.pth, "
            "<epoch>_net_gen.pt) nor a labkit checkpoint (model.pt)"
        )
    # the other networks saved at the same epoch beside it (D beside G, the local networks)
    siblings = sorted(path.parent.glob(f"{match['epoch']}_net_*.pth"))
    return {UPSTREAM_FILE.fullmatch(f.name)["name"]: _load(f) for f in siblings if UPSTREAM_FILE.fullmatch(f.name)}


def _load(path: Path) -> dict:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        reason = (str(exc).splitlines() or [type(exc).__name__])[0][:200]
        raise InitFromError(f"init_from={str(path)!r}: cannot read it ({reason})") from None


def _as_labkit(name: str, state: dict) -> dict:
    """Upstream's state dict under labkit's key names: the fusion's residual blocks' layers, and
    the BatchNorm counters that PyTorch before 0.4.1 did not save (upstream's published weights)."""
    state = {k.removeprefix("module."): v for k, v in state.items() if k != "_metadata"}
    if name == "GCombine":
        state = {k.replace(".conv_block.", ".body."): v for k, v in state.items()}
    return state


def _put(name: str, net: torch.nn.Module, state: dict, source: str) -> None:
    own = net.state_dict()
    for key in own:  # BatchNorm's step counter, not saved by PyTorch before 0.4.1: it never enters a forward pass
        if key.endswith("num_batches_tracked") and key not in state:
            state[key] = own[key]
    missing, extra = sorted(set(own) - set(state)), sorted(set(state) - set(own))
    wrong = [
        f"{k} {tuple(state[k].shape)} there, {tuple(own[k].shape)} here"
        for k in own
        if k in state and state[k].shape != own[k].shape
    ]
    if missing or extra or wrong:
        raise InitFromError(
            f"init_from={source!r}: its network {name} does not fit this run's "
            + "; ".join(
                text
                for text in (
                    f"missing {', '.join(missing[:4])}" if missing else "",
                    f"not here {', '.join(extra[:4])}" if extra else "",
                    f"other shapes: {'; '.join(wrong[:3])}" if wrong else "",
                )
                if text
            )
            + ". Set image_size, ngf, ndf, sketch_channels and fusion as the checkpoint's run had them"
        )
    net.load_state_dict(state)


def start_from(model, source: str, client=None) -> str:
    """Load the weights `source` names into the model's networks (a run's found through the MLflow
    client); what was loaded, for the run's tag: the networks, the file(s) and a digest."""
    path = where(source)
    if path.is_file() and path.suffix == ".pt" and "_net_" not in path.name:
        state = _load(path)
        if "model" not in state:
            raise InitFromError(f"init_from={source!r}: not a labkit checkpoint (no 'model' in it)")
        networks = _networks_in_labkit_state(model, state["model"])
    elif path.exists():
        networks = read_upstream(path)
    else:
        networks = _networks_in_labkit_state(model, _run_checkpoint(source, client)["model"])
    ours = networks_of(model)
    unknown = sorted(set(networks) - set(ours))
    if "G" not in networks:
        raise InitFromError(
            f"init_from={source!r}: holds no generator (found {', '.join(sorted(networks)) or 'nothing'})"
        )
    for name, net in ours.items():
        if name in networks:
            _put(name, net, _as_labkit(name, dict(networks[name])), source)
    digest = hashlib.sha256()
    for name in sorted(set(networks) & set(ours)):
        for key, value in sorted(networks[name].items()):
            digest.update(key.encode() + value.detach().cpu().numpy().tobytes())
    loaded, fresh = sorted(set(networks) & set(ours)), sorted(set(ours) - set(networks))
    return (
        f"{source}: {', '.join(loaded)} (sha256 {digest.hexdigest()[:16]})"
        + (f"; not in it, initialised afresh: {', '.join(fresh)}" if fresh else "")
        + (f"; not used here: {', '.join(unknown)}" if unknown else "")
    )


def _run_checkpoint(source: str, client) -> dict:
    """The newest checkpoint of the run `source` names: its id (or the start of it), else its name
    (the newest run of that name that has one)."""
    root = checkpoints_dir()
    ids = sorted(p.name for p in root.glob(f"{source}*") if (p / "model.pt").is_file()) if root.is_dir() else []
    if not ids and client is not None:
        named = client.search_runs(
            [e.experiment_id for e in client.search_experiments()],
            f"attributes.run_name = '{source}'",
            order_by=["attributes.start_time DESC"],
        )
        ids = [r.info.run_id for r in named if Checkpoints(r.info.run_id).path.is_file()][:1]
    if len(ids) != 1:
        raise InitFromError(
            f"init_from={source!r}: no such file or folder, and "
            + (
                f"the start of {len(ids)} runs' ids: give more of it"
                if ids
                else "no run of that name or id has a checkpoint"
            )
        )
    state = Checkpoints(ids[0]).load()
    if state is None:
        raise InitFromError(f"init_from={source!r}: run {ids[0][:8]} has no readable checkpoint")
    return state


def _networks_in_labkit_state(model, state: dict) -> dict[str, dict]:
    """A labkit checkpoint's networks by upstream's names (its G, D and D_parts state dicts)."""
    out = {}
    for name, where in (LOCAL_NETWORKS if model.cfg.local else GLOBAL_NETWORKS).items():
        top, _, rest = where.partition(".")
        if top not in state:
            continue
        prefix = f"{rest}." if rest else ""
        picked = {k[len(prefix) :]: v for k, v in state[top].items() if k.startswith(prefix)}
        if picked:
            out[name] = picked
    return out
