"""Exact log-likelihood through the probability-flow ODE (Chen et al. 2018; Song et al. 2021, Appendix D).

Integrate, from data (t ~ 0) to noise (t_max),

    dx/dt = v(x, t),        d delta/dt = div v(x, t),

then log p_0(x) = log p_T(x_T) + delta_T  (instantaneous change of variables). The divergence is
exact (one backward pass per dimension) in low dimension, or Hutchinson's estimate z^T (dv/dx) z
with probes z fixed for the whole solve (Grathwohl et al. 2019, FFJORD), unbiased for log p.

Units. The network works on model units x_m = (x - shift) / scale (Dataset.normalize), so
log p_data(x) = log p_model(x_m) - sum(log scale). `nll` reports both; nll_nats and bpd are in
data units, bpd = nll / (D ln 2), and can be negative: these are densities, not probabilities.
Images are in [0, 1]; their bpd follows the image literature's 8-bit scale, pixels on [0, 256):
bpd = nll / (D ln 2) + 8 (a continuous density, not dequantized).
"""

import math
import time

import torch

from . import data
from .errors import UnnoiseError, bounded, choose
from .ode import velocity_field

DIVERGENCES = ("auto", "exact", "hutchinson")
EXACT_UP_TO = 16  # auto: the exact divergence up to this many dimensions (one backward pass each), Hutchinson above
T_MIN = 1e-5  # start just off the data end, where x0-from-eps conversions divide by sigma = 0 (Song et al. 2021)


def exact_divergence(v, x):
    """sum_d dv_d / dx_d by one vector-Jacobian product per dimension: (B,)."""
    rows = [torch.autograd.grad(v[:, d].sum(), x, retain_graph=True)[0][:, d] for d in range(x.shape[1])]
    return torch.stack(rows, 1).sum(1)


def hutchinson_divergence(v, x, probes):
    """Hutchinson (1989): mean over probes z of z^T (dv/dx) z, probes (K, B, D); unbiased for the divergence."""
    est = [(torch.autograd.grad(v, x, z, retain_graph=True)[0] * z).sum(1) for z in probes]
    return torch.stack(est).mean(0)


def probes_for(x, k, generator, kind="rademacher"):
    """K probe vectors per point with E[z z^T] = I: Rademacher signs or standard Gaussians, (K, B, D)."""
    shape = (k,) + tuple(x.shape)
    if kind == "gaussian":
        return torch.randn(shape, generator=generator, dtype=torch.float64)
    return torch.randint(0, 2, shape, generator=generator).double() * 2 - 1


def prior_logp(z, var):
    """log N(z; 0, var I) per row: (B,)."""
    d = z.shape[1]
    return -0.5 * z.square().sum(1) / var - 0.5 * d * math.log(2 * math.pi * var)


def log_likelihood(velocity, x, path, probes=None, prior=None, rtol=1e-6, atol=1e-6):
    """log p_0(x) in the units velocity works in, (B,); probes None for the exact divergence.

    The default prior at t_max is N(0, (alpha^2 + sigma^2) I): exact where the path ends in pure noise,
    and where it does not (alpha(t_max) > 0) right to second order in alpha for data of zero mean and
    unit variance, as model units are. prior: another log density z -> (B,) at t_max.
    """
    from torchdiffeq import odeint

    def dynamics(t, state):
        with torch.enable_grad():
            z = state[0].detach().requires_grad_(True)
            v = velocity(z, t)  # (B, D)
            div = exact_divergence(v, z) if probes is None else hutchinson_divergence(v, z, probes)
        return v.detach(), div.detach()

    ts = torch.tensor([T_MIN, float(path.t_max)], dtype=torch.float64)
    start = (x.double(), torch.zeros(x.shape[0], dtype=torch.float64))
    z, delta = (s[-1] for s in odeint(dynamics, start, ts, method="dopri5", rtol=rtol, atol=atol))
    if prior is None:
        var = float(path.alpha(path.t_max) ** 2 + path.sigma(path.t_max) ** 2)
        return prior_logp(z, var) + delta
    return prior(z) + delta


def nll(run, n=1000, divergence="auto", probes=1, seed=0, batch_size=500, rtol=1e-5, atol=1e-5, levels=None):
    """Negative log-likelihood of n held-out points under run: a dict for `unnoise likelihood --json`.

    levels: images only; the bound on bits per dimension of the images as K-level discrete data (the
    grid an AR model over pixels is scored on), by uniform dequantization (Theis et al. 2016): with u
    uniform over the pixel's bin of width 1 / (K - 1), -log2 P(bin) <= E_u[-log2 p(x + u)] + D log2(K - 1).
    """
    choose("divergence", divergence, DIVERGENCES)
    if run.latent is not None:
        raise UnnoiseError(
            f"{run.folder} models the latents of an autoencoder: the ODE gives their likelihood, not the pixels'; "
            "measure a pixel run (without --latent)"
        )
    n, probes, batch_size = (bounded(k, v) for k, v in (("n", n), ("probes", probes), ("batch-size", batch_size)))
    velocity = velocity_field(run)  # a conditional run is measured through its unconditional ('no class') branch
    dataset = data.load(run.cfg.data, "heldout", n, size=run.cfg.size, channels=run.cfg.channels)
    x = dataset.x.double()
    if levels is not None:
        u = torch.rand(x.shape, generator=torch.Generator().manual_seed(seed + 1), dtype=torch.float64) - 0.5
        x = (x * (levels - 1)).round() / (levels - 1) + u / (levels - 1)
    shift, scale = (dataset.shift, dataset.scale) if run.images else (run.shift, run.scale)  # the run's own units
    x = ((x - shift.double()) / scale.double()).flatten(1)  # (n, D) model units
    if divergence == "auto":
        divergence = "exact" if x.shape[1] <= EXACT_UP_TO else "hutchinson"
    generator = torch.Generator().manual_seed(seed)
    start, logp = time.perf_counter(), []
    prior = None if run.source.gaussian else run.source.log_prob  # the source's density at t_max
    for chunk in x.split(batch_size):
        z = probes_for(chunk, probes, generator) if divergence == "hutchinson" else None
        logp.append(log_likelihood(velocity, chunk, run.path, z, prior=prior, rtol=rtol, atol=atol))
    logp_model = torch.cat(logp)  # (n,)
    # data = scale * model + shift in each of the D coordinates (images: one scale for every pixel, so D log scale)
    log_det = float(torch.log(scale.double()).expand(x.shape[1]).sum())
    result = summary(
        -logp_model + log_det,
        x.shape[1],
        log_det,
        divergence,
        probes if divergence == "hutchinson" else 0,
        time.perf_counter() - start,
    )
    if levels is not None:
        result["bpd"] += math.log2(levels - 1)
        result["space"] = f"{levels}-level pixels, dequantized bound"
    elif run.images:  # the images' convention: pixels on [0, 256), not [0, 1] (no dequantization)
        result["bpd"] += 8.0
        result["space"] = "8-bit pixels"
    return result


def summary(nll_data, d, log_det, divergence, probes, seconds):
    """Mean NLL with its standard error over points, in nats and bits per dimension."""
    n = nll_data.shape[0]
    mean = float(nll_data.mean())
    stderr = float(nll_data.std() / math.sqrt(n)) if n > 1 else None
    return {
        "nll_nats": mean,
        "stderr_nats": stderr,
        "bpd": mean / (d * math.log(2)),
        "n": n,
        "nll_nats_model_units": mean - log_det,
        "space": "data",
        "dim": d,
        "divergence": divergence,
        "probes": probes,
        "seconds": seconds,
    }
