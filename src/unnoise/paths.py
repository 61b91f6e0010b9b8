"""Gaussian paths x_t = alpha(t) x0 + sigma(t) eps, the one core every continuous family shares.

A path answers alpha(t), sigma(t) and the log signal-to-noise ratio, and converts between what a
network can predict: eps, x0, v (Salimans & Ho 2022), velocity (flow matching) and the score.
Samplers only ever ask the path, so they never need to know which family trained the network.

Time runs from the data end `t_end` (alpha = 1, sigma = 0) to the noisiest time `t_max` a
sampler starts from. Discrete DDPM paths count integer timesteps 0..T-1 as diffusers does, with
t = -1 standing for clean data (diffusers' `final_alpha_cumprod` with `set_alpha_to_one`).
"""

import math

import torch

from .errors import UnnoiseError

PREDICTIONS = ("eps", "x0", "v", "velocity", "edm")
DISCRETE_SCHEDULES = ("linear", "scaled_linear", "cosine", "sigmoid")
SCHEDULES = DISCRETE_SCHEDULES + ("vp-cosine", "rectified", "edm")


def _bcast(value, x):
    """Reshape a (B,) or scalar tensor so it broadcasts over x of shape (B, ...)."""
    value = torch.as_tensor(value, dtype=x.dtype, device=x.device)
    return value.reshape(value.shape + (1,) * (x.dim() - value.dim()))


class GaussianPath:
    """Base class: subclasses define alpha(t), sigma(t) and, where it exists, their derivative."""

    name = "path"
    t_end = 0.0  # clean data
    t_max = 1.0  # noisiest time a sampler starts from
    t_min = 1e-3  # least noisy time a Karras or exponential grid reaches before clean data
    discrete = False
    frame = "ve"  # how ODE samplers see the path (see samplers.frame): "ve" (k-diffusion, EDM) or "flow"
    sigma_data = 0.5  # EDM preconditioning's data standard deviation (prediction "edm")

    def alpha(self, t):
        raise NotImplementedError

    def sigma(self, t):
        raise NotImplementedError

    def derivatives(self, t):
        """(d alpha / dt, d sigma / dt), needed for velocity targets."""
        raise UnnoiseError(f"the {self.name} path has no time derivative; velocity prediction needs a continuous path")

    def log_snr(self, t):
        """lambda(t) = log(alpha^2 / sigma^2)."""
        t = torch.as_tensor(t, dtype=torch.float64)
        return 2 * (torch.log(self.alpha(t)) - torch.log(self.sigma(t)))

    def t_from_sigma_ratio(self, ve):
        """The time whose sigma / alpha equals ve: the inverse samplers need for Karras grids and S_churn."""
        raise NotImplementedError

    def net_time(self, t):
        """The time the network sees, scaled to [0, 1]."""
        return torch.as_tensor(t, dtype=torch.float32)

    def net_input(self, x, t):
        """What the network sees of x_t (EDM scales it by c_in; every other path passes it through)."""
        return x

    def sample_t(self, n, generator):
        """Training times: uniform over (0, t_max]."""
        return torch.rand(n, generator=generator) * self.t_max

    def add_noise(self, x0, eps, t):
        """x_t = alpha(t) x0 + sigma(t) eps."""
        return _bcast(self.alpha(t), x0) * x0 + _bcast(self.sigma(t), x0) * eps

    def target(self, prediction, x0, eps, t):
        """What a network of this prediction type is trained to output at (x0, eps, t)."""
        if prediction == "eps":
            return eps
        if prediction == "x0":
            return x0
        a, s = _bcast(self.alpha(t), x0), _bcast(self.sigma(t), x0)
        if prediction == "v":
            return a * eps - s * x0
        if prediction == "velocity":
            da, ds = (_bcast(d, x0) for d in self.derivatives(t))
            return da * x0 + ds * eps
        if prediction == "edm":  # F = (x0 - c_skip x) / c_out, in the variables x / alpha, sigma / alpha
            c_skip, c_out, _, _ = edm_scalings(s / a, self.sigma_data)
            return (x0 - c_skip * (x0 + s / a * eps)) / c_out
        raise UnnoiseError(f"unknown prediction {prediction!r}; choose one of {', '.join(PREDICTIONS)}")

    def to_x0_eps(self, prediction, out, x, t):
        """Invert x = alpha x0 + sigma eps together with the network output: returns (x0, eps)."""
        a, s = _bcast(self.alpha(t), x), _bcast(self.sigma(t), x)
        if prediction == "eps":
            return (x - s * out) / a, out
        if prediction == "x0":
            return out, (x - a * out) / s
        if prediction == "v":  # v = a eps - s x0
            norm = a * a + s * s
            return (a * x - s * out) / norm, (s * x + a * out) / norm
        if prediction == "velocity":  # u = a' x0 + s' eps
            da, ds = (_bcast(d, x) for d in self.derivatives(t))
            det = a * ds - s * da
            return (ds * x - s * out) / det, (a * out - da * x) / det
        if prediction == "edm":  # D = c_skip x + c_out F (Karras et al. 2022, eq. 7)
            c_skip, c_out, _, _ = edm_scalings(s / a, self.sigma_data)
            x0 = c_skip * x / a + c_out * out
            return x0, (x - a * x0) / s
        raise UnnoiseError(f"unknown prediction {prediction!r}; choose one of {', '.join(PREDICTIONS)}")

    def score(self, eps, t):
        """grad log p_t(x) = -eps / sigma(t)."""
        return -eps / _bcast(self.sigma(t), eps)

    def velocity(self, x0, eps, t):
        """dx/dt of the probability-flow ODE, written through the path: alpha' x0 + sigma' eps."""
        da, ds = (_bcast(d, x0) for d in self.derivatives(t))
        return da * x0 + ds * eps

    def config(self):
        return {"schedule": self.name}


def edm_scalings(sigma, sigma_data):
    """EDM preconditioning (Karras et al. 2022, Table 1): c_skip, c_out, c_in, c_noise at noise level sigma."""
    sigma = torch.as_tensor(sigma)
    sigma = sigma if sigma.is_floating_point() else sigma.double()
    norm = (sigma**2 + sigma_data**2).sqrt()
    return sigma_data**2 / norm**2, sigma * sigma_data / norm, 1 / norm, sigma.log() / 4


def _betas(schedule, T, beta_start, beta_end):
    """diffusers' beta schedules, formula for formula (float32 like diffusers)."""
    if schedule == "linear":
        return torch.linspace(beta_start, beta_end, T, dtype=torch.float32)
    if schedule == "scaled_linear":
        return torch.linspace(beta_start**0.5, beta_end**0.5, T, dtype=torch.float32) ** 2
    if schedule == "cosine":  # squaredcos_cap_v2, Nichol & Dhariwal 2021 eq. 17

        def alpha_bar(u):
            return math.cos((u + 0.008) / 1.008 * math.pi / 2) ** 2

        betas = [min(1 - alpha_bar((i + 1) / T) / alpha_bar(i / T), 0.999) for i in range(T)]
        return torch.tensor(betas, dtype=torch.float32)
    if schedule == "sigmoid":  # GeoDiff
        return torch.sigmoid(torch.linspace(-6, 6, T)) * (beta_end - beta_start) + beta_start
    raise UnnoiseError(f"unknown schedule {schedule!r}; choose one of {', '.join(SCHEDULES)}")


class DiscretePath(GaussianPath):
    """DDPM (Ho et al. 2020) on T integer timesteps: alpha_bar = cumprod(1 - beta).

    Between integer timesteps the noise level is interpolated linearly in log(sigma / alpha), as
    diffusers' `_sigma_to_t` does, so Karras or exponential spacings map back to fractional t.
    """

    discrete = True
    t_end = -1.0
    t_min = 0.0

    def __init__(self, schedule="linear", T=1000, beta_start=1e-4, beta_end=0.02):
        self.name, self.T = schedule, T
        self.beta_start, self.beta_end = beta_start, beta_end
        self.betas = _betas(schedule, T, beta_start, beta_end)
        self.alphas_cumprod = torch.cumprod(1.0 - self.betas, dim=0)  # (T,)
        ab = self.alphas_cumprod.double()
        self.log_ve = 0.5 * torch.log((1 - ab) / ab)  # log(sigma / alpha)
        self._alpha_bar_table = torch.cat([torch.ones(1, dtype=torch.float64), ab])  # t = -1, 0, ..., T - 1
        self.t_max = float(T - 1)

    def alpha_bar(self, t):
        t = torch.as_tensor(t, dtype=torch.float64)
        if t.dim() == 0 and float(t).is_integer() and -1 <= float(t) < self.T:  # a sampler's grid point: look it up
            return self._alpha_bar_table[int(t) + 1]
        k = t.clamp(0, self.T - 1)
        lo = k.floor().long().clamp(max=self.T - 2)
        w = k - lo
        log_ve = (1 - w) * self.log_ve[lo] + w * self.log_ve[lo + 1]
        ab = torch.sigmoid(-2 * log_ve)  # 1 / (1 + ve^2)
        exact = self.alphas_cumprod.double()[k.round().long()]
        ab = torch.where(k == k.round(), exact, ab)
        return torch.where(t < 0, torch.ones_like(ab), ab)

    def alpha(self, t):
        return self.alpha_bar(t).sqrt()

    def sigma(self, t):
        return (1 - self.alpha_bar(t)).sqrt()

    def t_from_sigma_ratio(self, ve):
        """Fractional timestep whose sigma / alpha equals ve (diffusers' `_sigma_to_t`)."""
        log_ve = torch.as_tensor(ve, dtype=torch.float64).log()
        table = self.log_ve
        hi = torch.searchsorted(table, log_ve.clamp(table[0], table[-1])).clamp(1, self.T - 1)
        w = (log_ve - table[hi - 1]) / (table[hi] - table[hi - 1])
        return (hi - 1 + w.clamp(0, 1)).double()

    def net_time(self, t):
        return torch.as_tensor(t, dtype=torch.float32) / self.T

    def sample_t(self, n, generator):
        return torch.randint(0, self.T, (n,), generator=generator).double()

    def config(self):
        return {"schedule": self.name, "T": self.T, "beta_start": self.beta_start, "beta_end": self.beta_end}


class VPCosinePath(GaussianPath):
    """Continuous variance-preserving cosine path: alpha = cos(pi t / 2), sigma = sin(pi t / 2)."""

    name = "vp-cosine"
    t_max = 0.999  # alpha(1) = 0 would make x0 from eps undefined

    def alpha(self, t):
        return torch.cos(torch.as_tensor(t, dtype=torch.float64) * math.pi / 2)

    def sigma(self, t):
        return torch.sin(torch.as_tensor(t, dtype=torch.float64) * math.pi / 2)

    def derivatives(self, t):
        t = torch.as_tensor(t, dtype=torch.float64)
        return -math.pi / 2 * torch.sin(t * math.pi / 2), math.pi / 2 * torch.cos(t * math.pi / 2)

    def t_from_sigma_ratio(self, ve):
        return torch.atan(torch.as_tensor(ve, dtype=torch.float64)) * 2 / math.pi


class RectifiedPath(GaussianPath):
    """Rectified flow / conditional OT path (Liu et al. 2022; Lipman et al. 2022): alpha = 1 - t, sigma = t."""

    name = "rectified"
    frame = "flow"  # its ODE samplers step in (x, t) along the velocity, as flow matching does

    def alpha(self, t):
        return 1 - torch.as_tensor(t, dtype=torch.float64)

    def sigma(self, t):
        return torch.as_tensor(t, dtype=torch.float64).clone()

    def derivatives(self, t):
        t = torch.as_tensor(t, dtype=torch.float64)
        return -torch.ones_like(t), torch.ones_like(t)

    def t_from_sigma_ratio(self, ve):
        return 1 / (1 + 1 / torch.as_tensor(ve, dtype=torch.float64))  # ve = inf gives t = 1


class EDMPath(GaussianPath):
    """EDM's variance-exploding path (Karras et al. 2022): alpha = 1, sigma = t, t in [0.002, 80].

    The network is preconditioned (Table 1): it sees c_in x and c_noise = log(sigma) / 4, and predicts
    F with x0 = c_skip x + c_out F (prediction "edm"); training draws log-normal sigma (P_mean, P_std).
    """

    name = "edm"
    t_min, t_max = 0.002, 80.0

    def __init__(self, sigma_data=0.5, P_mean=-1.2, P_std=1.2):
        self.sigma_data, self.P_mean, self.P_std = sigma_data, P_mean, P_std

    def alpha(self, t):
        return torch.ones_like(torch.as_tensor(t, dtype=torch.float64))

    def sigma(self, t):
        return torch.as_tensor(t, dtype=torch.float64).clone()

    def derivatives(self, t):
        t = torch.as_tensor(t, dtype=torch.float64)
        return torch.zeros_like(t), torch.ones_like(t)

    def t_from_sigma_ratio(self, ve):
        return torch.as_tensor(ve, dtype=torch.float64).clone()

    def net_time(self, t):
        return edm_scalings(t, self.sigma_data)[3].float()

    def net_input(self, x, t):
        return x * _bcast(edm_scalings(t, self.sigma_data)[2], x)

    def sample_t(self, n, generator):
        """Training noise levels: ln(sigma) ~ N(P_mean, P_std^2) (EDM section 5)."""
        return (self.P_mean + self.P_std * torch.randn(n, generator=generator, dtype=torch.float64)).exp()

    def config(self):
        return {"schedule": self.name, "sigma_data": self.sigma_data}


TIME_DENSITIES = ("uniform", "logit-normal")
CONTINUOUS_SCHEDULES = ("vp-cosine", "rectified")  # the paths a time density other than uniform applies to


def sample_times(path, density, n, generator):
    """Training times (n,): the path's own draw (uniform; EDM's log-normal sigma; DDPM's integer steps), or
    logit-normal(0, 1) over (0, t_max) (Esser et al. 2024, SD3, eq. 19), which spends the steps on middle times."""
    if density == "logit-normal":
        return torch.sigmoid(torch.randn(n, generator=generator)) * path.t_max
    return path.sample_t(n, generator)


def make_path(schedule="linear", T=1000, beta_start=1e-4, beta_end=0.02, sigma_data=0.5):
    """Build a path by schedule name (diffusers' names, with `cosine` for squaredcos_cap_v2)."""
    if schedule in DISCRETE_SCHEDULES:
        return DiscretePath(schedule, T, beta_start, beta_end)
    if schedule == "vp-cosine":
        return VPCosinePath()
    if schedule == "rectified":
        return RectifiedPath()
    if schedule == "edm":
        return EDMPath(sigma_data)
    raise UnnoiseError(f"unknown schedule {schedule!r}; choose one of {', '.join(SCHEDULES)}")
