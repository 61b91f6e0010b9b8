"""MeanFlow (Geng, Deng, Bai, Kolter & He 2025): one network call from noise to data, trained from scratch.

The net predicts the average velocity over [r, t] on the straight path z_t = (1 - t) x + t eps,
    u(z_t, r, t) = 1 / (t - r) int_r^t v(z_s, s) ds,
and the MeanFlow identity (eq. 6) turns that integral into a target the net can regress on:
    u_tgt = v - (t - r) d/dt u(z_t, r, t),   d/dt u = v . du/dz + du/dt   (a Jacobian-vector product).
One step from noise: x = z_1 - u(z_1, 0, 1); k steps take x_r = x_t - (t - r) u(x_t, r, t) on a grid.
"""

from dataclasses import dataclass

import torch
from torch.autograd import forward_ad

from ..errors import UnnoiseError
from .steps import StepFamily, times

LOGIT_NORMAL = (-0.4, 1.0)  # (mean, std) of the logit of t and r (paper, Table 1d)
UNEQUAL = 0.25  # share of the batch with r != t; the rest is flow matching at r = t (Table 1a)
ADAPTIVE_C = 1e-3  # loss weight 1 / (||u - u_tgt||^2 + c)^p per row (Section 4.3)
POWER = {"images": 1.0, "points": 0.0}  # p: the paper's on images; plain squared error on 2D points (meanflow_loss)
TIME_SCALE = 1e-3  # t and t - r enter the embedding unscaled, as in MeanFlow's code; at the embedding's usual
# 1000 t its fast features made du/dt grow without bound (docs/few_step.md)
FD_STEP = 1e-3  # the finite-difference step where a net has no forward-mode derivative
NO_JVP = set()  # net classes forward-mode AD could not pass: they take the finite difference


def expand(s, x):
    """A per-row scalar (B,) shaped to broadcast over x (B, ...)."""
    return s.view(-1, *([1] * (x.dim() - 1))).to(x.dtype)


def draw_times(n, generator):
    """(t, r), t >= r, both logit-normal; r = t on all but UNEQUAL of the rows."""
    mean, std = LOGIT_NORMAL
    a, b = (torch.sigmoid(mean + std * torch.randn(n, generator=generator)) for _ in range(2))
    t, r = torch.maximum(a, b), torch.minimum(a, b)
    same = torch.rand(n, generator=generator) >= UNEQUAL
    return t, torch.where(same, t, r)


def time_derivative(net, z, t, r, y, v):
    """d/dt u(z_t, r, t) along the path: the JVP of the net with tangents (v, 0, 1), exact by forward-mode AD (the
    dual numbers torch.func.jvp is built on, without its wrapping), or a central finite difference for a net that
    forward-mode AD cannot pass."""

    def u(z, t):
        return net(z, times(t, r), y)

    if type(net) not in NO_JVP:
        try:
            with forward_ad.dual_level():
                out = u(forward_ad.make_dual(z, v), forward_ad.make_dual(t, torch.ones_like(t)))
                return forward_ad.unpack_dual(out).tangent
        except (RuntimeError, NotImplementedError):
            NO_JVP.add(type(net))
    h = FD_STEP
    return (u(z + h * v, t + h) - u(z - h * v, t - h)) / (2 * h)


def folded_velocity(net, z, t, y, v, w, null):
    """Guidance folded into the target (eq. 19): v~ = w v + (1 - w) u(z_t, t, t | no class) on labelled rows."""
    uncond = net(z, times(t, t), torch.full_like(y, null))
    return torch.where(expand(y != null, v).bool(), w * v + (1 - w) * uncond, v)


def meanflow_loss(net, x0, eps, t, r, y=None, w=1.0, power=1.0):
    """||u(z_t, r, t) - sg(u_tgt)||^2 per row, weighted by 1 / (that + c)^power (Algorithm 1); power 0 on 2D points,
    where a row's error is mostly its own target's noise and the weight biases the fit (docs/few_step.md). The target
    is computed without a graph on the bare module, so a DistributedDataParallel wrapper sees one ordinary forward
    and all-reduces its gradient."""
    bare = getattr(net, "module", net)
    z = (1 - expand(t, x0)) * x0 + expand(t, x0) * eps  # (B, ...)
    v = eps - x0
    with torch.no_grad():
        if w != 1 and y is not None:
            v = folded_velocity(bare, z, t, y, v, w, bare.cond.inner.num_classes)
        target = v - expand(t - r, x0) * time_derivative(bare, z, t, r, y, v)
    error = (net(z, times(t, r), y) - target).square().flatten(1).sum(1)  # (B,)
    return (error / (error.detach() + ADAPTIVE_C) ** power).mean()


@dataclass(frozen=True)
class MeanFlow(StepFamily):
    def check(self, cfg, kind):
        super().check(cfg, kind)
        if cfg.fold_guidance is None:
            cfg.fold_guidance = 1.0
        if not cfg.fold_guidance >= 1 or (cfg.fold_guidance != 1 and not cfg.conditional):
            raise UnnoiseError(
                f"--fold-guidance is a guidance weight >= 1 for a --conditional run, got {cfg.fold_guidance}"
                + ("" if cfg.conditional else " without --conditional")
            )

    def draw(self, cfg, rows, generator, parts=None):
        x0 = rows["x0"]
        t, r = draw_times(len(x0), generator)
        return {"x0": x0, "eps": torch.randn(x0.shape, generator=generator), "t": t, "r": r}

    def loss(self, net, cfg, rows, y, generator):
        power = POWER["images" if cfg.size is not None else "points"]
        return meanflow_loss(net, rows["x0"], rows["eps"], rows["t"], rows["r"], y, cfg.fold_guidance, power)

    def describe(self, cfg, net):
        fold = f", guidance {cfg.fold_guidance:g} folded into the target" if cfg.fold_guidance != 1 else ""
        return f"average velocity on the straight path{fold}"


MEANFLOW = MeanFlow(
    "meanflow", "MeanFlow: average velocity, one network call (Geng et al. 2025)", time_scale=TIME_SCALE
)
