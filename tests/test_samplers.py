"""Samplers against closed forms: the DDPM posterior, DDIM's eta = 1 limit, exact Gaussian denoisers."""

import numpy as np
import pytest
import torch

from unnoise.errors import UnnoiseError
from unnoise.paths import make_path
from unnoise.samplers import PerSampleNoise, posterior, sample_ddim, sample_ddpm, timesteps

from .gaussian import MU, STD, exact_model


def constant_noise(value):
    return lambda x: torch.full_like(x, value)


@pytest.mark.parametrize("schedule", ["linear", "cosine", "vp-cosine", "rectified"])
def test_ddim_eta_one_matches_the_ddpm_step_in_mean_and_variance(schedule):
    path = make_path(schedule)
    x = torch.randn(16, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    model = exact_model(path)
    ts = timesteps(path, 10)
    t, s = ts[3], ts[4]
    grid = torch.stack([t, s])
    x0, _ = model(x, t)
    mean, var = posterior(path, x, x0, t, s)
    for z, expected in ((0.0, mean), (1.0, mean + var.sqrt())):   # z = 0 gives the mean, z = 1 the mean + std
        ddim = sample_ddim(model, x, grid, path, constant_noise(z), eta=1.0)
        ddpm = sample_ddpm(model, x, grid, path, constant_noise(z))
        np.testing.assert_allclose(ddim.numpy(), expected.numpy(), atol=1e-10)
        np.testing.assert_allclose(ddpm.numpy(), expected.numpy(), atol=1e-10)


def test_posterior_matches_ddpm_paper_coefficients():
    path = make_path("linear")
    ab, betas = path.alphas_cumprod.double(), path.betas.double()
    t, s = torch.tensor(500.0), torch.tensor(499.0)
    x, x0 = torch.ones(1, 1, dtype=torch.float64), torch.zeros(1, 1, dtype=torch.float64)
    mean, var = posterior(path, x, x0, t, s)
    coef_xt = (1 - betas[500]).sqrt() * (1 - ab[499]) / (1 - ab[500])             # Ho et al. eq. 7
    assert mean.item() == pytest.approx(coef_xt.item(), rel=1e-6)
    assert var.item() == pytest.approx(((1 - ab[499]) / (1 - ab[500]) * betas[500]).item(), rel=1e-5)


@pytest.mark.parametrize("sampler,schedule,steps", [
    ("ddpm", "linear", 1000), ("ddim", "linear", 100), ("ddim", "cosine", 100),
    ("ddim", "vp-cosine", 200), ("ddim", "rectified", 200)])
def test_exact_denoiser_lands_on_the_gaussian(sampler, schedule, steps):
    path = make_path(schedule)
    n = 4000
    noise = PerSampleNoise.for_range(1, 0, n)
    x = noise.initial((2,), dtype=torch.float64)
    if path.alpha(path.t_max) > 0:   # start from the true marginal where the path does not reach pure noise
        x = path.alpha(path.t_max) * MU + (path.alpha(path.t_max) ** 2 * STD**2 + path.sigma(path.t_max) ** 2).sqrt() * x
    fn = sample_ddpm if sampler == "ddpm" else sample_ddim
    out = fn(exact_model(path), x, timesteps(path, steps), path, noise)
    np.testing.assert_allclose(out.mean(0).numpy(), MU.numpy(), atol=0.06)
    np.testing.assert_allclose(out.std(0).numpy(), STD.numpy(), rtol=0.04)


def test_probability_flow_ddim_transports_noise_exactly_for_gaussian_data():
    """Deterministic DDIM (Euler on the flow) on a Gaussian converges to the exact map z -> MU + STD z at first order."""
    path = make_path("rectified")
    z = torch.randn(100, 2, generator=torch.Generator().manual_seed(3), dtype=torch.float64)

    def error(steps):
        out = sample_ddim(exact_model(path), z, timesteps(path, steps), path, None)
        return (out - (MU + STD * z)).abs().max().item()
    coarse, fine = error(250), error(500)
    assert fine < 2e-2
    assert coarse / fine == pytest.approx(2.0, rel=0.05)


def test_spacings_match_diffusers_formulas():
    path = make_path("linear")
    assert timesteps(path, 10, "trailing")[:3].tolist() == [999, 899, 799]
    assert timesteps(path, 10, "leading")[:3].tolist() == [900, 800, 700]
    assert timesteps(path, 10, "linspace")[:3].tolist() == [999, 888, 777]
    assert timesteps(path, 10)[-1].item() == -1
    with pytest.raises(UnnoiseError, match="spacing"):
        timesteps(path, 10, "random")
    with pytest.raises(UnnoiseError, match="1000"):
        timesteps(path, 1001)


def test_eta_outside_unit_interval_is_refused():
    path = make_path("linear")
    with pytest.raises(UnnoiseError, match=r"\[0, 1\]"):
        sample_ddim(exact_model(path), torch.zeros(1, 2), timesteps(path, 2), path, None, eta=1.5)


def test_per_sample_noise_does_not_depend_on_the_batch():
    whole = PerSampleNoise.for_range(5, 0, 10).initial((2,))
    part = PerSampleNoise.for_range(5, 4, 7).initial((2,))
    assert torch.equal(whole[4:7], part)
