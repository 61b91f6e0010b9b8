"""What meanflow and shortcut share: a network told the step it takes, and sampling on the grid it was told.

Both condition the denoiser on a second time, the step h = t - r it is asked to jump (MeanFlow's (t, t - r)
input, Geng et al. 2025, Table 1c; the shortcut model's step size d, Frans et al. 2024). The step's embedding is
added to the time's, and starts at zero, so a fresh net is today's flow net. At h = 0 the net is an ordinary
flow-matching velocity, so every sampler of the core can still call it with one time.
"""

import copy
from dataclasses import dataclass

import torch
from torch import nn

from .. import samplers
from ..errors import UnnoiseError, positive_int
from ..nets.embed import sinusoidal
from .continuous import Continuous
from .continuous import sample as sample_path

SAMPLERS = ("euler",)  # x_r = x_t - (t - r) u(x_t, r, t): the one step both methods define


class StepConditioning(nn.Module):
    """A net's time (and class) embedding plus an embedding of the step h: t (B,) means h = 0, t (B, 2) is (t, h).

    scale multiplies both times first (the sinusoidal embedding takes 1000 t: scale 1e-3 feeds t itself)."""

    def __init__(self, inner, scale=1.0):
        super().__init__()
        self.inner, self.dim, self.scale = inner, inner.dim, scale
        self.step = nn.Sequential(nn.Linear(self.dim, self.dim), nn.SiLU(), nn.Linear(self.dim, self.dim))
        nn.init.zeros_(self.step[-1].weight), nn.init.zeros_(self.step[-1].bias)

    def forward(self, t, y=None):
        t, h = (t, torch.zeros_like(t)) if t.dim() == 1 else t.unbind(1)  # (B,) each; t (B,): the core's samplers
        t, h = t * self.scale, h * self.scale
        return self.inner(t, y) + self.step(sinusoidal(h, self.dim).to(self.step[0].weight.dtype))


def times(t, r):
    """The net's time input (B, 2) for a jump from t down to r: (t, t - r)."""
    return torch.stack([t, t - r], dim=1).float()


class Stepped(nn.Module):
    """The net as the core's samplers call it, net(x, t, y), told the step to the next time of the grid ts."""

    def __init__(self, net, ts):
        super().__init__()
        self.net, self.ts = net, ts.float()

    def forward(self, x, t, y=None):
        i = int((self.ts - t[0].float()).abs().argmin())
        r = self.ts[min(i + 1, len(self.ts) - 1)]
        return self.net(x, times(t.float(), r.expand_as(t)), y)


@dataclass(frozen=True)
class StepFamily(Continuous):
    """A flow on the straight path whose net also takes the step; sampled by Euler with the step it is told."""

    schedule: str = "rectified"
    prediction: str = "velocity"
    schedules: tuple = ("rectified",)
    predictions: tuple = ("velocity",)
    default_nfe: int = 1
    time_scale: float = 1.0  # what the net's time embedding scales t and t - r by (StepConditioning)
    options: tuple = ("sampler", "nfe", "clip")

    def check(self, cfg, kind):
        super().check(cfg, kind)
        if cfg.coupling != "independent":
            raise UnnoiseError(
                f"--family {self.name} trains on independent noise; --coupling {cfg.coupling} is not for it"
            )

    def build(self, cfg, num_classes, parts=None):
        net = super().build(cfg, num_classes, parts)
        net.cond = StepConditioning(net.cond, self.time_scale)
        return net

    def default_sampler(self, run):
        return "euler"

    def role(self, run):
        """points-shortcut, images-shortcut, points-meanflow, ...: section 7 of the page races them."""
        return f"{'images' if run.images else 'points'}-{self.name}"

    def sampler_options(self, sampler=None, nfe=None):
        """Its own sampler at nfe, whichever sampler the caller would use for other families."""
        return {} if nfe is None else {"nfe": nfe}

    def sample(self, run, n=2000, seed=0, guidance=1.0, sampler=None, nfe=None, spacing=None, guide=None, **options):
        """Euler on the trailing grid of nfe steps, each network call told the step it takes (default: one)."""
        sampler = sampler or "euler"
        if sampler not in SAMPLERS:
            raise UnnoiseError(
                f"a {self.name} run samples with {', '.join(SAMPLERS)} (its net is trained for the step it is "
                f"told), not {sampler}; choose the number of steps with --nfe"
            )
        if guide is not None:
            raise UnnoiseError(f"--autoguide is for diffusion, flow and edm runs, not {self.name}")
        if options.get("eta") not in (None, 0) or options.get("s_churn"):
            raise UnnoiseError(f"a {self.name} run samples deterministically: no --eta or --s-churn")
        options = {k: v for k, v in options.items() if k not in ("eta", "s_churn")}
        nfe = self.default_nfe if nfe is None else nfe
        spacing = spacing or samplers.default_spacing(run.path, sampler)
        ts = samplers.timesteps(run.path, samplers.steps_for(sampler, positive_int("nfe", nfe)), spacing)
        told = copy.copy(run)
        told.net = Stepped(run.net, ts)
        return sample_path(told, n, seed, w=guidance, sampler=sampler, nfe=nfe, spacing=spacing, **options)
