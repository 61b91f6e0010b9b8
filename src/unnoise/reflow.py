"""Reflow (Liu, Gong & Liu 2022, rectified flow, Algorithm 1): retrain a flow on its own (noise, sample) pairs.

A trained flow's ODE maps each noise draw eps to one sample x0 = ODE(eps). Paths drawn straight
between these coupled pairs no longer cross, so the flow fitted to them is straighter, and one or
two Euler steps land where a many-step solve would. Training starts from the trained weights
(pipeline.reflow); this module makes the pairs.
"""

import torch

from .ode import solve, velocity_field

PAIRS = "pairs.safetensors"


def generate_pairs(run, n, seed=0, batch_size=5000, rtol=1e-5, atol=1e-5):
    """(x0, eps, y) in model units: n noise draws and where run's ODE (dopri5) takes them, (n, D) each."""
    generator = torch.Generator().manual_seed(seed)
    if run.source.gaussian:
        eps = torch.randn((n,) + run.shape, generator=generator)  # (n, D)
    else:
        eps = run.source.draw(n, generator)  # source points, model units
    y = torch.arange(n) % run.num_classes  # every class in turn
    x0 = []
    for start in range(0, n, batch_size):
        stop = min(n, start + batch_size)
        velocity = velocity_field(run, y[start:stop] if run.cfg.conditional else None)
        ts = [run.path.t_max, run.path.t_end]
        x0.append(solve(velocity, eps[start:stop], ts, rtol=rtol, atol=atol)[-1].float())
    return torch.cat(x0), eps, y
