"""Image runs end to end through the same CLI as 2D: train, sample, evaluate, figures, likelihood, folders."""

import json
import math

import numpy as np
import pytest
import torch
from PIL import Image

import unnoise
from unnoise.cli import main
from unnoise.data.images import load_images

from .test_cli import fails_cleanly


@pytest.fixture(autouse=True)
def _cache_env(classifier_cache, monkeypatch):
    monkeypatch.setenv("UNNOISE_CACHE", str(classifier_cache))


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    """A class-conditional flow U-Net on 8x8 digits, width 16, batch 64, 600 steps (about 35 s on 2 cores)."""
    folder = tmp_path_factory.mktemp("digits") / "run"
    cfg = unnoise.TrainConfig(
        data="digits", family="flow", conditional=True, steps=600, width=16, batch_size=64, seed=0
    )
    return unnoise.train(cfg, folder, progress=False)


def last_json(capsys):
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_image_defaults_are_written_into_the_config(tmp_path):
    run = unnoise.train(unnoise.TrainConfig(data="digits", conditional=True, steps=1), tmp_path / "run", progress=False)
    cfg = unnoise.Run.load(tmp_path / "run").cfg
    assert (cfg.size, cfg.channels, cfg.width, cfg.batch_size) == (8, 1, 32, 32)
    assert run.shape == (1, 8, 8) and run.num_classes == 10


@pytest.mark.slow
def test_images_sample_with_the_sde_solver_at_30_nfe_by_default(digits_run):
    """Images default to dpmpp_2m_sde at 30 NFE (docs/performance.md, "Eighth round"); points keep dpmpp_2m at 20."""
    default = digits_run.sample(10, label="each")
    assert torch.equal(default, digits_run.sample(10, "dpmpp_2m_sde", 30, label="each"))
    assert not torch.allclose(default, digits_run.sample(10, "dpmpp_2m", 20, label="each"), atol=1e-3)
    assert [unnoise.samplers.get(s).default_nfe for s in ("dpmpp_2m", "dpmpp_2m_sde", "ddim")] == [20, 30, 50]


@pytest.mark.slow
def test_sample_and_data_write_images_in_the_same_form(digits_run, tmp_path, capsys):
    assert (
        main(
            [
                "sample",
                str(digits_run.folder),
                "--sampler",
                "euler",
                "--nfe",
                "8",
                "--n",
                "30",
                "--out",
                str(tmp_path / "s.npy"),
            ]
        )
        == 0
    )
    assert main(["data", "digits", "--split", "heldout", "--out", str(tmp_path / "r.npy")]) == 0
    samples, real = np.load(tmp_path / "s.npy"), np.load(tmp_path / "r.npy")
    assert samples.shape == (30, 1, 8, 8) and real.shape == (359, 1, 8, 8)
    assert samples.min() >= 0 and samples.max() <= 1 and real.min() >= 0 and real.max() <= 1
    assert abs(samples.mean() - real.mean()) < 0.1  # same units: mean ink ~0.3 in both
    assert main(["data", "digits", "--n", "20", "--out", str(tmp_path / "grid.png")]) == 0
    assert Image.open(tmp_path / "grid.png").size[0] > 100


@pytest.mark.slow
def test_short_training_already_draws_the_asked_class(digits_run, capsys):
    """Measured on the fixture's run (seed 0): class accuracy 0.94, FID 5.7 x floor, memorization ratio 1.14."""
    assert main(["evaluate", str(digits_run.folder), "--sampler", "euler", "--nfe", "10", "--n", "360", "--json"]) == 0
    result = last_json(capsys)
    for key in (
        "fid",
        "fid_floor",
        "kid",
        "kid_floor",
        "precision",
        "recall",
        "class_accuracy",
        "memorization_ratio",
        "n",
        "nfe",
        "sample_seconds",
    ):
        assert key in result, key
    assert result["n"] == 359 and result["nfe"] == 10
    assert result["class_accuracy"] >= 0.85
    assert result["fid"] <= 20 * result["fid_floor"]
    assert result["memorization_ratio"] >= 0.9


@pytest.mark.slow
def test_guidance_raises_class_accuracy(digits_run):
    from unnoise.metrics import classifier as clf
    from unnoise.metrics.images import class_accuracy

    net, _ = clf.classifier("digits", 8, 1, verbose=False)
    labels = torch.arange(200) % 10
    unguided = digits_run.sample(200, "euler", 10, label="each", guidance=0.0)
    guided = digits_run.sample(200, "euler", 10, label="each", guidance=3.0)
    assert class_accuracy(net, guided, labels) > class_accuracy(net, unguided, labels) + 0.3


@pytest.mark.slow
def test_figures_of_an_image_run(digits_run, tmp_path):
    assert main(["figures", str(digits_run.folder), "--out", str(tmp_path / "fig")]) == 0
    for name in ("samples.png", "guidance.png", "denoising.png", "denoising.gif"):
        assert (tmp_path / "fig" / name).stat().st_size > 1000, name
    assert Image.open(tmp_path / "fig" / "denoising.gif").n_frames == 20


@pytest.mark.slow
def test_likelihood_of_heldout_images_in_bits_per_dimension(digits_run, capsys):
    assert main(["likelihood", str(digits_run.folder), "--n", "8", "--json"]) == 0
    result = last_json(capsys)
    assert result["divergence"] == "hutchinson" and result["dim"] == 64 and result["n"] == 8
    assert 0 < result["bpd"] < 8 and result["space"] == "8-bit pixels"  # 8: a uniform density on [0, 256)
    # model units are (x - 0.5) / 0.5 in each of the 64 pixels: log p_data = log p_model - 64 log 0.5
    assert result["nll_nats"] - result["nll_nats_model_units"] == pytest.approx(64 * math.log(0.5))


def test_a_folder_of_images_trains_and_samples(tmp_path, capsys):
    x, y, _ = load_images("digits", "train", 16)
    for label in (3, 7):
        (tmp_path / "data" / f"class_{label}").mkdir(parents=True)
        for k, image in enumerate(x[y == label][:20]):
            Image.fromarray((image[0].numpy() * 255).astype(np.uint8)).save(
                tmp_path / "data" / f"class_{label}" / f"{k}.png"
            )
    (tmp_path / "data" / "class_3" / "broken.png").write_bytes(b"not a png")
    folder = str(tmp_path / "data")
    with pytest.warns(UserWarning, match="skipped 1 unreadable"):
        assert (
            main(
                [
                    "train",
                    "--data",
                    folder,
                    "--size",
                    "16",
                    "--width",
                    "8",
                    "--steps",
                    "5",
                    "--conditional",
                    "--out",
                    str(tmp_path / "run"),
                ]
            )
            == 0
        )
    assert (
        main(
            [
                "sample",
                str(tmp_path / "run"),
                "--nfe",
                "3",
                "--n",
                "4",
                "--class",
                "1",
                "--out",
                str(tmp_path / "s.npy"),
            ]
        )
        == 0
    )
    assert np.load(tmp_path / "s.npy").shape == (4, 1, 16, 16)


@pytest.mark.slow
def test_bad_image_input(digits_run, tmp_path, capsys):
    run = str(digits_run.folder)
    fails_cleanly(capsys, ["sample", run, "--class", "10", "--out", "x.npy"], "class 10", "0..9")
    fails_cleanly(capsys, ["sample", run, "--class", "seven", "--out", "x.npy"], "class index or 'each'")
    (tmp_path / "empty").mkdir()
    fails_cleanly(capsys, ["train", "--data", str(tmp_path / "empty"), "--out", str(tmp_path / "r")], "no PNG or JPEG")
    (tmp_path / "flat").mkdir()
    for k in range(5):
        Image.fromarray(np.full((8, 8), 40 * k, dtype=np.uint8)).save(tmp_path / "flat" / f"{k}.png")
    fails_cleanly(
        capsys,
        ["train", "--data", str(tmp_path / "flat"), "--size", "8", "--conditional", "--out", str(tmp_path / "r")],
        "no classes",
    )
    fails_cleanly(
        capsys, ["train", "--data", "mnist", "--size", "15", "--out", str(tmp_path / "r")], "--size 15", "14 or 16"
    )
