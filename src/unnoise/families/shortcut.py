"""Shortcut models (Frans, Hafner, Levine & Abbeel 2024, ICLR 2025): any number of steps from one network.

The net s(x_t, t, d) predicts the jump x_{t-d} = x_t - d s(x_t, t, d). Most of each batch trains on flow
matching at the smallest step (s -> v = eps - x0 as d -> 0); a quarter on self-consistency (eq. 5): one jump of 2d
is two jumps of d,
    s_tgt(x_t, t, 2d) = (s(x_t, t, d) + s(x', t - d, d)) / 2,   x' = x_t - d s(x_t, t, d),
with steps d = 1/M ... 1/2 and times on the grid of the jump. No Jacobian, two extra no-grad calls on a quarter.
"""

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .meanflow import expand
from .steps import StepFamily, times

STEPS = 128  # M: the finest grid, the step size of the flow-matching part (paper: 128)
BOOTSTRAP = 0.25  # share of each batch trained on self-consistency (paper: 1/4)


def draw_steps(n, generator):
    """(t, jump, boot) per row: the first BOOTSTRAP of rows jump 2d from a time on the 2d grid (d = 1/M ... 1/2), the
    rest jump 1/M from a uniform time."""
    boot = torch.arange(n) < round(BOOTSTRAP * n)  # (B,) bool
    levels = STEPS.bit_length() - 1  # log2 M
    d = 2.0 ** -torch.randint(1, levels + 1, (n,), generator=generator).double()  # 1/2 ... 1/M
    slots = torch.floor(torch.rand(n, generator=generator, dtype=torch.float64) / (2 * d)) + 1  # 1 .. 1/(2d)
    t = torch.where(
        boot, slots * 2 * d, 1 / STEPS + torch.rand(n, generator=generator, dtype=torch.float64) * (1 - 1 / STEPS)
    )
    jump = torch.where(boot, 2 * d, torch.full_like(d, 1 / STEPS))
    return t.float(), jump.float(), boot


@torch.no_grad()
def self_consistency(net, z, t, d, y):
    """(s(z, t, d) + s(z', t - d, d)) / 2, z' = z - d s(z, t, d): two jumps of d as one target for a jump of 2d."""
    first = net(z, times(t, t - d), y)
    later = z - expand(d, z) * first
    return (first + net(later, times(t - d, t - 2 * d), y)) / 2


def shortcut_loss(net, x0, eps, t, jump, boot, y=None):
    """Flow matching at the finest step on most rows, self-consistency on the BOOTSTRAP share (Algorithm 1)."""
    bare = getattr(net, "module", net)
    z = (1 - expand(t, x0)) * x0 + expand(t, x0) * eps  # (B, ...)
    target = eps - x0
    if boot.any():
        yb = None if y is None else y[boot]
        target[boot] = self_consistency(bare, z[boot], t[boot], jump[boot] / 2, yb)
    return F.mse_loss(net(z, times(t, t - jump), y), target)


@dataclass(frozen=True)
class Shortcut(StepFamily):
    def draw(self, cfg, rows, generator, parts=None):
        x0 = rows["x0"]
        t, jump, boot = draw_steps(len(x0), generator)
        return {"x0": x0, "eps": torch.randn(x0.shape, generator=generator), "t": t, "jump": jump, "boot": boot}

    def loss(self, net, cfg, rows, y, generator):
        return shortcut_loss(net, rows["x0"], rows["eps"], rows["t"], rows["jump"], rows["boot"], y)

    def describe(self, cfg, net):
        return f"steps 1 to 1/{STEPS} on the straight path"


SHORTCUT = Shortcut(
    "shortcut", "shortcut model: the step size as an input, any step count (Frans et al. 2024)", default_nfe=2
)
