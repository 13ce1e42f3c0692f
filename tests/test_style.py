"""The style lab: VGG encoder and its input convention, decoders, decoder training with
resume, swap runs through their notebooks, stylize on folders."""

import dataclasses
import warnings

import numpy as np
import pytest
import torch
import torchvision
import yaml
from PIL import Image

from labkit import cli, keys, track
from labkit import weights as weights_module
from labkit.config import StyleConfig
from labkit.style import images as style_images
from labkit.style import training as style_training
from labkit.style.decoder import KINDS, Decoder
from labkit.style.vgg import CAFFE_MEAN_BGR, InputRangeWarning, VGGEncoder, build_encoder
from labkit.train import Checkpoints, NonFiniteLoss
from labkit.weights import VGG19_URL

SMALL = dict(
    image_size=32, vgg_weights="random-init", steps=6, batch_size=2, log_every=2, checkpoint_every=3, device="cpu"
)


def test_caffe_preprocessing_is_bgr_0_255_minus_the_mean():
    enc = VGGEncoder("random-init", convention="caffe", channel_order="bgr")
    pixel = torch.tensor([0.2, 0.4, 0.6]).view(1, 3, 1, 1)  # R, G, B
    out = enc.preprocess(pixel).flatten()
    expected = torch.tensor(
        [0.6 * 255 - CAFFE_MEAN_BGR[0], 0.4 * 255 - CAFFE_MEAN_BGR[1], 0.2 * 255 - CAFFE_MEAN_BGR[2]]
    )
    assert torch.allclose(out, expected, atol=1e-4)
    rgb = VGGEncoder("random-init", convention="caffe", channel_order="rgb").preprocess(pixel).flatten()
    assert torch.allclose(rgb, expected.flip(0), atol=1e-4)


@pytest.mark.parametrize(
    "convention,fed,fires",
    [
        ("caffe", lambda e, x: x, True),  # 0-1 fed to a ±127 network: the user's bug
        ("caffe", lambda e, x: e.preprocess(x), False),
        ("torchvision", lambda e, x: x * 255, True),  # 0-255 fed to a normalised network
        ("torchvision", lambda e, x: x, True),  # raw 0-1, not normalised
        ("torchvision", lambda e, x: e.preprocess(x), False),
    ],
)
def test_the_range_check_fires_on_the_wrong_convention(convention, fed, fires):
    enc = VGGEncoder("random-init", convention=convention)
    x = torch.rand(1, 3, 32, 32)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        enc(fed(enc, x), ("relu1_1",))
    hits = [w for w in caught if issubclass(w.category, InputRangeWarning)]
    assert bool(hits) == fires
    if fires:
        assert "VGG INPUT RANGE" in str(hits[0].message) and "preprocess" in str(hits[0].message)


def test_vgg_weights_load_from_the_hub_cache_or_say_where_to_put_them(lab, monkeypatch):
    def offline(url, dest, timeout=30.0):
        raise OSError("network unreachable")

    monkeypatch.setattr(weights_module, "_download", offline)
    with pytest.raises(weights_module.WeightsUnavailable, match="vgg19-dcbb9e9d.pth"):
        VGGEncoder("imagenet")
    path = weights_module.hub_path(VGG19_URL.rsplit("/", 1)[-1])
    path.parent.mkdir(parents=True)
    reference = torchvision.models.vgg19(weights=None)
    torch.save(reference.state_dict(), path)  # weights the test makes, where torchvision's would be
    enc = VGGEncoder("imagenet")
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        expected = reference.features[:21](enc.preprocess(x))
        assert torch.allclose(enc(enc.preprocess(x), ("relu4_1",))["relu4_1"], expected)


@pytest.mark.parametrize("kind", KINDS)
def test_decoders_invert_the_feature_shapes(kind):
    enc = VGGEncoder("random-init")
    decoder = Decoder(kind)
    feats = enc.encode(torch.rand(2, 3, 48, 64), decoder.inputs)
    assert decoder(feats).shape == (2, 3, 48, 64)


def test_decoder_training_resumes_where_it_stopped(lab, monkeypatch, capsys):
    """... with its gradient scaler (fp16's loss scale) in the checkpoint, and eagerly: a decoder
    is not compiled, and its run says so whatever `compile` asks."""
    cfg = StyleConfig(
        ablation="decoder_train", train_with_swap=True, lambda_adain=1.0, lambda_tv=0.1, compile="on", **SMALL
    )
    content = style_images.load_images("", style_images.DEFAULT_CONTENT, 32)
    style = style_images.load_images("", style_images.DEFAULT_STYLE, 32)
    encoder = build_encoder(cfg, torch.device("cpu"))
    reference = style_training.train_decoder(cfg, encoder, content, style, track.open_run(cfg), progress=False)

    original = track.Run.log_metrics

    def dies_at_step_6(self, values, step=None):
        if step == 6:
            raise KeyboardInterrupt
        original(self, values, step)

    monkeypatch.setattr(track.Run, "log_metrics", dies_at_step_6)
    run = track.open_run(cfg)
    with pytest.raises(KeyboardInterrupt):
        style_training.train_decoder(cfg, encoder, content, style, run, progress=False)
    monkeypatch.setattr(track.Run, "log_metrics", original)
    with pytest.raises(RuntimeError, match=r"other settings \(lr"):  # one identity, as for the face runs
        style_training.train_decoder(
            dataclasses.replace(cfg, lr=0.1), encoder, content, style, track.open_run(cfg, run_id=run.run_id)
        )
    resumed = style_training.train_decoder(
        cfg, encoder, content, style, track.open_run(cfg, run_id=run.run_id), progress=False
    )
    assert resumed.resumed_from == 3 and "resuming decoder training" in capsys.readouterr().out
    assert "scaler" in Checkpoints(run.run_id, "decoder").load()
    assert "eager" in track.client().get_run(run.run_id).data.tags[keys.SPEED]
    for name, tensor in reference.decoder.state_dict().items():
        assert torch.allclose(tensor, resumed.decoder.state_dict()[name], atol=1e-6), name
    logged = track.client().get_run(run.run_id).data.metrics
    assert {"loss", "loss_pixel", "loss_feature", "loss_tv", "loss_adain"} <= set(logged)


def test_a_non_finite_decoder_loss_stops_the_run_before_its_checkpoint(lab, monkeypatch):
    """The decoder loop runs on the runner the face loop uses: a non-finite loss is named by its
    step, and the checkpoint due at that step is not written."""
    cfg = StyleConfig(ablation="decoder_train", **SMALL)
    content = style_images.load_images("", style_images.DEFAULT_CONTENT, 32)
    encoder = build_encoder(cfg, torch.device("cpu"))
    losses, steps = style_training._losses, []

    def nan_at_step_3(*args):
        terms = losses(*args)
        steps.append(len(steps) + 1)
        return {**terms, "pixel": terms["pixel"] * float("nan")} if len(steps) == 3 else terms

    monkeypatch.setattr(style_training, "_losses", nan_at_step_3)
    run = track.open_run(cfg)
    with pytest.raises(NonFiniteLoss, match=r"loss_pixel=nan.* of the decoder at step 3\. no checkpoint was written"):
        style_training.train_decoder(cfg, encoder, content, content, run, progress=False)
    assert steps == [1, 2, 3] and Checkpoints(run.run_id, "decoder").load() is None
    assert [s for s, _ in run.metric_history("loss")] == [2]


def _params(tmp_path, name, **values):
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump({"experiment": "style-test", **SMALL, **values}))
    return path


@pytest.mark.slow
def test_swap_notebooks_run_tracked_and_stylize_reuses_the_decoder(lab, tmp_path, capsys):
    decoder = _params(tmp_path, "dec", ablation="decoder_train", decoder_kind="relu4_1+relu3_1")
    multilayer = _params(tmp_path, "ml", ablation="swap_multilayer", decoder_kind="relu4_1+relu3_1", decoder_run="dec")
    softmax = _params(tmp_path, "soft", ablation="swap_softmax", temperature=0.1)
    avatar = _params(tmp_path, "av", ablation="swap_avatar", patch_size=5, decoder_kind="avatar")
    assert cli.main(["ablate", str(decoder), "--no-progress"]) == 0
    assert cli.main(["ablate", str(multilayer), str(softmax), str(avatar), "--no-progress"]) == 0
    c = track.client()
    exp = c.get_experiment_by_name("style-test").experiment_id
    runs = {r.info.run_name: r for r in c.search_runs([exp])}
    for name in ("ml-s0", "soft-s0", "av-s0"):
        metrics = runs[name].data.metrics
        for key in ("content_loss", "style_loss", "distinct_patches", "tv", "swap_seconds", "peak_rss_mb"):
            assert key in metrics, (name, key)
        assert runs[name].data.tags["style.vgg_weights"] == "random-init"
        assert runs[name].data.tags["style.comparable"].startswith("NO")
        images = [a.path for a in c.list_artifacts(runs[name].info.run_id, "images")]
        assert any("stylised" in p for p in images) and any("swap_heatmaps" in p for p in images)
    assert "loss_feature" in runs["soft-s0"].data.metrics  # no decoder_run: it trained its own
    assert any("decorator" in a.path for a in c.list_artifacts(runs["av-s0"].info.run_id, "images"))

    # the style lab's term summary: its swap measures as the runs logged them, each grid, the decoder
    assert cli.main(["log", "add", "softmax blurs run:soft-s0\n## Ideas\n- a sharper temperature"]) == 0
    assert cli.main(["report", "--experiment", "style-test"]) == 0
    folder = lab / "report" / "style-test"
    report = (folder / "report.md").read_text()
    soft = runs["soft-s0"].data.metrics
    row = next(line for line in report.splitlines() if line.startswith("| swap_softmax |"))
    content_loss, style_loss = (float(cell) for cell in row.split("|")[3:5])  # 3 significant digits
    assert content_loss == pytest.approx(soft["content_loss"], rel=5e-3), row
    assert style_loss == pytest.approx(soft["style_loss"], rel=5e-3), row
    assert (
        "### swap_multilayer" in report
        and "layers=relu4_1+relu3_1" in report
        and "temperature=0.1" in report
        and "decoder: relu4_1+relu3_1" in report
    )
    assert "**Smoke numbers" in report and "## Decoders" in report and "- dec-s0: relu4_1+relu3_1" in report
    assert "softmax blurs" in report and "## Next term\n\n- a sharper temperature" in report
    assert (folder / "report.html").read_text().count("data:image/png;base64") == 4  # trade-off, 3 grids
    assert r"\toprule" in (folder / "table.tex").read_text() and "swap\\_avatar" in (folder / "table.tex").read_text()

    content_dir, style_dir = tmp_path / "content", tmp_path / "style"
    content_dir.mkdir()
    style_dir.mkdir()
    for i in range(3):
        Image.fromarray((np.random.default_rng(i).random((40, 48, 3)) * 255).astype(np.uint8)).save(
            content_dir / f"c{i}.png"
        )
    Image.fromarray((np.random.default_rng(9).random((40, 40, 3)) * 255).astype(np.uint8)).save(style_dir / "s.png")
    out = tmp_path / "out"
    capsys.readouterr()
    assert (
        cli.main(
            [
                "stylize",
                "--content",
                str(content_dir),
                "--style",
                str(style_dir),
                "--variant",
                "multilayer",
                "--decoder-run",
                "dec",
                "--out",
                str(out),
                "--set",
                "vgg_weights=random-init",
                "--set",
                "decoder_kind=relu4_1+relu3_1",
                "--set",
                "image_size=32",
                "--no-progress",
            ]
        )
        == 0
    )
    assert sorted(p.name for p in out.iterdir()) == [f"c{i}__s__multilayer.png" for i in range(3)]
    assert cli.main(["stylize", "--variant", "argmax", "--out", str(out)]) == 2  # no decoder: refused, explained
    assert "needs a trained decoder" in capsys.readouterr().err


def test_the_avatar_decoder_takes_its_skip_statistics_from_the_style():
    """Avatar-Net's hourglass decoder: AdaIN before the convs that mirror relu3_1, relu2_1 and
    relu1_1; an autoencoder without a style (its own features), a stylist with one."""
    from labkit.style.decoder import adain

    torch.manual_seed(0)
    x, skip = torch.randn(2, 8, 5, 6), 3 + 2 * torch.randn(2, 8, 7, 4)
    out = adain(x, skip)
    assert torch.allclose(out.mean((2, 3)), skip.mean((2, 3)), atol=1e-5)
    assert torch.allclose(out.std((2, 3), unbiased=False), skip.std((2, 3), unbiased=False), atol=1e-3)
    decoder = Decoder("avatar").eval()
    assert decoder.inputs == ("relu4_1", "relu3_1", "relu2_1", "relu1_1")
    size = {"relu4_1": (512, 4), "relu3_1": (256, 8), "relu2_1": (128, 16), "relu1_1": (64, 32)}
    own = {k: torch.randn(1, c, s, s) for k, (c, s) in size.items()}
    style = {k: 5 * torch.randn(1, c, s, s) + 1 for k, (c, s) in size.items()}
    with torch.no_grad():
        plain, styled = decoder(own), decoder(own, style)
        assert torch.equal(plain, decoder(own, own)) and not torch.allclose(plain, styled)
        assert torch.equal(
            styled, decoder({**own, **{k: style[k] for k in ("relu3_1", "relu2_1", "relu1_1")}}, style)
        )  # only the style's skips count when it is given


def test_the_papers_decoder_settings_refuse_the_six_pictures(tmp_path):
    """decoder_chen_schmidt and decoder_avatar are the papers' objectives; planned on scikit-image's
    six pictures, or on torchvision's VGG with Caffe's convention, they are refused, naming the fix."""
    from labkit.config import ParamError
    from labkit.paths import project_root
    from labkit.plan import plan

    params = project_root() / "params"
    for name in ("decoder_chen_schmidt", "decoder_avatar"):
        with pytest.raises(ParamError) as refused:
            plan([params / f"{name}.yaml"])
        assert "content_dir and style_dir are empty" in str(refused.value)
        assert "--set paper_data=false" in str(refused.value) and "vgg_weights to that file" in str(refused.value)
    (tmp_path / "coco" / "train2014").mkdir(parents=True)
    (tmp_path / "wikiart").mkdir()
    (tmp_path / "vgg19-caffe.pth").write_bytes(b"")
    folders = [f"content_dir={tmp_path / 'coco'}", f"style_dir={tmp_path / 'wikiart'}"]
    weights = [f"vgg_weights={tmp_path / 'vgg19-caffe.pth'}"]
    [chen] = plan([params / "decoder_chen_schmidt.yaml"], overrides=folders + weights)
    c = chen.cfg
    assert (c.decoder_kind, c.swap_layer, c.vgg_convention, c.train_with_swap) == ("relu3_1", "relu3_1", "caffe", True)
    assert (c.lambda_pixel, c.lambda_feature, c.lambda_tv, c.lr, c.steps) == (0, 1, 1e-6, 1e-3, 80000)
    [avatar] = plan([params / "decoder_avatar.yaml"], overrides=folders + weights)
    a = avatar.cfg
    assert (a.decoder_kind, a.pixel_loss, a.lambda_pixel, a.lambda_feature, a.lambda_tv) == ("avatar", "mse", 10, 1, 10)
    assert (a.batch_size, a.lr, a.steps) == (8, 1e-4, 120000)
    [swap] = plan([params / "swap_chen_schmidt.yaml"], overrides=weights)
    assert (swap.cfg.ablation, swap.cfg.swap_layer, swap.cfg.patch_size) == ("swap_argmax", "relu3_1", 3)
    [toy] = plan([params / "decoder_avatar.yaml"], overrides=["paper_data=false", *weights])  # said, then allowed
    assert toy.cfg.content_dir == ""


def test_training_with_swap_adds_the_swapped_features_to_every_batch():
    """Chen & Schmidt's decoder decodes each batch's features and their style-swapped version; the
    pixel term compares only the first half, which has pixels to compare with."""
    cfg = StyleConfig(ablation="decoder_train", train_with_swap=True, pixel_loss="mse", decoder_kind="relu3_1", **SMALL)
    encoder, decoder = VGGEncoder("random-init"), Decoder("relu3_1")
    batch, style = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
    seen = []
    decoder.register_forward_hook(lambda module, inputs, out: seen.append(out.shape[0]))
    terms = style_training._losses(cfg, encoder, decoder, batch, style, ("relu1_1", "relu2_1", "relu3_1"))
    assert seen == [4] and set(terms) == {"pixel", "feature"}
    alone = style_training._losses(
        dataclasses.replace(cfg, train_with_swap=False), encoder, decoder, batch, None, ("relu3_1",)
    )
    assert seen[-1] == 2 and alone["pixel"] > 0


def test_folders_laid_out_as_mscoco_and_wikiart_train_a_decoder_reading_as_it_goes(lab, tmp_path, monkeypatch):
    """MSCOCO holds its images flat (train2014/), WikiArt a folder per style: every image under the
    folder counts, and a decoder trains on them reading each crop's picture from disk when drawn."""
    rng = np.random.default_rng(0)
    for path in ("coco/train2014/COCO_0001.jpg", "coco/train2014/COCO_0002.jpg", "coco/train2014/notes.txt"):
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        if path.endswith(".jpg"):
            Image.fromarray(rng.integers(0, 255, (40, 52, 3), dtype=np.uint8)).save(tmp_path / path)
        else:
            (tmp_path / path).write_text("not an image")
    for path in ("wikiart/Cubism/a.jpg", "wikiart/Impressionism/b.png", "wikiart/Impressionism/c.png"):
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (36, 48, 3), dtype=np.uint8)).save(tmp_path / path)
    content = style_images.load_images(str(tmp_path / "coco"), style_images.DEFAULT_CONTENT, 32)
    style = style_images.load_images(str(tmp_path / "wikiart"), style_images.DEFAULT_STYLE, 32)
    assert [name for name, _ in content] == ["COCO_0001", "COCO_0002"] and len(style) == 3
    assert style[1][1].shape == (3, 32, 40)  # short side 32, cut to multiples of 8

    reads = []
    original = style_images.read_image
    monkeypatch.setattr(style_images, "read_image", lambda *a: reads.append(a[0]) or original(*a))
    pictures = style_images.Pictures([content, style], torch.device("cpu"), keep=0)
    assert not reads and len(pictures) == 5 and pictures[3].shape == (3, 32, 40) and len(reads) == 1
    cfg = StyleConfig(ablation="decoder_train", **{**SMALL, "steps": 2, "checkpoint_every": 2})
    monkeypatch.setattr(style_images.Pictures, "__init__", _lazy(style_images.Pictures.__init__))
    encoder = build_encoder(cfg, torch.device("cpu"))
    style_training.train_decoder(cfg, encoder, content, style, track.open_run(cfg), progress=False)
    assert len(reads) > 5  # read as drawn, not once up front
    with pytest.raises(style_images.DataError, match="no images .* found in it or its subfolders"):
        style_images.load_images(str(tmp_path / "coco" / "train2014" / "empty"), (), 32)


def _lazy(init):
    """Pictures that keep none on the device: as for a folder of thousands."""
    return lambda self, sets, device, keep=256: init(self, sets, device, keep=0)
