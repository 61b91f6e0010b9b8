"""Closed-form checks of every schedule and every prediction conversion."""

import math

import numpy as np
import pytest
import torch

from unnoise.errors import UnnoiseError
from unnoise.paths import DISCRETE_SCHEDULES, make_path


def test_linear_betas_are_ddpm_defaults():
    path = make_path("linear")
    assert path.T == 1000
    assert path.betas[0].item() == pytest.approx(1e-4) and path.betas[-1].item() == pytest.approx(0.02)
    expected = np.cumprod(1 - np.linspace(1e-4, 0.02, 1000))
    np.testing.assert_allclose(path.alphas_cumprod.numpy(), expected, rtol=1e-5)


def test_scaled_linear_and_sigmoid_closed_forms():
    scaled = make_path("scaled_linear", beta_start=0.00085, beta_end=0.012)
    np.testing.assert_allclose(scaled.betas.numpy(), np.linspace(0.00085**0.5, 0.012**0.5, 1000) ** 2, rtol=1e-5)
    sig = make_path("sigmoid")
    expected = 1 / (1 + np.exp(-np.linspace(-6, 6, 1000))) * (0.02 - 1e-4) + 1e-4
    np.testing.assert_allclose(sig.betas.numpy(), expected, rtol=1e-5)


def test_cosine_schedule_follows_alpha_bar_until_the_cap():
    path = make_path("cosine")

    def f(u):
        return math.cos((u + 0.008) / 1.008 * math.pi / 2) ** 2

    ab = np.array([f((i + 1) / 1000) / f(0) for i in range(1000)])
    # Identical until beta is capped at 0.999 in the last steps.
    np.testing.assert_allclose(path.alphas_cumprod.numpy()[:990], ab[:990], rtol=1e-4)
    assert path.betas.max().item() == pytest.approx(0.999)


@pytest.mark.parametrize("schedule", DISCRETE_SCHEDULES)
def test_discrete_paths_are_variance_preserving_and_monotone(schedule):
    path = make_path(schedule)
    t = torch.arange(-1, 1000, dtype=torch.float64)
    a, s = path.alpha(t), path.sigma(t)
    np.testing.assert_allclose((a**2 + s**2).numpy(), 1.0, atol=1e-12)
    assert a[0] == 1 and s[0] == 0  # t = -1 is clean data
    assert torch.all(torch.diff(path.log_snr(t[1:])) < 0)


def test_fractional_time_interpolates_log_sigma_ratio_and_inverts():
    path = make_path("linear")
    ve = path.sigma(torch.tensor([10.0, 11.0])) / path.alpha(torch.tensor([10.0, 11.0]))
    mid = path.sigma(torch.tensor(10.5)) / path.alpha(torch.tensor(10.5))
    assert mid.log().item() == pytest.approx(ve.log().mean().item(), rel=1e-12)
    t = torch.tensor([3.0, 10.5, 500.25, 998.9], dtype=torch.float64)
    back = path.t_from_sigma_ratio(path.sigma(t) / path.alpha(t))
    np.testing.assert_allclose(back.numpy(), t.numpy(), atol=1e-9)


def test_continuous_paths_closed_forms():
    t = torch.linspace(0, 0.99, 11, dtype=torch.float64)
    rf = make_path("rectified")
    np.testing.assert_allclose(rf.alpha(t).numpy(), 1 - t.numpy())
    np.testing.assert_allclose(rf.sigma(t).numpy(), t.numpy())
    vp = make_path("vp-cosine")
    np.testing.assert_allclose(vp.alpha(t).numpy(), np.cos(np.pi * t.numpy() / 2))
    np.testing.assert_allclose((vp.alpha(t) ** 2 + vp.sigma(t) ** 2).numpy(), 1.0)
    # log-SNR of the cosine path is -2 log tan(pi t / 2)
    tt = t[1:]
    np.testing.assert_allclose(vp.log_snr(tt).numpy(), -2 * np.log(np.tan(np.pi * tt.numpy() / 2)), rtol=1e-10)


@pytest.mark.parametrize("schedule", ["rectified", "vp-cosine"])
def test_derivatives_match_finite_differences(schedule):
    path = make_path(schedule)
    t = torch.tensor([0.1, 0.5, 0.8], dtype=torch.float64)
    h = 1e-6
    da, ds = path.derivatives(t)
    np.testing.assert_allclose(da.numpy(), ((path.alpha(t + h) - path.alpha(t - h)) / (2 * h)).numpy(), rtol=1e-6)
    np.testing.assert_allclose(ds.numpy(), ((path.sigma(t + h) - path.sigma(t - h)) / (2 * h)).numpy(), rtol=1e-6)


@pytest.mark.parametrize(
    "schedule,predictions",
    [
        ("linear", ["eps", "x0", "v"]),
        ("vp-cosine", ["eps", "x0", "v", "velocity"]),
        ("rectified", ["eps", "x0", "v", "velocity"]),
    ],
)
def test_every_prediction_converts_back_to_x0_and_eps(schedule, predictions):
    path = make_path(schedule)
    g = torch.Generator().manual_seed(0)
    x0, eps = torch.randn(64, 2, generator=g, dtype=torch.float64), torch.randn(64, 2, generator=g, dtype=torch.float64)
    t = torch.tensor(400.0 if path.discrete else 0.4, dtype=torch.float64)
    x = path.add_noise(x0, eps, t)
    for prediction in predictions:
        target = path.target(prediction, x0, eps, t)
        got_x0, got_eps = path.to_x0_eps(prediction, target, x, t)
        np.testing.assert_allclose(got_x0.numpy(), x0.numpy(), atol=1e-10, err_msg=prediction)
        np.testing.assert_allclose(got_eps.numpy(), eps.numpy(), atol=1e-10, err_msg=prediction)


def test_closed_form_targets():
    rf = make_path("rectified")
    x0, eps, t = torch.tensor([[1.0, 2.0]]), torch.tensor([[0.5, -1.0]]), torch.tensor(0.3)
    np.testing.assert_allclose(rf.target("velocity", x0, eps, t).numpy(), (eps - x0).numpy(), atol=1e-7)
    vp = make_path("vp-cosine")
    a, s = math.cos(0.3 * math.pi / 2), math.sin(0.3 * math.pi / 2)
    np.testing.assert_allclose(vp.target("v", x0, eps, t).numpy(), (a * eps - s * x0).numpy(), atol=1e-6)
    assert vp.score(eps, t).numpy() == pytest.approx((-eps / s).numpy())


def test_unknown_names_raise_with_choices():
    with pytest.raises(UnnoiseError, match="choose one of"):
        make_path("quadratic")
    with pytest.raises(UnnoiseError, match="choose one of"):
        make_path("linear").target("score", torch.zeros(1, 2), torch.zeros(1, 2), torch.tensor(1.0))
    with pytest.raises(UnnoiseError, match="velocity"):
        make_path("linear").target("velocity", torch.zeros(1, 2), torch.zeros(1, 2), torch.tensor(1.0))


@pytest.mark.parametrize("schedule", ["vp-cosine", "rectified", "edm", "cosine"])
def test_t_from_sigma_ratio_inverts_every_path(schedule):
    path = make_path(schedule)
    t = torch.tensor([0.01, 0.3, 0.7, 0.95], dtype=torch.float64) * path.t_max
    back = path.t_from_sigma_ratio(path.sigma(t) / path.alpha(t))
    np.testing.assert_allclose(back.numpy(), t.numpy(), rtol=1e-9)


def test_edm_path_is_variance_exploding_with_log_normal_training_sigmas():
    path = make_path("edm", sigma_data=0.5)
    t = torch.tensor([0.002, 1.0, 80.0], dtype=torch.float64)
    assert torch.equal(path.alpha(t), torch.ones(3, dtype=torch.float64)) and torch.equal(path.sigma(t), t)
    log_sigma = path.sample_t(20000, torch.Generator().manual_seed(0)).log()
    assert log_sigma.mean().item() == pytest.approx(-1.2, abs=0.03)
    assert log_sigma.std().item() == pytest.approx(1.2, rel=0.03)
    np.testing.assert_allclose(path.net_time(t).numpy(), (t.log() / 4).numpy(), rtol=1e-6)
    x = torch.ones(3, 2, dtype=torch.float64)
    np.testing.assert_allclose(path.net_input(x, t)[:, 0].numpy(), (1 / (t**2 + 0.25).sqrt()).numpy())


def test_logit_normal_times_have_the_closed_form_quantiles():
    """SD3's density: t = sigmoid(n) t_max with n ~ N(0, 1), so P(t <= sigmoid(z) t_max) = Phi(z)."""
    from unnoise.paths import sample_times

    path = make_path("vp-cosine")
    t = sample_times(path, "logit-normal", 200_000, torch.Generator().manual_seed(0))
    assert t.min() > 0 and t.max() < path.t_max
    for z, phi in ((-1.0, 0.158655), (0.0, 0.5), (1.5, 0.933193)):
        assert (t <= torch.sigmoid(torch.tensor(z)) * path.t_max).double().mean() == pytest.approx(phi, abs=0.004)
    uniform = sample_times(path, "uniform", 200_000, torch.Generator().manual_seed(0))
    assert (uniform <= 0.25 * path.t_max).double().mean() == pytest.approx(0.25, abs=0.004)


def test_the_time_density_defaults_to_logit_normal_for_images_only():
    import dataclasses

    import unnoise

    assert unnoise.TrainConfig(data="digits").time_density == "logit-normal"
    assert unnoise.TrainConfig(data="digits", family="flow").time_density == "logit-normal"
    assert unnoise.TrainConfig(data="moons").time_density == "uniform"
    assert unnoise.TrainConfig(data="digits", schedule="linear", prediction="eps").time_density == "uniform"
    assert unnoise.TrainConfig(data="digits", family="edm").time_density == "uniform"
    assert unnoise.TrainConfig(data="digits", family="ar").time_density is None
    old = {k: v for k, v in dataclasses.asdict(unnoise.TrainConfig(data="digits")).items() if k != "time_density"}
    assert unnoise.TrainConfig.from_dict(old).time_density == "uniform"  # a run saved before the option
    with pytest.raises(UnnoiseError, match="needs a continuous-time path"):
        unnoise.TrainConfig(data="digits", schedule="linear", time_density="logit-normal")
    with pytest.raises(UnnoiseError, match="choose one of uniform, logit-normal"):
        unnoise.TrainConfig(data="moons", time_density="beta")
    with pytest.raises(UnnoiseError, match="belongs to diffusion and flow"):
        unnoise.TrainConfig(data="digits", family="var", time_density="uniform")


def test_training_draws_its_times_from_the_configured_density():
    """continuous.draw follows cfg.time_density: P(t < 0.2 t_max) = Phi(logit 0.2) = 0.083 against 0.2 for uniform."""
    import unnoise
    from unnoise.families import continuous

    rows = {"x0": torch.zeros(20_000, 1, 8, 8)}
    for density, share in (("logit-normal", 0.0829), ("uniform", 0.2)):
        cfg = unnoise.TrainConfig(data="digits", time_density=density)
        t = continuous.draw(cfg, rows, torch.Generator().manual_seed(0))["t"]
        assert (t < 0.2 * 0.999).double().mean() == pytest.approx(share, abs=0.008)
