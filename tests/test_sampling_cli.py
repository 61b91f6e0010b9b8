"""`unnoise sample` / `evaluate` with every sampler name, counted NFE, and one-line errors (tiny runs)."""

import json
import re

import numpy as np
import pytest
import torch

from unnoise.cli import main
from unnoise.config import TrainConfig
from unnoise.pipeline import train
from unnoise.samplers import SAMPLERS


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    torch.set_num_threads(2)
    root = tmp_path_factory.mktemp("runs")
    out = {}
    for family in ("edm", "flow", "diffusion"):
        cfg = TrainConfig(
            family=family,
            steps=3,
            batch_size=64,
            width=16,
            depth=1,
            warmup=1,
            checkpoint_every=3,
            min_snr_gamma=5.0 if family == "diffusion" else None,
        )
        out[family] = str(root / family)
        train(cfg, out[family], progress=False)
    return out


def test_evaluate_reports_the_counted_nfe(runs, capsys):
    assert main(["evaluate", runs["edm"], "--sampler", "heun", "--nfe", "8", "--n", "40", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["nfe"] == 7  # 4 steps: 2 * 3 + 1 evaluations


@pytest.mark.parametrize("sampler", sorted(set(SAMPLERS) - {"dopri5"}))  # adaptive: slow on untrained nets
def test_every_sampler_runs_from_the_command_line(runs, sampler, tmp_path):
    family = "diffusion" if sampler == "euler_maruyama" else "flow" if sampler in ("rk4", "midpoint") else "edm"
    out = tmp_path / "s.npy"
    assert main(["sample", runs[family], "--sampler", sampler, "--nfe", "5", "--n", "30", "--out", str(out)]) == 0
    points = np.load(out)
    assert points.shape == (30, 2) and np.isfinite(points).all()


@pytest.mark.parametrize(
    "args,message",
    [
        (["--sampler", "heun", "--nfe", "1"], "at least 3"),
        (["--sampler", "ddim", "--eta", "1.5"], r"\[0, 1\]"),
        (["--sampler", "heun", "--eta", "0.5"], "s_churn"),
        (["--sampler", "dpm"], "invalid choice"),
        (["--spacing", "cosine"], "invalid choice"),
    ],
)
def test_bad_sampling_input_is_one_line(runs, args, message, capsys, tmp_path):
    assert main(["sample", runs["diffusion"], *args, "--n", "10", "--out", str(tmp_path / "s.npy")]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and err.startswith("unnoise: error:")
    assert re.search(message, err)


def test_s_churn_reaches_heun_and_changes_the_samples(runs, tmp_path):
    plain, churned = tmp_path / "a.npy", tmp_path / "b.npy"
    base = ["sample", runs["edm"], "--sampler", "heun", "--nfe", "9", "--n", "20"]
    assert main([*base, "--out", str(plain)]) == 0
    assert main([*base, "--s-churn", "20", "--out", str(churned)]) == 0
    assert not np.allclose(np.load(plain), np.load(churned))
    assert main([*base, "--s-churn", "20", "--out", str(plain)]) == 0  # same seed, same noise
    np.testing.assert_array_equal(np.load(plain), np.load(churned))


@pytest.mark.parametrize("sampler,nfe,steps", [("heun", 7, 4), ("rk4", 9, 3)])
def test_a_diffusion_run_samples_heun_and_rk4_on_a_karras_grid(runs, sampler, nfe, steps):
    """Run.sample hands the sampler's name to the default grid: each step's first evaluation is at a Karras time."""
    from unnoise.run import Run
    from unnoise.samplers import timesteps

    run = Run.load(runs["diffusion"])
    seen = []
    run.sample(4, sampler=sampler, nfe=nfe, callback=lambda i, t, x, x0: seen.append(float(t)))
    for spacing, expected in (("karras", True), ("trailing", False)):
        starts = timesteps(run.path, steps, spacing)[:-1].tolist()
        assert all(any(abs(s - t) < 1e-6 for t in seen) for s in starts) is expected, spacing
