"""MeanFlow, shortcut and consistency models against closed forms on Gaussian data, and on moons with fixed seeds.

On data N(mu, s^2 I) the straight path z_t = (1 - t) x + t eps has Gaussian marginals N(m_t, sd_t^2 I), m_t = (1 - t) mu,
sd_t^2 = (1 - t)^2 s^2 + t^2, and its probability-flow ODE is the affine map z_r = m_r + sd_r / sd_t (z_t - m_t). So the
average velocity u(z, r, t) = (z - z_r) / (t - r), the instantaneous velocity and the exact one-step map are known.
"""

import pytest
import torch
from torch import nn

import unnoise
from unnoise.cli import main
from unnoise.config import TrainConfig
from unnoise.families import consistency, meanflow, shortcut, steps
from unnoise.metrics.points import w2
from unnoise.paths import make_path
from unnoise.run import Run

MU, S = torch.tensor([1.5, -0.5], dtype=torch.float64), 0.3


def mean_t(t):
    return (1 - t)[:, None] * MU


def sd_t(t):
    return ((1 - t) ** 2 * S**2 + t**2).sqrt()[:, None]


def flow_map(z, t, r):
    """The probability-flow ODE of the Gaussian data from time t to time r."""
    return mean_t(r) + sd_t(r) / sd_t(t) * (z - mean_t(t))


def velocity(z, t):
    """dz/dt of the ODE: d m_t / dt + (d sd_t / dt) / sd_t (z - m_t)."""
    d_sd = (t - (1 - t) * S**2)[:, None] / sd_t(t)
    return -MU + d_sd / sd_t(t) * (z - mean_t(t))


class Exact(nn.Module):
    """The exact average velocity of the Gaussian data, called as the step families call their nets: (z, (t, h))."""

    def forward(self, z, tt, y=None):
        t, h = tt.double().unbind(1)
        jump = torch.where(h > 0, h, torch.ones_like(h))
        average = (z - flow_map(z, t, t - jump)) / jump[:, None]
        return torch.where((h > 0)[:, None], average, velocity(z, t)).to(z.dtype)


def grid(n=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, 2, generator=g, dtype=torch.float64)
    t = 0.2 + 0.8 * torch.rand(n, generator=g, dtype=torch.float64)
    r = t * 0.9 * torch.rand(n, generator=g, dtype=torch.float64)
    return z, t, r


def test_the_meanflow_identity_holds_for_the_exact_average_velocity():
    """u = v - (t - r) du/dt (eq. 6), with du/dt by forward-mode AD and by the finite-difference fallback."""
    z, t, r = grid()
    u = Exact()(z, steps.times(t, r).double())
    for no_jvp in (set(), {Exact}):
        meanflow.NO_JVP.clear(), meanflow.NO_JVP.update(no_jvp)
        target = velocity(z, t) - (t - r)[:, None] * meanflow.time_derivative(Exact(), z, t, r, None, velocity(z, t))
        assert (target - u).abs().max() < (1e-6 if not no_jvp else 1e-4)
    meanflow.NO_JVP.clear()


def test_the_meanflow_target_averages_to_the_average_velocity():
    """With the conditional velocity eps - x0 the target is u on average over (x0, eps) given z_t (x0's posterior is
    Gaussian here), to Monte Carlo error."""
    g = torch.Generator().manual_seed(1)
    z, t, r = (v[:1].repeat(20000, *([1] * (v.dim() - 1))) for v in grid(1, seed=2))
    # x0 | z_t ~ N(mean, var): the Gaussian posterior of x = (z_t - t eps) / (1 - t)
    a, s2 = 1 - t[0], t[0] ** 2
    var = 1 / (1 / S**2 + a**2 / s2)
    post_mean = var * (MU / S**2 + a * z[0] / s2)
    x0 = post_mean + var.sqrt() * torch.randn(len(z), 2, generator=g, dtype=torch.float64)
    v = (z - a * x0) / t[:, None] - x0  # eps - x0 with eps = (z - (1 - t) x0) / t
    target = v - (t - r)[:, None] * meanflow.time_derivative(Exact(), z, t, r, None, v)
    u = Exact()(z[:1], steps.times(t[:1], r[:1]).double())
    assert (target.mean(0) - u[0]).abs().max() < 4 * target.std(0).max() / len(z) ** 0.5


def exact_run(family):
    cfg = TrainConfig(data="moons", family=family)
    units = {
        "shift": torch.zeros(2),
        "scale": torch.ones(2),
        "low": torch.full((2,), -1e9),
        "high": torch.full((2,), 1e9),
    }
    return Run("exact", cfg, Exact(), 0, 0, units)


@pytest.mark.parametrize("family", ["meanflow", "shortcut"])
@pytest.mark.parametrize("nfe", [1, 2, 4])
def test_sampling_with_the_exact_net_draws_the_data_in_any_number_of_steps(family, nfe):
    """Euler told its step is the exact flow map: N(mu, s^2) from noise at 1, 2 and 4 network calls."""
    x = exact_run(family).sample(4000, nfe=nfe, seed=0, clip=False).double()
    assert (x.mean(0) - MU).abs().max() < 0.02
    assert (x.std(0) - S).abs().max() < 0.01


def test_two_shortcut_steps_of_the_exact_net_are_its_one_step_of_twice_the_size():
    """The self-consistency target s(x, t, 2d) = (s(x, t, d) + s(x', t - d, d)) / 2 holds for the exact flow map, and
    its flow-matching limit (d -> 0) is the velocity."""
    z, t, _ = grid()
    for d in (0.1, 0.05):
        d = torch.full_like(t, d)
        target = shortcut.self_consistency(Exact(), z, t.float().double(), d, None)
        assert (target - Exact()(z, steps.times(t, t - 2 * d).double())).abs().max() < 1e-5
    tiny = torch.full_like(t, 1e-4)
    limit = shortcut.self_consistency(Exact(), z, t, tiny, None)
    assert (limit - velocity(z, t)).abs().max() < 1e-2


def test_the_shortcut_draws_put_a_quarter_on_self_consistency_with_jumps_that_stay_in_time():
    t, jump, boot = shortcut.draw_steps(1000, torch.Generator().manual_seed(0))
    assert boot.sum() == 250
    assert (t[boot] - jump[boot] >= -1e-6).all() and (t <= 1).all()
    assert set(jump[~boot].tolist()) == {1 / shortcut.STEPS}


@pytest.mark.parametrize("schedule, prediction", [("rectified", "velocity"), ("vp-cosine", "v")])
def test_a_consistency_function_is_the_identity_at_time_zero(schedule, prediction):
    """f(x, 0) = x by construction, whatever the net outputs."""
    net = unnoise.nets.MLP(2, 16, 1)
    nn.init.normal_(net.out[-1].weight)
    x = torch.randn(64, 2)
    zero = torch.zeros(64)
    assert torch.allclose(consistency.x0_of(net, make_path(schedule), prediction, x, zero, None), x)


def test_meanflow_passes_the_u_net_by_forward_mode_ad():
    """GroupNorm, attention and the U-Net's blocks take dual numbers: images use the exact JVP, not the fallback."""
    meanflow.NO_JVP.clear()
    cfg = TrainConfig(data="digits", family="meanflow", width=16, channels=1)
    net = meanflow.MEANFLOW.build(cfg, 10)
    x, t, r = torch.randn(4, 1, 8, 8), torch.rand(4), torch.rand(4) * 0.5
    with torch.no_grad():
        exact = meanflow.time_derivative(net, x, t, r, None, torch.randn_like(x))
    assert type(net) not in meanflow.NO_JVP and exact.shape == x.shape


@pytest.mark.slow
@pytest.mark.parametrize(
    "family, train_steps, bounds",
    [("shortcut", 1500, {1: 2.0, 4: 1.5}), ("meanflow", 600, {1: 4.0}), ("consistency", 1500, {1: 5.0})],
)
def test_few_step_families_learn_moons(tmp_path, family, train_steps, bounds):
    """Fixed-seed quality: W2 at a few network calls within a bound x the floor of 2000 moons points (0.066); measured
    2026-12-07: shortcut 1.71 and 1.19, meanflow 2.40, consistency 4.19 (an untrained net scores about 12)."""
    run = unnoise.train(TrainConfig(data="moons", family=family, steps=train_steps, seed=0), tmp_path, progress=False)
    held = run.dataset.x[:2000]
    for nfe, bound in bounds.items():
        assert w2(run.sample(2000, nfe=nfe, seed=1), held) < bound * 0.066, nfe


def test_bad_few_step_requests_are_one_line(tmp_path, capsys):
    out = tmp_path / "sc"
    assert main(["train", "--data", "moons", "--family", "shortcut", "--steps", "5", "--out", str(out)]) == 0
    cases = [
        (["sample", str(out), "--sampler", "heun", "--out", str(tmp_path / "a.npy")], "samples with euler"),
        (["sample", str(out), "--eta", "0.5", "--out", str(tmp_path / "a.npy")], "deterministically"),
        (
            [
                "train",
                "--data",
                "moons",
                "--family",
                "consistency",
                "--teacher",
                str(out),
                "--out",
                str(tmp_path / "c"),
            ],
            "distil a diffusion or flow run",
        ),
        (
            [
                "train",
                "--data",
                "moons",
                "--family",
                "consistency",
                "--teacher",
                str(tmp_path / "none"),
                "--out",
                str(tmp_path / "d"),
            ],
            "not a run",
        ),
        (
            ["train", "--data", "moons", "--family", "meanflow", "--fold-guidance", "2", "--out", str(tmp_path / "e")],
            "--conditional",
        ),
        (
            ["train", "--data", "moons", "--family", "shortcut", "--coupling", "ot", "--out", str(tmp_path / "f")],
            "independent",
        ),
    ]
    for argv, words in cases:
        capsys.readouterr()
        try:
            code = main(argv)
        except SystemExit as stop:
            code = stop.code
        err = capsys.readouterr().err.strip()
        assert code == 2 and words in err and len(err.splitlines()) == 1, (argv, err)
    assert not (tmp_path / "c").exists() and not (tmp_path / "e").exists()


def test_guidance_folds_into_the_meanflow_target_on_labelled_rows_only():
    """v~ = w v + (1 - w) u(z, t, t | no class) where a row has a class; rows whose label was dropped keep v."""

    def unconditional(z, tt, y):
        assert (y == 10).all()  # asked without a class
        return torch.full_like(z, 5.0)

    z, v, t = torch.zeros(4, 2), torch.ones(4, 2), torch.rand(4)
    y = torch.tensor([3, 10, 0, 10])
    folded = meanflow.folded_velocity(unconditional, z, t, y, v, 2.0, null=10)
    assert torch.equal(folded[[0, 2]], torch.full((2, 2), 2.0 * 1 - 1.0 * 5)) and torch.equal(folded[[1, 3]], v[[1, 3]])
