"""Likelihood through the probability-flow ODE against closed forms: Gaussian data with its exact velocity."""

import math

import pytest
import torch

from unnoise.likelihood import log_likelihood, probes_for
from unnoise.paths import make_path

# A correlated Gaussian, so that the velocity's Jacobian is not diagonal (on a diagonal one Rademacher
# probes would make Hutchinson's estimate exact and the agreement test empty).
MU = torch.tensor([1.0, -0.5], dtype=torch.float64)
COV = torch.tensor([[0.25, 0.3], [0.3, 1.0]], dtype=torch.float64)


def marginal(path, t):
    """x_t ~ N(alpha MU, alpha^2 COV + sigma^2 I)."""
    a, s = path.alpha(t), path.sigma(t)
    return torch.distributions.MultivariateNormal(a * MU, a**2 * COV + s**2 * torch.eye(2, dtype=torch.float64))


def exact_velocity(path):
    """dx/dt = E[alpha' x0 + sigma' eps | x_t] = alpha' MU + (a a' COV + s s' I)(a^2 COV + s^2 I)^-1 (x - a MU)."""

    def velocity(x, t):
        a, s = path.alpha(t), path.sigma(t)
        da, ds = path.derivatives(t)
        eye = torch.eye(2, dtype=torch.float64)
        gain = (a * da * COV + s * ds * eye) @ torch.linalg.inv(a**2 * COV + s**2 * eye)  # (2, 2)
        return da * MU + (x - a * MU) @ gain.T

    return velocity


def points(n, seed=0):
    z = torch.randn(n, 2, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return MU + z @ torch.linalg.cholesky(COV).T


@pytest.mark.parametrize("schedule", ["rectified", "vp-cosine"])
def test_exact_divergence_matches_the_analytic_log_density(schedule):
    path = make_path(schedule)
    x = torch.cat([points(64), torch.tensor([[3.0, 3.0], [-2.0, -5.0]], dtype=torch.float64)])  # tails too
    prior = None if schedule == "rectified" else marginal(path, path.t_max).log_prob  # vp-cosine stops short of noise
    logp = log_likelihood(exact_velocity(path), x, path, prior=prior)
    assert (logp - marginal(path, 0.0).log_prob(x)).abs().max() < 1e-3


def test_default_prior_is_off_where_the_path_stops_short_of_pure_noise():
    path = make_path("vp-cosine")  # alpha(t_max) = 1.6e-3 > 0 and the data are not centred: a small, real error
    x = points(64)
    logp = log_likelihood(exact_velocity(path), x, path)
    assert (logp - marginal(path, 0.0).log_prob(x)).abs().max() > 1e-3


def test_hutchinson_agrees_with_exact_within_its_standard_error():
    path = make_path("rectified")
    x = points(400, seed=1)
    exact = log_likelihood(exact_velocity(path), x, path)
    hutch = log_likelihood(exact_velocity(path), x, path, probes=probes_for(x, 1, torch.Generator().manual_seed(0)))
    diff = hutch - exact
    assert diff.std() > 0.05  # noisy per point ...
    assert diff.mean().abs() < 3 * diff.std() / math.sqrt(len(x))  # ... but unbiased
    truth = marginal(path, 0.0).log_prob(x)
    assert (hutch.mean() - truth.mean()).abs() < 3 * hutch.std() / math.sqrt(len(x))


def test_more_probes_shrink_the_hutchinson_error():
    path = make_path("rectified")
    x = points(200, seed=2)
    exact = log_likelihood(exact_velocity(path), x, path)
    errors = []
    for k in (1, 16):
        probes = probes_for(x, k, torch.Generator().manual_seed(k), kind="gaussian")
        errors.append((log_likelihood(exact_velocity(path), x, path, probes=probes) - exact).std())
    assert errors[1] < errors[0] / 2.5  # 1 / sqrt(16) = 1/4 in theory
