"""Samplers against closed forms: the DDPM posterior, DDIM's eta = 1 limit, exact Gaussian denoisers."""

import numpy as np
import pytest
import torch

from unnoise.errors import UnnoiseError
from unnoise.paths import make_path
from unnoise.samplers import (
    SAMPLERS,
    PerSampleNoise,
    check_options,
    default_spacing,
    nfe_of,
    posterior,
    sample_ddim,
    sample_ddpm,
    sample_dopri5,
    sample_euler,
    sample_euler_ancestral,
    sample_euler_maruyama,
    sample_heun,
    steps_for,
    timesteps,
)

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
    for z, expected in ((0.0, mean), (1.0, mean + var.sqrt())):  # z = 0 gives the mean, z = 1 the mean + std
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
    coef_xt = (1 - betas[500]).sqrt() * (1 - ab[499]) / (1 - ab[500])  # Ho et al. eq. 7
    assert mean.item() == pytest.approx(coef_xt.item(), rel=1e-6)
    assert var.item() == pytest.approx(((1 - ab[499]) / (1 - ab[500]) * betas[500]).item(), rel=1e-5)


@pytest.mark.parametrize(
    "sampler,schedule,steps",
    [
        ("ddpm", "linear", 1000),
        ("ddim", "linear", 100),
        ("ddim", "cosine", 100),
        ("ddim", "vp-cosine", 200),
        ("ddim", "rectified", 200),
    ],
)
def test_exact_denoiser_lands_on_the_gaussian(sampler, schedule, steps):
    path = make_path(schedule)
    n = 4000
    noise = PerSampleNoise.for_range(1, 0, n)
    x = noise.initial((2,), dtype=torch.float64)
    if path.alpha(path.t_max) > 0:  # start from the true marginal where the path does not reach pure noise
        x = (
            path.alpha(path.t_max) * MU
            + (path.alpha(path.t_max) ** 2 * STD**2 + path.sigma(path.t_max) ** 2).sqrt() * x
        )
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


# Every sampler, closed forms: the Gaussian's exact denoiser, EDM's Algorithm 2, NFE accounting, bad input.


def marginal_start(path, n, seed=1):
    """n draws of x at t_max from the Gaussian data's true marginal (pure noise where alpha(t_max) = 0)."""
    noise = PerSampleNoise.for_range(seed, 0, n)
    z = noise.initial((2,), dtype=torch.float64)
    a, s = path.alpha(path.t_max), path.sigma(path.t_max)
    return a * MU + (a**2 * STD**2 + s**2).sqrt() * z, noise


@pytest.mark.parametrize(
    "sampler,schedule,spacing,nfe",
    [
        ("euler", "linear", "trailing", 100),
        ("euler_ancestral", "linear", "trailing", 200),
        ("heun", "linear", "karras", 59),
        ("midpoint", "vp-cosine", "trailing", 59),
        ("rk4", "rectified", "trailing", 41),
        ("dpmpp_2m", "cosine", "trailing", 30),
        ("dpmpp_2m_sde", "scaled_linear", "karras", 100),
        ("euler_maruyama", "linear", "trailing", 250),
        ("heun", "edm", "karras", 39),
        ("dpmpp_2m", "edm", "exponential", 40),
        ("euler", "rectified", "karras", 100),
        ("ddpm", "rectified", "trailing", 200),
        ("dpmpp_2m", "rectified", "trailing", 30),
        ("dpmpp_2m_sde", "rectified", "karras", 100),
        ("unipc", "linear", "karras", 20),
        ("unipc", "rectified", "trailing", 20),
        ("dpmpp_3m", "cosine", "trailing", 30),
        ("dpmpp_3m", "rectified", "trailing", 30),
        ("dpmpp_3m_sde", "scaled_linear", "karras", 100),
        ("dpmpp_3m_sde", "rectified", "karras", 100),
    ],
)
def test_every_sampler_lands_on_the_gaussian(sampler, schedule, spacing, nfe):
    path = make_path(schedule)
    x, noise = marginal_start(path, 4000)
    ts = timesteps(path, steps_for(sampler, nfe), spacing)
    out = SAMPLERS[sampler](exact_model(path), x, ts, path, noise)
    np.testing.assert_allclose(out.mean(0).numpy(), MU.numpy(), atol=0.06)
    np.testing.assert_allclose(out.std(0).numpy(), STD.numpy(), rtol=0.05)
    assert abs(torch.corrcoef(out.T)[0, 1].item()) < 0.05


@pytest.mark.parametrize("sampler,rtol,off", [("heun", 0.1, 0.25), ("rk4", 0.05, 0.5)])
def test_heun_and_rk4_default_to_karras_on_diffusion_paths(sampler, rtol, off):
    """On VP cosine a trailing grid's first step drops sigma / alpha from 637 to 6.3, and heun's corrector
    multiplies the change in the x0 estimate by about 50 there. At 41 NFE heun on the default (Karras) grid
    lands at 1.085 / 1.068 of the Gaussian's spread (its two coordinates), on trailing at 1.027 / 1.318."""
    nfe = 41
    path = make_path("vp-cosine")
    x, noise = marginal_start(path, 4000)
    assert default_spacing(path, sampler) == "karras" and default_spacing(path, "dpmpp_2m") == "trailing"
    assert default_spacing(make_path("rectified"), sampler) == "trailing"
    spread = {}
    for spacing in ("trailing", default_spacing(path, sampler)):
        out = SAMPLERS[sampler](exact_model(path), x, timesteps(path, steps_for(sampler, nfe), spacing), path, noise)
        spread[spacing] = out.std(0) / STD
    np.testing.assert_allclose(spread["karras"].numpy(), 1.0, rtol=rtol)
    assert (spread["trailing"] - 1).abs().max() > off  # the trailing grid is far off


def gaussian_flow_map(path, x, t, s):
    """The exact probability-flow ODE map from x at t to time s, coordinate-wise for N(MU, STD^2):
    x / alpha - MU scales by sqrt(STD^2 + (sigma/alpha)^2) (pure noise x = eps goes to MU + STD eps at s = 0)."""
    a_t, a_s = path.alpha(t), path.alpha(s)
    level_s = (STD**2 + (path.sigma(s) / a_s) ** 2).sqrt()
    if a_t == 0:
        return a_s * (MU + level_s * x)
    return a_s * (MU + level_s / (STD**2 + (path.sigma(t) / a_t) ** 2).sqrt() * (x / a_t - MU))


@pytest.mark.parametrize("schedule", ["rectified", "vp-cosine", "edm", "linear"])
def test_dopri5_transports_noise_onto_the_gaussian_exactly(schedule):
    """Exact to t_min; the last step into clean data is one denoising step (sigma/alpha(t_min) is 0.01 on
    the discrete path, 0.002 or less elsewhere), so the expected output is the exact map then that step."""
    path = make_path(schedule)
    z = torch.randn(200, 2, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    x = z * path.sigma(path.t_max)  # any start: the map is exact for every point
    out = sample_dopri5(exact_model(path), x, timesteps(path, 1), path, None, rtol=1e-8, atol=1e-8)
    t_min = torch.tensor(float(path.t_min), dtype=torch.float64)
    at_t_min = gaussian_flow_map(path, x, path.t_max, t_min)
    expected = sample_ddim(exact_model(path), at_t_min, torch.stack([t_min, torch.tensor(path.t_end)]), path, None)
    np.testing.assert_allclose(out.numpy(), expected.numpy(), atol=1e-5)
    exact = gaussian_flow_map(path, x, path.t_max, torch.tensor(path.t_end, dtype=torch.float64))
    np.testing.assert_allclose(out.numpy(), exact.numpy(), atol=5e-4)


@pytest.mark.parametrize("sampler,order", [("euler", 1), ("heun", 2), ("midpoint", 2), ("rk4", 4)])
def test_ode_solvers_converge_at_their_order_on_the_rectified_path(sampler, order):
    """Error of x at t = 0.05 against the exact flow: halving the step divides it by at least about 2^order."""
    path = make_path("rectified")
    z = torch.randn(50, 2, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    exact = MU * 0.95 + (0.95**2 * STD**2 + 0.05**2).sqrt() * z  # x_t of the flow from z, at t = 0.05

    def error(steps):
        ts = torch.linspace(1, 0.05, steps + 1, dtype=torch.float64)
        return (SAMPLERS[sampler](exact_model(path), z, ts, path, None) - exact).abs().max().item()

    assert error(8) / error(16) > 0.8 * 2**order  # Euler's ratio is 1.9: it cannot pass as 2nd order


def test_euler_on_the_rectified_path_is_x_plus_dt_velocity():
    path = make_path("rectified")
    x = torch.randn(5, 2, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    ts = torch.tensor([0.8, 0.3, 0.0], dtype=torch.float64)
    x0, eps = exact_model(path)(x, ts[0])
    out = sample_euler(exact_model(path), x, ts[:2], path, None)
    np.testing.assert_allclose(out.numpy(), (x + (0.3 - 0.8) * (eps - x0)).numpy(), atol=1e-12)


def test_euler_is_ddim_and_euler_ancestral_is_ddim_with_eta_one():
    path = make_path("linear")
    x, noise = marginal_start(path, 8)
    ts = timesteps(path, 10)
    draws = torch.randn(40, 8, 2, generator=torch.Generator().manual_seed(6), dtype=torch.float64)

    def fresh():
        it = iter(draws)
        return lambda like: next(it)

    np.testing.assert_allclose(
        sample_euler(exact_model(path), x, ts, path, None).numpy(),
        sample_ddim(exact_model(path), x, ts, path, None).numpy(),
        atol=1e-10,
    )
    np.testing.assert_allclose(
        sample_euler_ancestral(exact_model(path), x, ts, path, fresh()).numpy(),
        sample_ddim(exact_model(path), x, ts, path, fresh(), eta=1.0).numpy(),
        atol=1e-10,
    )


def edm_algorithm_2(denoise, latents, sigmas, S_churn, S_min, S_max, S_noise, randn_like):
    """Karras et al. 2022, Algorithm 2, transcribed from NVlabs/edm generate.py (noise drawn only when gamma > 0)."""
    num_steps = len(sigmas) - 1
    x_next = latents
    for i, (t_cur, t_next) in enumerate(zip(sigmas[:-1], sigmas[1:])):
        x_cur = x_next
        gamma = min(S_churn / num_steps, np.sqrt(2) - 1) if S_min <= t_cur <= S_max else 0
        t_hat = t_cur + gamma * t_cur
        x_hat = x_cur + (t_hat**2 - t_cur**2).sqrt() * S_noise * randn_like(x_cur) if gamma > 0 else x_cur
        d_cur = (x_hat - denoise(x_hat, t_hat)) / t_hat
        x_next = x_hat + (t_next - t_hat) * d_cur
        if i < num_steps - 1:
            d_prime = (x_next - denoise(x_next, t_next)) / t_next
            x_next = x_hat + (t_next - t_hat) * (0.5 * d_cur + 0.5 * d_prime)
    return x_next


def test_heun_with_churn_is_edm_algorithm_2():
    path = make_path("edm")
    ts = timesteps(path, 18, "karras")
    x = torch.randn(16, 2, generator=torch.Generator().manual_seed(7), dtype=torch.float64) * 80
    draws = torch.randn(40, 16, 2, generator=torch.Generator().manual_seed(8), dtype=torch.float64)
    model = exact_model(path)
    churn = dict(s_churn=40.0, s_tmin=0.05, s_tmax=50.0, s_noise=1.003)
    it = iter(draws)
    ours = sample_heun(model, x, ts, path, lambda like: next(it), **churn)
    it2 = iter(draws)
    ref = edm_algorithm_2(lambda x, t: model(x, t)[0], x, ts, 40.0, 0.05, 50.0, 1.003, lambda like: next(it2))
    np.testing.assert_allclose(ours.numpy(), ref.numpy(), atol=1e-10)
    assert not torch.allclose(ours, sample_heun(model, x, ts, path, None))  # churn did something


def test_karras_and_exponential_grids_follow_their_formulas():
    path = make_path("edm")
    ts = timesteps(path, 5, "karras")
    ramp = np.linspace(0, 1, 5)
    expected = (80 ** (1 / 7) + ramp * (0.002 ** (1 / 7) - 80 ** (1 / 7))) ** 7
    np.testing.assert_allclose(ts[:-1].numpy(), expected, rtol=1e-12)
    assert ts[-1] == 0
    np.testing.assert_allclose(timesteps(path, 5, "exponential")[:-1].numpy(), np.geomspace(80, 0.002, 5), rtol=1e-12)
    linear = make_path("linear")
    grid = timesteps(linear, 6, "karras")
    ratios = linear.sigma(grid[:-1]) / linear.alpha(grid[:-1])
    top, bottom = (linear.sigma(torch.tensor(t)) / linear.alpha(torch.tensor(t)) for t in (999.0, 0.0))
    ramp = torch.linspace(0, 1, 6, dtype=torch.float64)
    np.testing.assert_allclose(
        ratios.numpy(), ((top ** (1 / 7) + ramp * (bottom ** (1 / 7) - top ** (1 / 7))) ** 7).numpy(), rtol=1e-9
    )
    assert grid[-1] == -1
    assert timesteps(make_path("rectified"), 4, "exponential")[0] == 1.0


@pytest.mark.parametrize(
    "sampler,nfe,steps,counted",
    [
        ("ddim", 7, 7, 7),
        ("heun", 3, 2, 3),
        ("heun", 10, 5, 9),
        ("heun", 11, 6, 11),
        ("midpoint", 5, 3, 5),
        ("rk4", 5, 2, 5),
        ("rk4", 12, 3, 9),
        ("dpmpp_2m", 4, 4, 4),
        ("unipc", 5, 5, 5),
        ("euler_maruyama", 6, 6, 6),
    ],
)
def test_nfe_counts_network_evaluations(sampler, nfe, steps, counted):
    path = make_path("linear")
    calls = []
    model = exact_model(path)

    def counting(x, t):
        calls.append(t)
        return model(x, t)

    x, noise = marginal_start(path, 4)
    assert steps_for(sampler, nfe) == steps
    SAMPLERS[sampler](counting, x, timesteps(path, steps, "karras"), path, noise)
    assert len(calls) == counted == nfe_of(sampler, steps) <= nfe


def test_dopri5_counts_its_own_evaluations():
    path = make_path("rectified")
    seen = []
    x = torch.randn(4, 2, dtype=torch.float64)
    sample_dopri5(exact_model(path), x, timesteps(path, 1), path, None, callback=lambda i, t, x, x0: seen.append(i))
    assert seen == list(range(len(seen))) and len(seen) > 6


@pytest.mark.parametrize(
    "sampler,nfe,message",
    [("heun", 1, "at least 3"), ("heun", 2, "at least 3"), ("rk4", 4, "at least 5"), ("midpoint", 2, "at least 3")],
)
def test_too_small_an_nfe_is_refused(sampler, nfe, message):
    with pytest.raises(UnnoiseError, match=message):
        steps_for(sampler, nfe)


def test_unknown_names_and_options_are_refused_naming_the_valid_ones():
    with pytest.raises(UnnoiseError, match="dpmpp_2m, dpmpp_2m_sde"):
        steps_for("dpm++", 10)
    with pytest.raises(UnnoiseError, match="karras, exponential"):
        timesteps(make_path("linear"), 10, "cosine")
    with pytest.raises(UnnoiseError, match="eta"):
        check_options("heun", {"eta": 0.5})
    check_options("heun", {"s_churn": 1.0})
    for sampler in ("ddim", "euler_ancestral", "dpmpp_2m_sde", "dpmpp_3m_sde"):
        with pytest.raises(UnnoiseError, match=r"\[0, 1\]"):
            SAMPLERS[sampler](
                exact_model(make_path("linear")),
                torch.zeros(1, 2),
                timesteps(make_path("linear"), 2),
                make_path("linear"),
                None,
                eta=-0.1,
            )
    with pytest.raises(UnnoiseError, match="alpha = 0"):
        sample_euler_maruyama(
            None, torch.zeros(1, 2), timesteps(make_path("rectified"), 2), make_path("rectified"), None
        )
