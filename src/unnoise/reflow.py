"""Reflow (Liu, Gong & Liu 2022, rectified flow, Algorithm 1): retrain a flow on its own (noise, sample) pairs.

A trained flow's ODE maps each noise draw eps to one sample x0 = ODE(eps). Paths drawn straight
between these coupled pairs no longer cross, so the flow fitted to them is straighter, and one or
two Euler steps land where a many-step solve would. Training starts from the trained weights.
"""

import dataclasses
from pathlib import Path

import torch

from . import source as sources
from .checkpoint import load_tensors, save_tensors
from .errors import UnnoiseError, positive_int
from .ode import solve, velocity_field
from .run import Run

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


def load_pairs(folder):
    """The (x0, eps, y) pairs a reflow run trains on."""
    tensors = load_tensors(Path(folder) / PAIRS)
    return tensors["x0"], tensors["eps"], tensors["y"]


def write_pairs(source, folder, pairs=20000, seed=0):
    """Check that source is a flow run, write its pairs into the new run folder; returns the source Run."""
    run = Run.load(source)
    if run.cfg.family != "flow":
        raise UnnoiseError(f"{source} is a {run.cfg.family} run; reflow needs a flow model (--family flow)")
    folder = Path(folder)
    if (folder / "config.json").exists():
        raise UnnoiseError(f"{folder} already holds a run; choose another --out (or resume it with train --resume)")
    x0, eps, y = generate_pairs(run, positive_int("pairs", pairs), seed)
    save_tensors(folder / PAIRS, {"x0": x0, "eps": eps, "y": y})
    if not run.source.gaussian:  # the source run's pool, so the new run reads no source path
        save_tensors(folder / sources.FILE, {"points": sources.pool(run.folder, run.shape[0]).contiguous()})
    return run


def reflow(source, out, pairs=20000, steps=None, lr=None, seed=0, progress=True):
    """Reflow the flow run `source` into the new run folder `out`, starting from its weights; returns the new Run."""
    from .train import train

    run = write_pairs(source, out, pairs, seed)
    cfg = dataclasses.replace(
        run.cfg, data=run.trained_on, coupling="reflow", seed=seed, steps=steps or run.cfg.steps, lr=lr or run.cfg.lr
    )
    return train(cfg, out, progress=progress, init=run.net.state_dict(), data_path=run.cfg.data)
