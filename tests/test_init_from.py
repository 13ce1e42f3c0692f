"""init_from: a run starts from another's weights, a labkit checkpoint's, or pix2pix's and
APDrawingGAN's own saved networks, laid out with their key names and file names."""

import pytest
import torch

from labkit import keys, track
from labkit.train import Pix2Pix
from labkit.train.init_from import LOCAL_NETWORKS, InitFromError, networks_of, start_from


def _upstream_layout(name: str, net: torch.nn.Module) -> dict:
    """A network's state dict as APDrawingGAN saves it: the fusion's residual blocks named
    `conv_block`, and (its published weights predate PyTorch 0.4.1) no BatchNorm step counters."""
    state = {k: v.clone() for k, v in net.state_dict().items() if not k.endswith("num_batches_tracked")}
    return {k.replace(".body.", ".conv_block."): v for k, v in state.items()} if name == "GCombine" else state


def _same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def test_apdrawinggans_saved_networks_load_under_their_names(tiny_cfg, tmp_path):
    cfg = tiny_cfg(local=True)
    torch.manual_seed(1)
    trained = Pix2Pix(cfg, torch.device("cpu"))
    assert set(networks_of(trained)) == set(LOCAL_NETWORKS)  # all 15 of upstream's networks
    for name, net in networks_of(trained).items():  # save_networks: one file a network
        torch.save(_upstream_layout(name, net), tmp_path / f"latest_net_{name}.pth")
    torch.manual_seed(2)
    fresh = Pix2Pix(cfg, torch.device("cpu"))
    assert not _same_weights(fresh.G, trained.G)
    said = start_from(fresh, str(tmp_path / "latest_net_G.pth"))  # the networks saved beside it come too
    assert _same_weights(fresh.G, trained.G) and _same_weights(fresh.D_parts, trained.D_parts)
    assert said.startswith(f"{tmp_path / 'latest_net_G.pth'}: D, DLBG") and "sha256" in said

    # save_networks2: every generator in one file, every discriminator in another
    generators = {n: _upstream_layout(n, net) for n, net in networks_of(trained).items() if n.startswith("G")}
    torch.save(generators, tmp_path / "300_net_gen.pt")
    torch.manual_seed(3)
    other = Pix2Pix(cfg, torch.device("cpu"))
    said = start_from(other, str(tmp_path / "300_net_gen.pt"))
    assert _same_weights(other.G, trained.G) and "initialised afresh: D, DLBG" in said


def test_pix2pixs_generator_and_a_labkit_checkpoint_load(tiny_cfg, tmp_path):
    cfg = tiny_cfg()
    torch.manual_seed(1)
    trained = Pix2Pix(cfg, torch.device("cpu"))
    torch.save(trained.G.state_dict(), tmp_path / "latest_net_G.pth")  # pix2pix's key names are labkit's
    fresh = Pix2Pix(cfg, torch.device("cpu"))
    assert "initialised afresh: D" in start_from(fresh, str(tmp_path))  # a folder: its latest_net_*.pth
    assert _same_weights(fresh.G, trained.G)
    torch.save({"model": trained.state_dict(), "epoch": 3}, tmp_path / "model.pt")
    again = Pix2Pix(cfg, torch.device("cpu"))
    start_from(again, str(tmp_path / "model.pt"))
    assert _same_weights(again.G, trained.G) and _same_weights(again.D, trained.D)


def test_a_checkpoint_of_another_shape_or_kind_is_refused_naming_the_fix(tiny_cfg, tmp_path):
    torch.save(Pix2Pix(tiny_cfg(ngf=4), torch.device("cpu")).G.state_dict(), tmp_path / "latest_net_G.pth")
    with pytest.raises(InitFromError, match=r"network G does not fit this run's other shapes.*Set image_size, ngf"):
        start_from(Pix2Pix(tiny_cfg(ngf=8), torch.device("cpu")), str(tmp_path / "latest_net_G.pth"))
    (tmp_path / "weights.bin").write_bytes(b"")
    with pytest.raises(InitFromError, match="not a file name upstream writes"):
        start_from(Pix2Pix(tiny_cfg(), torch.device("cpu")), str(tmp_path / "weights.bin"))
    missing = tiny_cfg(init_from="checkpoints/nowhere")
    assert "init_from='checkpoints/nowhere': no such file or folder" in " ".join(missing.check_inputs())


@pytest.mark.slow
def test_a_run_starts_from_another_runs_weights_and_says_so(lab, tiny_cfg):
    from labkit.data import load_faces
    from labkit.train import fit
    from labkit.train.loop import prepare, resume

    first = tiny_cfg(experiment="pre", n_epochs_decay=0)
    with track.open_run(first) as run:
        trained = fit(first, load_faces(first, progress=False), run, progress=False)
    for reference in (trained.run.run_id[:8], run.client.get_run(run.run_id).info.run_name):  # an id's start, a name
        cfg = tiny_cfg(experiment="fine", init_from=reference)
        with track.open_run(cfg) as fine:
            t = prepare(cfg, load_faces(cfg, progress=False), fine)
            resume(t)  # no checkpoint of its own yet: init_from's weights
            assert _same_weights(t.model.G, trained.model.G)
            assert fine.client.get_run(fine.run_id).data.tags[keys.INIT_FROM].startswith(f"{reference}: D, G")
