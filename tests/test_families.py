"""The family seam: a family is its entry in families.FAMILIES. One registered there, with nothing else changed,
trains, samples, evaluates and reloads through the command line; and every built-in family answers the facts the
rest of unnoise asks of it."""

import json

import numpy as np
import pytest
import torch

from unnoise import families
from unnoise.cli import build_parser, main
from unnoise.cli.train import config_of
from unnoise.config import TrainConfig, train_arguments
from unnoise.families.continuous import Continuous
from unnoise.run import Run

# a family no module outside families/ has heard of: flow matching on the VP cosine path, under a new name
TOY = Continuous(
    "toy",
    "a test family",
    schedule="vp-cosine",
    prediction="velocity",
    schedules=("vp-cosine",),
    predictions=("velocity",),
    figure="euler",
)


@pytest.fixture
def toy(monkeypatch):
    monkeypatch.setitem(families.FAMILIES, "toy", TOY)
    return TOY


def test_a_registered_family_needs_no_other_file(toy, tmp_path, capsys):
    run_dir, samples = tmp_path / "run", tmp_path / "s.npy"
    assert (
        main(["train", "--family", "toy", "--data", "moons", "--steps", "300", "--width", "32", "--out", str(run_dir)])
        == 0
    )
    assert "trained toy (velocity, vp-cosine) on moons for 300 steps" in capsys.readouterr().out
    assert json.loads((run_dir / "config.json").read_text())["train"]["family"] == "toy"
    run = Run.load(run_dir)
    assert run.family is toy and run.path.name == "vp-cosine"
    assert main(["sample", str(run_dir), "-n", "500", "--seed", "1", "--out", str(samples)]) == 0
    x = torch.from_numpy(np.load(samples))
    assert torch.equal(x, run.sample(500, seed=1))  # the command and the API draw the same samples
    assert main(["evaluate", str(run_dir), "-n", "500", "--json"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["sampler"] == "dpmpp_2m" and result["nfe"] == 20
    assert result["w2_ratio"] < 3  # 300 steps of a 2D flow learn the moons' shape (W2 beside its floor)


def test_an_unregistered_family_is_one_line(tmp_path, capsys):
    assert main(["train", "--family", "toy", "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "invalid choice: 'toy'" in err and "diffusion" in err and err.count("\n") == 1


@pytest.mark.parametrize("name", list(families.FAMILIES))
def test_every_family_answers_what_the_rest_asks(name):
    family = families.FAMILIES[name]
    assert family.name == name and family.help
    orders = (None, "denoising", "raster", "scales", "unmasking")
    assert family.order in orders and (family.order is None) == (not family.generates)
    assert set(family.kinds) <= {"points", "images", "text"} and family.kinds
    samples_over_a_path = family.order == "denoising"
    assert ("sampler" in family.options) == samples_over_a_path
    assert (family.sampler_options("euler", 3) != {}) == (family.order in ("denoising", "unmasking"))
    assert family.discrete == (not samples_over_a_path)


@pytest.mark.parametrize(
    "settings",
    [
        {"data": "digits", "family": "ar", "depth": 2, "conditional": True, "levels": 8, "heads": 2},
        {"data": "moons", "family": "flow", "coupling": "ot", "width": 32, "lr": 1e-3, "seed": 3},
        {"data": "moons", "prediction": "eps", "schedule": "linear", "min_snr_gamma": 5.0, "checkpoint_every": 50},
        {"data": "digits", "family": "vq", "scales": "1,2,4,8", "codebook": 32},
    ],
)
def test_the_rebuild_arguments_make_the_same_config(settings):
    """config.train_arguments (what the page's stamps print) parsed back by `unnoise train` gives the run's config."""
    cfg = TrainConfig(**settings)
    words = " ".join(train_arguments(cfg, cfg.data)).split()
    argv = ["train", "--data", cfg.data, "--family", cfg.family, *words, "--out", "x"]
    assert config_of(build_parser().parse_args(argv)).to_dict() == cfg.to_dict()
