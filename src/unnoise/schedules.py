"""Time grids for samplers, and the frame ODE samplers integrate in; shared by every sampler.

Grids run from the noisiest time `path.t_max` down to clean data `path.t_end`:

- trailing, leading, linspace: diffusers' timestep spacings (Lin et al. 2023, Table 2) on discrete
  paths, with DDIM's formulas; on continuous paths all three are uniform in t;
- karras: noise levels (tau_max^(1/rho) -> tau_min^(1/rho)) ^ rho (Karras et al. 2022, eq. 5);
- exponential: noise levels uniform in log tau (k-diffusion's get_sigmas_exponential).

The noise level tau is the frame's (see `frame`): sigma / alpha on diffusion paths, t on the rectified
path, so Karras grids are diffusers' `use_karras_sigmas` on both its Euler/DPM and flow-match schedulers.
"""

import torch

from .errors import UnnoiseError, choose

SPACINGS = ("trailing", "leading", "linspace", "karras", "exponential")


def frame(path, t):
    """(c, tau): ODE samplers integrate y = x / c against tau, where y is affine in tau for fixed (x0, eps).

    "ve" frame (k-diffusion, EDM): c = alpha, tau = sigma / alpha, y = x0 + tau eps, dy/dtau = eps.
    "flow" frame (rectified flow): c = alpha + sigma, tau = sigma / (alpha + sigma), y = (1 - tau) x0 + tau eps,
    dy/dtau = eps - x0; on alpha = 1 - t, sigma = t it is plain (x, t) and the velocity.
    In either frame one Euler step is exactly one DDIM step.
    """
    a, s = path.alpha(t), path.sigma(t)
    c = a if path.frame == "ve" else a + s
    return c, s / c


def slope(path, x0, eps):
    """dy/dtau in the path's frame."""
    return eps if path.frame == "ve" else eps - x0


def t_at(path, tau):
    """The time whose frame noise level is tau (inverse of frame(path, t)[1])."""
    tau = torch.as_tensor(tau, dtype=torch.float64)
    return path.t_from_sigma_ratio(tau if path.frame == "ve" else tau / (1 - tau))


def sigma_ratio(path, t):
    """EDM's sigma seen on any path: sigma / alpha (infinite where alpha = 0)."""
    return path.sigma(t) / path.alpha(t)


def noise_levels(path, steps, spacing, rho=7.0):
    """`steps` frame noise levels from tau(t_max) down to tau(t_min): Karras (rho) or exponential. (steps,)"""
    hi, lo = frame(path, path.t_max)[1], frame(path, path.t_min)[1]
    ramp = torch.linspace(0, 1, steps, dtype=torch.float64)
    if spacing == "karras":
        return (hi ** (1 / rho) + ramp * (lo ** (1 / rho) - hi ** (1 / rho))) ** rho
    return (hi.log() + ramp * (lo.log() - hi.log())).exp()


# Runge-Kutta samplers whose last stage averages the slope at the step's far end over the whole step
FAR_END = ("heun", "rk4")


def default_spacing(path, sampler=None):
    """Karras on EDM's path (its sigmas span 80 to 0.002), diffusers' trailing elsewhere, except heun and rk4 on
    diffusion paths, which take Karras as k-diffusion pairs them.

    A trailing grid's first step on VP cosine drops sigma / alpha from 637 to 6.3: Euler (one DDIM step) takes
    it exactly, but heun corrects it with the slope at 6.3 times the whole step, which multiplies the change in
    the x0 estimate by about 50 (docs/performance.md, "Sixth round", measures what that costs on digits).
    A Karras grid steps down from 637 gradually (320, 149, 63, ... at 10 steps)."""
    if path.name == "edm" or (sampler in FAR_END and path.frame == "ve"):
        return "karras"
    return "trailing"


def timesteps(path, steps, spacing="trailing", rho=7.0):
    """The time grid of `steps` steps, from the noisiest time to clean data: (steps + 1,) float64."""
    choose("spacing", spacing, SPACINGS)
    if spacing in ("karras", "exponential"):
        ts = t_at(path, noise_levels(path, steps, spacing, rho))
        ts[0] = path.t_max
    elif not path.discrete:
        return torch.linspace(path.t_max, path.t_end, steps + 1, dtype=torch.float64)
    else:
        ts = discrete_spacing(path.T, steps, spacing)
    return torch.cat([ts, torch.tensor([path.t_end], dtype=torch.float64)])


def discrete_spacing(T, steps, spacing):
    """diffusers' DDIM/DDPM integer timesteps for `steps` of T, decreasing. (steps,)"""
    if steps > T:
        raise UnnoiseError(f"{steps} steps is more than the path's {T} training timesteps")
    if spacing == "trailing":
        return (T - torch.arange(steps, dtype=torch.float64) * (T / steps)).round() - 1  # not arange(T, 0, -T/steps):
        # its float step can yield one value too many (233 of 1000 gave 234, ending -1, -1)
    if spacing == "leading":
        return (torch.arange(steps, dtype=torch.float64) * (T // steps)).flip(0)
    return torch.linspace(0, T - 1, steps, dtype=torch.float64).round().flip(0)
