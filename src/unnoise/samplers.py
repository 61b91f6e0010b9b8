"""Samplers: short pure functions with one signature, over any Gaussian path.

    sample_x(model, x, ts, path, noise, callback=None, **options) -> x at ts[-1]

- model(x, t) -> (x0, eps): the network's prediction at time t, already converted by the path;
- x: the starting sample at ts[0] (B, ...);
- ts: the decreasing time grid, ending at path.t_end (clean data), from schedules.timesteps;
- noise(x): fresh N(0, I) noise shaped like x, drawn per sample (see PerSampleNoise);
- callback(i, t, x, x0): called after network evaluation i (counted from 0) at time t, with the state x
  that evaluation produced (for multi-stage solvers: the next stage's input) and its x0 estimate.

ODE solvers (euler, heun, midpoint, rk4, dopri5) integrate in the path's frame (schedules.frame):
x / alpha against sigma / alpha on diffusion paths (k-diffusion, EDM), (x, t) on the rectified path.
Multi-stage solvers take their last step, into clean data, as one Euler step (EDM Algorithm 2).
Nothing is kept between calls: a sampler holds no step counter and can be called twice.
"""

import inspect
import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from .errors import UnnoiseError, choose
from .schedules import SPACINGS, default_spacing, frame, sigma_ratio, slope, t_at, timesteps  # noqa: F401 (re-exported)


def _f(value, x):
    """A float64 coefficient as a scalar of x's dtype."""
    return torch.as_tensor(value).to(x.dtype)


def posterior(path, x, x0, t, s):
    """Mean and variance of q(x_s | x_t, x0) for s < t on any Gaussian path (DDPM eq. 7, generalised)."""
    a_t, s_t, a_s, s_s = path.alpha(t), path.sigma(t), path.alpha(s), path.sigma(s)
    a_ts = a_t / a_s
    var_ts = s_t**2 - a_ts**2 * s_s**2  # noise added going from s to t
    mean = (a_ts * s_s**2 / s_t**2) * x + (a_s * var_ts / s_t**2) * x0
    return mean, var_ts * s_s**2 / s_t**2


def check_eta(eta):
    if not 0.0 <= eta <= 1.0:
        raise UnnoiseError(f"eta must lie in [0, 1], got {eta}")


def ddim_step(path, x, x0, eps, t, s, eta, noise):
    """x_s = alpha_s x0 + sqrt(sigma_s^2 - std^2) eps + std z, std = eta * posterior std (DDIM eq. 12)."""
    a_t, s_t, a_s, s_s = (float(v) for v in (path.alpha(t), path.sigma(t), path.alpha(s), path.sigma(s)))
    std = eta * s_s / s_t * max(0.0, s_t**2 - (a_t / a_s) ** 2 * s_s**2) ** 0.5 if eta > 0 else 0.0
    x = a_s * x0 + max(0.0, s_s**2 - std**2) ** 0.5 * eps
    return x + std * noise(x) if std > 0 else x


def sample_ddpm(model, x, ts, path, noise, callback=None):
    """DDPM ancestral sampling (Ho et al. 2020, Algorithm 2), each step a draw from q(x_s | x_t, x0_hat)."""
    for i in range(len(ts) - 1):
        x0, _ = model(x, ts[i])
        mean, var = posterior(path, x, x0, ts[i], ts[i + 1])
        x = mean + _f(var.sqrt(), x) * noise(x) if var > 0 else mean
        if callback:
            callback(i, ts[i], x, x0)
    return x


def sample_ddim(model, x, ts, path, noise, callback=None, eta=0.0):
    """DDIM (Song, Meng & Ermon 2021, eq. 12): eta = 0 is deterministic, eta = 1 matches DDPM's step."""
    check_eta(eta)
    for i in range(len(ts) - 1):
        x0, eps = model(x, ts[i])
        x = ddim_step(path, x, x0, eps, ts[i], ts[i + 1], eta, noise)
        if callback:
            callback(i, ts[i], x, x0)
    return x


def sample_euler_ancestral(model, x, ts, path, noise, callback=None, eta=1.0):
    """Euler ancestral (k-diffusion sample_euler_ancestral): Euler to sigma_down, then noise sigma_up.

    In x / alpha with sigma_up = eta sqrt(s^2 (t^2 - s^2) / t^2) this is exactly DDIM's step with the same eta.
    """
    return sample_ddim(model, x, ts, path, noise, callback, eta)


def churn(path, x, t, noise, gamma, s_tmin, s_tmax, s_noise):
    """EDM Algorithm 2 lines 4-6: raise the noise level sigma/alpha by (1 + gamma) with fresh noise."""
    level = sigma_ratio(path, t)
    if gamma <= 0 or not (s_tmin <= level <= s_tmax) or not torch.isfinite(level):
        return x, t
    t_hat = path.t_from_sigma_ratio(level * (1 + gamma))
    a = path.alpha(t_hat) / path.alpha(t)  # forward kernel q(x_t_hat | x_t)
    std = (path.sigma(t_hat) ** 2 - a**2 * path.sigma(t) ** 2).clamp(min=0).sqrt()
    return _f(a, x) * x + _f(std * s_noise, x) * noise(x), t_hat


# Explicit Runge-Kutta tableaus (nodes, stage coefficients, weights) in the frame's tau.
TABLEAUS = {
    "euler": ((0,), (), (1,)),
    "heun": ((0, 1), ((1,),), (0.5, 0.5)),
    "midpoint": ((0, 0.5), ((0.5,),), (0, 1)),
    "rk4": ((0, 0.5, 0.5, 1), ((0.5,), (0, 0.5), (0, 0, 1)), (1 / 6, 1 / 3, 1 / 3, 1 / 6)),
}


def rk_step(model, path, x, t, s, tableau, evals, callback):
    """One explicit Runge-Kutta step from t to s on dy/dtau, y = x / c (schedules.frame); returns (x, evals)."""
    nodes, coeffs, weights = tableau
    (c_t, tau_t), (c_s, tau_s) = frame(path, t), frame(path, s)
    h, y, slopes = tau_s - tau_t, x / _f(c_t, x), []  # y: (B, ...)
    x_k, t_k = x, t
    for k in range(len(nodes)):
        x0, eps = model(x_k, t_k)
        slopes.append(slope(path, x0, eps))
        t_eval, last = t_k, k + 1 == len(nodes)
        t_k = s if last or nodes[k + 1] == 1 else t_at(path, tau_t + nodes[k + 1] * h)
        c_k = c_s if last else frame(path, t_k)[0]
        row = weights if last else coeffs[k]
        x_k = (y + _f(h, x) * sum(_f(w, x) * d for w, d in zip(row, slopes) if w)) * _f(c_k, x)
        if callback:
            callback(evals + k, t_eval, x_k, x0)
    return x_k, evals + len(nodes)


def solve_ode(model, x, ts, path, noise, callback, tableau, s_churn=0.0, s_tmin=0.0, s_tmax=math.inf, s_noise=1.0):
    """Fixed-step ODE solving on the grid, EDM-style churn optional; the last step into clean data is Euler."""
    if s_churn < 0 or s_noise < 0:
        raise UnnoiseError(f"s_churn and s_noise must be >= 0, got {s_churn} and {s_noise}")
    n = len(ts) - 1
    gamma = min(s_churn / n, math.sqrt(2) - 1)
    evals = 0
    for i in range(n):
        x, t = churn(path, x, ts[i], noise, gamma, s_tmin, s_tmax, s_noise)
        last = path.sigma(ts[i + 1]) == 0
        x, evals = rk_step(model, path, x, t, ts[i + 1], TABLEAUS["euler"] if last else tableau, evals, callback)
    return x


def sample_euler(model, x, ts, path, noise, callback=None, s_churn=0.0, s_tmin=0.0, s_tmax=math.inf, s_noise=1.0):
    """Euler on the probability-flow ODE (Karras et al. 2022, Algorithm 2 without its 2nd-order correction)."""
    return solve_ode(model, x, ts, path, noise, callback, TABLEAUS["euler"], s_churn, s_tmin, s_tmax, s_noise)


def sample_heun(model, x, ts, path, noise, callback=None, s_churn=0.0, s_tmin=0.0, s_tmax=math.inf, s_noise=1.0):
    """Heun's 2nd-order method with stochastic churn (Karras et al. 2022, EDM Algorithm 2)."""
    return solve_ode(model, x, ts, path, noise, callback, TABLEAUS["heun"], s_churn, s_tmin, s_tmax, s_noise)


def sample_midpoint(model, x, ts, path, noise, callback=None):
    """Explicit midpoint rule (2nd-order Runge-Kutta) on the probability-flow ODE."""
    return solve_ode(model, x, ts, path, noise, callback, TABLEAUS["midpoint"])


def sample_rk4(model, x, ts, path, noise, callback=None):
    """Classical 4th-order Runge-Kutta on the probability-flow ODE."""
    return solve_ode(model, x, ts, path, noise, callback, TABLEAUS["rk4"])


def half_log_snr(alpha, sigma):
    """lambda = log(alpha / sigma), DPM-Solver's time variable (-inf at pure noise, +inf at clean data)."""
    if sigma == 0:
        return math.inf
    return math.log(alpha) - math.log(sigma) if alpha > 0 else -math.inf


def grid_coefficients(path, ts):
    """alpha, sigma and lambda at every grid point, as floats: three lists of len(ts)."""
    alphas, sigmas = [float(v) for v in path.alpha(ts)], [float(v) for v in path.sigma(ts)]
    return alphas, sigmas, [half_log_snr(a, s) for a, s in zip(alphas, sigmas)]


def dpmpp_step(x, x0, x0_prev, a_s, s_s, s_t, h, h_prev, eta=0.0, noise=None):
    """One DPM-Solver++(2M) step, its SDE form when eta > 0 (Lu et al. 2022), h = lambda_s - lambda_t.

    x_s = (s_s / s_t) e^(-eta h) x + a_s (1 - e^(-(1 + eta) h)) D (+ s_s sqrt(1 - e^(-2 eta h)) z), with the
    midpoint D = x0 + (h / 2 h_prev)(x0 - x0_prev), or D = x0 (first order) without x0_prev.
    """
    if s_s == 0:  # h = inf: lands on alpha_s x0
        return a_s * x0
    d = x0 if x0_prev is None else x0 + (h / h_prev / 2) * (x0 - x0_prev)
    x_next = s_s / s_t * (math.exp(-eta * h) if eta > 0 else 1.0) * x + a_s * -math.expm1(-(1 + eta) * h) * d
    if eta > 0:
        x_next = x_next + s_s * math.sqrt(-math.expm1(-2 * eta * h)) * noise(x)
    return x_next


def sample_dpmpp_2m_sde(model, x, ts, path, noise, callback=None, eta=1.0):
    """DPM-Solver++(2M) SDE (Lu et al. 2022, DPM-Solver++, Algorithm 2 and its SDE variant), midpoint form.

    eta = 0 is the ODE solver DPM-Solver++(2M); the first step, and the last into clean data, are first order.
    k-diffusion: sample_dpmpp_2m_sde(solver_type="midpoint").
    """
    check_eta(eta)
    alphas, sigmas, lam = grid_coefficients(path, ts)
    x0_prev = None
    for i in range(len(ts) - 1):
        x0, _ = model(x, ts[i])
        h_prev = lam[i] - lam[i - 1] if i > 0 else None
        x = dpmpp_step(x, x0, x0_prev, alphas[i + 1], sigmas[i + 1], sigmas[i], lam[i + 1] - lam[i], h_prev, eta, noise)
        x0_prev = x0
        if callback:
            callback(i, ts[i], x, x0)
    return x


def sample_dpmpp_2m(model, x, ts, path, noise, callback=None):
    """DPM-Solver++(2M) (Lu et al. 2022, Algorithm 2): multistep 2nd order in lambda on the data prediction."""
    return sample_dpmpp_2m_sde(model, x, ts, path, noise, callback, eta=0.0)


def sample_dpmpp_3m_sde(model, x, ts, path, noise, callback=None, eta=1.0):
    """DPM-Solver++(3M) SDE (Lu et al. 2022, third-order multistep in lambda; k-diffusion's sample_dpmpp_3m_sde).

    With r0 = h_1 / h, r1 = h_2 / h and he = (1 + eta) h, the third-order step adds to the first-order one
    a_s (phi2 D1 - phi3 D2), phi2 = 1 - (1 - e^-he) / he, phi3 = phi2 / he - 1/2, where
    D1 = d0 + r0 (d0 - d1) / (r0 + r1), D2 = (d0 - d1) / (r0 + r1), d0 = (x0 - x0_1) / r0, d1 = (x0_1 - x0_2) / r1.
    eta = 0 is the ODE solver (diffusers: solver_order=3, which it matches). The order ramps up as diffusers'
    does: first order, then its midpoint second-order step, then third order; the last step into clean
    data is x0. diffusers' third-order SDE step writes -1/2 where phi3 has +1/2 (its D2 weight tends to
    -1, not 0, as h -> 0), so with eta > 0 the two agree for two steps only (tests/test_diffusers_parity.py).
    """
    check_eta(eta)
    alphas, sigmas, lam = grid_coefficients(path, ts)
    x0s, hs = [], []  # the last two x0 estimates and lambda steps, newest last
    for i in range(len(ts) - 1):
        x0, _ = model(x, ts[i])
        a_s, s_s, h = alphas[i + 1], sigmas[i + 1], lam[i + 1] - lam[i]
        if len(x0s) < 2 or s_s == 0:
            x = dpmpp_step(x, x0, x0s[-1] if x0s else None, a_s, s_s, sigmas[i], h, hs[-1] if hs else None, eta, noise)
        else:  # the first-order step (with its noise), then the corrections
            he = (1 + eta) * h
            r0, r1 = hs[-1] / h, hs[-2] / h
            d0, d1 = (x0 - x0s[-1]) / r0, (x0s[-1] - x0s[-2]) / r1
            phi2 = 1 + math.expm1(-he) / he
            phi3 = phi2 / he - 0.5
            x = dpmpp_step(x, x0, None, a_s, s_s, sigmas[i], h, None, eta, noise) + a_s * (
                phi2 * (d0 + r0 * (d0 - d1) / (r0 + r1)) - phi3 * (d0 - d1) / (r0 + r1)
            )
        x0s, hs = (x0s + [x0])[-2:], (hs + [h])[-2:]
        if callback:
            callback(i, ts[i], x, x0)
    return x


def sample_dpmpp_3m(model, x, ts, path, noise, callback=None):
    """DPM-Solver++(3M) (Lu et al. 2022): the ODE solver, sample_dpmpp_3m_sde with eta = 0."""
    return sample_dpmpp_3m_sde(model, x, ts, path, noise, callback, eta=0.0)


def unipc_corrector_weights(h, r):
    """UniC-2 weights (rho_1, rho_2) for B(h) = e^h - 1 (Zhao et al. 2023, bh2): solve R rho = b."""
    hh = -h
    phi = math.expm1(hh) / hh - 1
    b1 = phi / math.expm1(hh)
    b2 = 2 * (phi / hh - 0.5) / math.expm1(hh)
    rho1 = (b1 - b2) / (1 - r) if math.isfinite(r) else 0.0
    return rho1, b1 - rho1


def sample_unipc(model, x, ts, path, noise, callback=None):
    """UniPC-2M, bh2 (Zhao et al. 2023, UniPC): DPM-Solver++(2M) as predictor, then the UniC corrector.

    After each network evaluation the corrector re-takes the previous step with the new x0 estimate (no
    extra evaluation); the first step and the last, into clean data, are first order (diffusers' default).
    """
    alphas, sigmas, lam = grid_coefficients(path, ts)
    x0s, x_last = [], None  # the last two x0 estimates; x before the last step
    for i in range(len(ts) - 1):
        x0, _ = model(x, ts[i])
        if i > 0:  # UniC: redo the step into x_i with x0_{i-1} and x0_i
            h = lam[i] - lam[i - 1]
            corr = 0.5 * (x0 - x0s[-1])
            if i > 1:
                r = (lam[i - 2] - lam[i - 1]) / h
                rho1, rho2 = unipc_corrector_weights(h, r)
                corr = (rho1 / r if math.isfinite(r) else 0.0) * (x0s[-2] - x0s[-1]) + rho2 * (x0 - x0s[-1])
            x = dpmpp_step(x_last, x0s[-1] + corr, None, alphas[i], sigmas[i], sigmas[i - 1], h, None)
        h_prev = lam[i] - lam[i - 1] if i > 0 else None
        x_last, x0_prev, x0s = x, (x0s[-1] if x0s else None), (x0s + [x0])[-2:]
        x = dpmpp_step(x, x0, x0_prev, alphas[i + 1], sigmas[i + 1], sigmas[i], lam[i + 1] - lam[i], h_prev)
        if callback:
            callback(i, ts[i], x, x0)
    return x


def sample_euler_maruyama(model, x, ts, path, noise, callback=None):
    """Euler-Maruyama on the reverse-time SDE (Song et al. 2021, eq. 6), in x / alpha with time sigma / alpha.

    With s = sigma / alpha the forward SDE is dy = sqrt(2 s) dW, so a step is
    y += 2 (s_next - s) eps + sqrt(2 s (s - s_next)) z; the last step, into clean data, is the denoised x0.
    """
    if path.alpha(ts[0]) == 0:
        raise UnnoiseError(
            f"euler_maruyama cannot start where alpha = 0 ({path.name} path, t = {float(ts[0]):g}): "
            "its reverse SDE is singular there; use ddpm, euler_ancestral or dpmpp_2m_sde"
        )
    for i in range(len(ts) - 1):
        t, s = ts[i], ts[i + 1]
        x0, eps = model(x, t)
        if path.sigma(s) == 0:
            x = _f(path.alpha(s), x) * x0
        else:
            lt, ls = sigma_ratio(path, t), sigma_ratio(path, s)
            y = x / _f(path.alpha(t), x) + _f(2 * (ls - lt), x) * eps + _f((2 * lt * (lt - ls)).sqrt(), x) * noise(x)
            x = y * _f(path.alpha(s), x)
        if callback:
            callback(i, t, x, x0)
    return x


def sample_dopri5(model, x, ts, path, noise=None, callback=None, rtol=1e-5, atol=1e-5):
    """Probability-flow ODE (Song et al. 2021, eq. 13) by adaptive Dormand-Prince 5(4) (torchdiffeq): the reference.

    Integrates dy/dlog(tau) = tau dy/dtau in the path's frame from ts[0] to path.t_min, then one Euler step
    into clean data; rtol / atol set the cost, not the grid (only ts[0] and ts[-1] are used).
    """
    from torchdiffeq import odeint

    evals = []
    t_last = torch.tensor(max(float(path.t_min), float(ts[-1])), dtype=torch.float64)
    (c0, tau0), (c1, tau1) = frame(path, ts[0]), frame(path, t_last)

    def field(u, y):  # dy/du at u = log tau
        tau = u.double().exp()
        t = t_at(path, tau)
        x_t = y * _f(frame(path, t)[0], y)
        x0, eps = model(x_t, t)
        if callback:
            callback(len(evals), t, x_t, x0)
        evals.append(t)
        return _f(tau, y) * slope(path, x0, eps)

    grid = torch.stack([tau0, tau1]).log().to(x.dtype)
    y = odeint(field, x / _f(c0, x), grid, rtol=rtol, atol=atol, method="dopri5")[-1]
    x = y * _f(c1, y)
    if t_last == ts[-1]:
        return x
    return rk_step(model, path, x, t_last, ts[-1], TABLEAUS["euler"], len(evals), callback)[0]


@dataclass(frozen=True)
class Sampler:
    """A sampler and its facts: network evaluations per step (the last step costs one), whether it injects fresh
    noise, whether its tolerance rather than the NFE sets its cost, and the NFE it runs at when none is given."""

    fn: Callable
    stages: int = 1
    stochastic: bool = False
    adaptive: bool = False
    default_nfe: int = 50

    def __call__(self, *args, **kwargs):
        return self.fn(*args, **kwargs)

    @property
    def options(self):
        """The keyword options it takes (eta, s_churn, ...), with their defaults: those after the common signature."""
        params = list(inspect.signature(self.fn).parameters.values())
        return {p.name: p.default for p in params if p.name not in COMMON}


COMMON = ("model", "x", "ts", "path", "noise", "callback")  # the one signature every sampler shares
SAMPLERS = {
    "ddpm": Sampler(sample_ddpm, stochastic=True),
    "ddim": Sampler(sample_ddim),
    "euler": Sampler(sample_euler),
    "euler_ancestral": Sampler(sample_euler_ancestral, stochastic=True),
    "heun": Sampler(sample_heun, stages=2),
    "midpoint": Sampler(sample_midpoint, stages=2),
    "rk4": Sampler(sample_rk4, stages=4),
    "dpmpp_2m": Sampler(sample_dpmpp_2m, default_nfe=20),  # a multistep solver: 20 suffice (docs/performance.md)
    "dpmpp_2m_sde": Sampler(sample_dpmpp_2m_sde, stochastic=True, default_nfe=30),
    "dpmpp_3m": Sampler(sample_dpmpp_3m),
    "dpmpp_3m_sde": Sampler(sample_dpmpp_3m_sde, stochastic=True),
    "unipc": Sampler(sample_unipc),
    "euler_maruyama": Sampler(sample_euler_maruyama, stochastic=True),
    "dopri5": Sampler(sample_dopri5, adaptive=True),
}
NAMES = tuple(SAMPLERS)
FIXED = tuple(name for name, s in SAMPLERS.items() if not s.adaptive)  # those the NFE prices: what a server offers
DETERMINISTIC = tuple(name for name, s in SAMPLERS.items() if not s.stochastic)


def get(name):
    """The Sampler called name, or one line naming the choices; a family's own Sampler passes through."""
    return name if isinstance(name, Sampler) else SAMPLERS[choose("sampler", name, NAMES)]


def steps_for(sampler, nfe):
    """Steps a sampler takes for a budget of nfe network evaluations; k-stage solvers cost k (steps - 1) + 1."""
    chosen = get(sampler)
    if chosen.adaptive:
        return 1  # adaptive: its tolerance, not nfe, sets the cost
    k = chosen.stages
    if k > 1 and nfe < k + 1:
        raise UnnoiseError(f"{sampler} needs an nfe of at least {k + 1} ({k} per step, 1 for the last step), got {nfe}")
    return (nfe - 1) // k + 1


def nfe_of(sampler, steps):
    """Network evaluations a fixed-step sampler makes on a grid of `steps` steps."""
    return get(sampler).stages * (steps - 1) + 1


def check_options(sampler, options):
    """Refuse options the sampler does not take, naming those it does."""
    known = get(sampler).options
    for name in options:
        if name not in known:
            valid = ", ".join(known) or "none"
            raise UnnoiseError(f"sampler {sampler} takes no option {name!r}; its options: {valid}")
    if "eta" in options:
        check_eta(options["eta"])
    return options


def sample_seed(seed, i):
    """The seed of sample i's own random stream in a draw seeded `seed`, so a sample never depends on its batch."""
    return seed * 1_000_003 + i


class PerSampleNoise:
    """N(0, I) noise with one random generator per sample, so a sample never depends on the batch size.

    Each generator draws a block of future draws at once (the same blocks whatever the batch), which
    keeps the cost at a few random calls per sample rather than one per sample and step.
    """

    def __init__(self, seeds, block_numel=4096):
        self.generators = [torch.Generator().manual_seed(int(s)) for s in seeds]
        self.block_numel, self.block, self.used = block_numel, None, 0

    @classmethod
    def for_range(cls, seed, start, stop):
        """Generators for samples start..stop-1 of the run seeded `seed`."""
        return cls(sample_seed(seed, i) for i in range(start, stop))

    def __call__(self, like):
        shape = tuple(like.shape[1:])
        if self.block is None or self.used == self.block.shape[1] or self.block.shape[2:] != shape:
            draws = max(1, self.block_numel // max(1, like[0].numel()))
            self.block = torch.stack(
                [torch.randn((draws,) + shape, generator=g, dtype=torch.float64) for g in self.generators]
            )  # (B, draws, ...)
            self.used = 0
        self.used += 1
        return self.block[:, self.used - 1].to(like)

    def initial(self, shape, dtype=torch.float32):
        """The starting noise x_T: the first draw of each sample's stream."""
        return self(torch.empty((len(self.generators),) + tuple(shape), dtype=dtype))
