"""Samplers: short pure functions with one signature, over any Gaussian path.

    sample_x(model, x, ts, path, noise, callback=None, **options) -> x at ts[-1]

- model(x, t) -> (x0, eps): the network's prediction at time t, already converted by the path;
- x: the starting sample at ts[0] (B, ...);
- ts: the decreasing time grid, ending at path.t_end (clean data);
- noise(x): fresh N(0, I) noise shaped like x, drawn per sample (see PerSampleNoise);
- callback(i, t, x, x0): called after each network evaluation, for figures and animations.

Nothing is kept between calls: a sampler holds no step counter and can be called twice.
"""

import torch

from .errors import UnnoiseError, choose

SPACINGS = ("trailing", "leading", "linspace")


def timesteps(path, steps, spacing="trailing"):
    """The time grid of `steps` steps, from the noisiest time to clean data: (steps + 1,) float64.

    Discrete paths use diffusers' spacings (Lin et al. 2023, Table 2); continuous paths are uniform in t.
    """
    choose("spacing", spacing, SPACINGS)
    if not path.discrete:
        return torch.linspace(path.t_max, path.t_end, steps + 1, dtype=torch.float64)
    T = path.T
    if steps > T:
        raise UnnoiseError(f"{steps} steps is more than the path's {T} training timesteps")
    if spacing == "trailing":
        ts = torch.arange(T, 0, -T / steps, dtype=torch.float64).round() - 1
    elif spacing == "leading":
        ts = (torch.arange(steps, dtype=torch.float64) * (T // steps)).flip(0)
    else:
        ts = torch.linspace(0, T - 1, steps, dtype=torch.float64).round().flip(0)
    return torch.cat([ts, torch.tensor([path.t_end], dtype=torch.float64)])


def posterior(path, x, x0, t, s):
    """Mean and variance of q(x_s | x_t, x0) for s < t on any Gaussian path (DDPM eq. 7, generalised)."""
    a_t, s_t, a_s, s_s = path.alpha(t), path.sigma(t), path.alpha(s), path.sigma(s)
    a_ts = a_t / a_s
    var_ts = s_t**2 - a_ts**2 * s_s**2                      # noise added going from s to t
    mean = (a_ts * s_s**2 / s_t**2) * x + (a_s * var_ts / s_t**2) * x0
    return mean, var_ts * s_s**2 / s_t**2


def sample_ddpm(model, x, ts, path, noise, callback=None):
    """DDPM ancestral sampling (Ho et al. 2020, Algorithm 2), each step a draw from q(x_s | x_t, x0_hat)."""
    for i in range(len(ts) - 1):
        x0, _ = model(x, ts[i])
        mean, var = posterior(path, x, x0, ts[i], ts[i + 1])
        x = mean + var.sqrt().to(x.dtype) * noise(x) if var > 0 else mean
        if callback:
            callback(i, ts[i], x, x0)
    return x


def sample_ddim(model, x, ts, path, noise, callback=None, eta=0.0):
    """DDIM (Song, Meng & Ermon 2021, eq. 12): eta = 0 is deterministic, eta = 1 matches DDPM's step."""
    if not 0.0 <= eta <= 1.0:
        raise UnnoiseError(f"eta must lie in [0, 1], got {eta}")
    for i in range(len(ts) - 1):
        t, s = ts[i], ts[i + 1]
        x0, eps = model(x, t)
        _, var = posterior(path, x, x0, t, s)
        std = eta * var.sqrt()
        x = path.alpha(s).to(x.dtype) * x0 + (path.sigma(s) ** 2 - std**2).clamp(min=0).sqrt().to(x.dtype) * eps
        if std > 0:
            x = x + std.to(x.dtype) * noise(x)
        if callback:
            callback(i, t, x, x0)
    return x


SAMPLERS = {"ddpm": sample_ddpm, "ddim": sample_ddim}


def steps_for(sampler, nfe):
    """Steps a sampler takes for a budget of nfe network evaluations (one per step for these)."""
    choose("sampler", sampler, tuple(SAMPLERS))
    return nfe


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
        return cls(seed * 1_000_003 + i for i in range(start, stop))

    def __call__(self, like):
        shape = tuple(like.shape[1:])
        if self.block is None or self.used == self.block.shape[1] or self.block.shape[2:] != shape:
            draws = max(1, self.block_numel // max(1, like[0].numel()))
            self.block = torch.stack([torch.randn((draws,) + shape, generator=g, dtype=torch.float64)
                                      for g in self.generators])                  # (B, draws, ...)
            self.used = 0
        self.used += 1
        return self.block[:, self.used - 1].to(like)

    def initial(self, shape, dtype=torch.float32):
        """The starting noise x_T: the first draw of each sample's stream."""
        return self(torch.empty((len(self.generators),) + tuple(shape), dtype=dtype))
