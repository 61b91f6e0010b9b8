"""Latent diffusion and the transformer denoiser: the autoencoder run, --latent RUN|auto, --net transformer."""

import json
import subprocess
import sys

import pytest
import torch

import unnoise
from unnoise.cli import main
from unnoise.errors import UnnoiseError
from unnoise.families.autoencoder import AE, latents, reconstruct
from unnoise.losses import denoising_loss
from unnoise.nets.autoencoder import Autoencoder, latent_side
from unnoise.nets.transformer import DiT, default_patch, grid_positions
from unnoise.nets.unet import UNet
from unnoise.paths import make_path


def cli(*args):
    return subprocess.run([sys.executable, "-m", "unnoise", *map(str, args)], capture_output=True, text=True)


def refused(capsys, args, *words):
    """`unnoise ARGS` in this process: exit 2, one line on stderr, naming every word."""
    capsys.readouterr()
    assert main([str(a) for a in args]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    for word in words:
        assert word in lines[0], lines[0]


# ---- the networks --------------------------------------------------------------------------------


def test_latent_sides_and_the_autoencoders_shapes():
    assert [latent_side(s) for s in (8, 16, 28, 32, 64)] == [2, 4, 8, 8, 16]
    ae = Autoencoder(3, 28, latent_channels=4, width=16)
    x = torch.rand(2, 3, 28, 28) * 2 - 1
    mean, logvar = ae.encode(x)
    assert mean.shape == logvar.shape == (2, 4, 8, 8)
    reconstruction, kl = ae(x, torch.Generator().manual_seed(0))
    assert reconstruction.shape == x.shape and kl.shape == (2,) and (kl >= 0).all()


def test_dit_patches_positions_and_a_fresh_net_predicts_zero():
    net = DiT(channels=4, size=8, width=32, depth=2, heads=4, num_classes=10, patch=2)
    x = torch.randn(3, 4, 8, 8)
    assert net(x, torch.rand(3), torch.tensor([0, 1, 10])).abs().max() == 0  # DiT's zero-initialized last layer
    torch.nn.init.normal_(net.out.weight)
    assert net(x, torch.rand(3)).shape == x.shape
    pos = grid_positions(4, 32)
    assert pos.shape == (16, 32) and torch.cdist(pos, pos).fill_diagonal_(9).min() > 0.1  # every patch distinct
    assert [default_patch(s) for s in (8, 16, 28, 32)] == [1, 2, 4, 4]
    with pytest.raises(UnnoiseError, match=r"--patch 3 does not divide the 8x8 .* try 1, 2, 4, 8"):
        DiT(size=8, patch=3)


def gaussian_images(n, generator, mu, std):
    return mu + std * torch.randn((n,) + mu.shape, generator=generator)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["unet", "transformer"])
def test_the_denoiser_learns_the_closed_form_posterior_mean_of_gaussian_images(kind):
    """x0 ~ N(mu, diag(std^2)) per pixel: E[x0 | x_t] = mu + a std^2 / (a^2 std^2 + s^2) (x_t - a mu). Trained with
    the diffusion loss, U-Net and DiT must both come within a tenth of the posterior's own spread of it."""
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)
    mu = torch.linspace(-0.8, 0.8, 64).view(1, 8, 8)
    std = torch.linspace(0.1, 0.6, 64).flip(0).view(1, 8, 8)
    path = make_path("vp-cosine")
    net = UNet(1, width=16, size=8) if kind == "unet" else DiT(1, 8, width=64, depth=2, heads=4, patch=2)
    opt = torch.optim.Adam(net.parameters(), lr=2e-3)
    for _ in range(400):
        x0 = gaussian_images(64, generator, mu, std)
        t = torch.rand(64, generator=generator, dtype=torch.float64) * 0.9 + 0.05
        eps = torch.randn(x0.shape, generator=generator)
        loss = denoising_loss(net, path, "v", x0, None, generator, eps=eps, t=t)
        opt.zero_grad(), loss.backward(), opt.step()
    x0 = gaussian_images(512, generator, mu, std)
    for t in (0.3, 0.6, 0.9):
        a, s = float(path.alpha(torch.tensor(t))), float(path.sigma(torch.tensor(t)))
        xt = a * x0 + s * torch.randn(x0.shape, generator=generator)
        exact = mu + a * std**2 / (a**2 * std**2 + s**2) * (xt - a * mu)
        tt = torch.full((512,), t, dtype=torch.float64)
        with torch.no_grad():
            out = net(path.net_input(xt, tt), path.net_time(tt))
        predicted, _ = path.to_x0_eps("v", out, xt, torch.tensor(t, dtype=torch.float64))
        error = (predicted - exact).square().mean()
        spread = (std**2 * s**2 / (a**2 * std**2 + s**2)).mean()  # E (x0 - E[x0 | x_t])^2: what no net can beat
        assert error < 0.1 * spread, (kind, t, float(error), float(spread))


# ---- the runs ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """An autoencoder of digits (300 steps), a latent U-Net run copied onto it and a latent DiT run with its own."""
    root = tmp_path_factory.mktemp("latent")
    ae = unnoise.pipeline.train(unnoise.TrainConfig(data="digits", family="ae", steps=300), root / "ae", progress=False)
    brief = pytest.MonkeyPatch()
    brief.setitem(AE.defaults, "steps", 100)  # what --latent auto trains, kept short here
    unet = unnoise.pipeline.train(
        unnoise.TrainConfig(data="digits", latent=str(root / "ae"), steps=150, conditional=True),
        root / "unet",
        progress=False,
    )
    dit = unnoise.pipeline.train(
        unnoise.TrainConfig(data="digits", family="flow", latent="auto", net="transformer", steps=100, width=32),
        root / "dit",
        progress=False,
    )
    brief.undo()
    return root, ae, unet, dit


@pytest.mark.slow
def test_the_autoencoder_round_trips_held_out_digits(runs):
    _, ae, _, _ = runs
    x = ae.dataset.x[:200]  # held-out digits in [0, 1]
    rmse = float((reconstruct(ae.net, x) - x).square().mean().sqrt())
    assert rmse < 0.12, rmse  # a mean image would be 0.3 away
    with pytest.raises(UnnoiseError, match="does not sample; train a latent model on it"):
        ae.sample(4)


@pytest.mark.slow
def test_a_latent_run_trains_on_unit_variance_latents_and_decodes_to_images(runs):
    root, ae, unet, _ = runs
    cfg = unet.cfg
    train = unnoise.data.load("digits", "train", size=8)
    z = (latents(unet.latent, train.normalize(train.x)) - cfg.latent_shift) / cfg.latent_scale
    assert abs(float(z.std()) - 1) < 1e-4 and abs(float(z.mean())) < 1e-4
    assert unet.shape == (4, 2, 2) and unet.latent is not None
    assert cfg.autoencoder_hash == unnoise.store.digest(root / "ae")  # the copy is the run it was given
    assert (root / "unet" / "autoencoder" / "model.safetensors").read_bytes() == (
        root / "ae" / "model.safetensors"
    ).read_bytes()
    x = unet.sample(6, nfe=10, label=3)
    assert x.shape == (6, 1, 8, 8) and x.min() >= 0 and x.max() <= 1
    assert unet.cfg.net == "unet" and unet.cfg.patch == 1


@pytest.mark.slow
def test_latent_auto_trains_its_own_autoencoder_and_dit_samples(runs):
    root, _, _, dit = runs
    assert (root / "dit" / "autoencoder" / "config.json").exists()
    assert isinstance(dit.net, DiT) and dit.cfg.latent == "auto"
    x = dit.sample(4, nfe=4)
    assert x.shape == (4, 1, 8, 8) and torch.isfinite(x).all()
    again = unnoise.Run.load(root / "dit")  # a reload builds the same net on the same autoencoder
    assert torch.equal(again.sample(4, nfe=4), x)


@pytest.mark.slow
def test_a_latent_run_refuses_a_changed_autoencoder(runs, tmp_path):
    import shutil

    root, _, _, _ = runs
    copy = tmp_path / "unet"
    shutil.copytree(root / "unet", copy)
    weights = copy / "autoencoder" / "model.safetensors"
    tensors = unnoise.checkpoint.load_tensors(weights)
    name = next(iter(tensors))
    tensors[name] = tensors[name] + 1
    unnoise.checkpoint.save_tensors(weights, tensors)
    with pytest.raises(UnnoiseError, match="is not the autoencoder"):
        unnoise.Run.load(copy)


@pytest.mark.slow
def test_bad_input_of_latent_runs_is_one_line_and_exit_2(runs, tmp_path, capsys):
    root, _, _, _ = runs
    ae, out = root / "ae", tmp_path / "x"
    refused(capsys, ["train", "--data", "mnist", "--latent", ae, "--out", out], "digits", "mnist")
    refused(capsys, ["train", "--data", "digits", "--latent", root / "unet", "--out", out], "not an autoencoder")
    refused(capsys, ["train", "--data", "digits", "--latent", tmp_path / "none", "--out", out], "not an autoencoder")
    refused(capsys, ["train", "--data", "digits", "--size", "16", "--latent", ae, "--out", out], "8x8", "16x16")
    refused(capsys, ["sample", ae, "--out", tmp_path / "x.png"], "does not sample")
    refused(capsys, ["train", "--data", "digits", "--net", "transformer", "--patch", "3", "--out", out], "--patch 3")
    refused(capsys, ["train", "--data", "moons", "--latent", "auto", "--out", out], "for image data")
    refused(capsys, ["train", "--data", "digits", "--family", "ar", "--latent", "auto", "--out", out], "--latent")
    refused(capsys, ["train", "--data", "digits", "--latent-channels", "8", "--out", out], "--latent auto")
    refused(capsys, ["likelihood", root / "unet"], "latents")
    assert not any(tmp_path.glob("*/config.json"))  # nothing written
    result = cli("sample", ae, "--out", tmp_path / "y.png")  # the console script: exit 2, no traceback
    assert result.returncode == 2 and "Traceback" not in result.stderr


@pytest.mark.slow
def test_evaluate_reports_the_autoencoders_ceiling(runs):
    root, _, _, _ = runs
    out = cli("evaluate", root / "ae", "--json")
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["rmse"] < 0.12 and result["reconstruction_fid"] > 0 and result["latent_scale"] > 0


def test_the_step_families_and_edm_take_the_transformer():
    for family in ("meanflow", "shortcut", "edm", "consistency"):
        cfg = unnoise.TrainConfig(data="digits", family=family, net="transformer", width=32, channels=1)
        net = unnoise.families.of(cfg).build(cfg, 10)
        assert isinstance(net, DiT) and cfg.patch == 1
    with pytest.raises(UnnoiseError, match="--width 30 must be a multiple of the 4 heads"):
        unnoise.TrainConfig(data="digits", net="transformer", width=30)
    with pytest.raises(UnnoiseError, match="not reflow, nor distilled"):
        unnoise.TrainConfig(data="digits", family="consistency", latent="auto", teacher="x")


def test_configs_saved_before_latents_still_load():
    """Before --latent, every config.json held latent_channels 16 (a vq setting) and no latent or net: they load."""
    for data, family in (("digits", "diffusion"), ("moons", "flow"), ("markov", "mdlm"), ("digits", "vq")):
        saved = {k: v for k, v in unnoise.TrainConfig(data=data, family=family).to_dict().items()}
        for name in ("latent", "net", "autoencoder_hash", "latent_shift", "latent_scale"):
            saved.pop(name)
        saved["latent_channels"] = 16
        cfg = unnoise.TrainConfig.from_dict(saved)
        assert cfg.latent is None and cfg.latent_channels == (16 if family == "vq" else None)


def test_emoji_trains_in_a_latent_by_default_on_the_command_line(capsys):
    """`unnoise train --data emoji` picks --latent auto for the continuous families and says so; --latent none
    keeps pixels; other data and the token families are untouched; a saved emoji pixel run loads as pixels, and
    the page's rebuild command for it says --latent none."""
    from unnoise.cli import build_parser
    from unnoise.cli.train import config_of
    from unnoise.config import train_arguments

    def config(*words):
        return config_of(build_parser().parse_args(["train", *words, "--out", "x"]))

    capsys.readouterr()
    assert config("--data", "emoji").latent == "auto" and config("--data", "emoji", "--family", "flow").latent == "auto"
    assert "--latent none trains on pixels" in capsys.readouterr().err
    assert config("--data", "emoji", "--latent", "none").latent is None
    assert config("--data", "emoji", "--family", "ar").latent is None
    assert (
        config("--data", "mnist").latent is None
        and config("--data", "emoji", "--family", "consistency", "--teacher", "t").latent is None
    )
    pixels = unnoise.TrainConfig(data="emoji")
    assert unnoise.TrainConfig.from_dict(pixels.to_dict()).latent is None  # a run saved with latent None
    words = " ".join(train_arguments(pixels, "emoji")).split()
    assert "--latent none" in " ".join(words) and config("--data", "emoji", *words).to_dict() == pixels.to_dict()
