"""Figures of flows: trajectories, conditional vs marginal paths, velocity fields, likelihood maps, guidance grids."""

import numpy as np
import torch

from ..ode import euler, velocity_field
from ..samplers import PerSampleNoise
from .figures2d import MODEL, REAL, _frame, _points, limits, plt

STEPS = 100  # Euler steps for drawing trajectories


def straightness(xs, ts):
    """Liu et al. 2022 eq. 3: mean over paths of int |dx/dt|^2 dt - |x_end - x_start|^2 (0 for straight paths)."""
    dt = (ts[:-1] - ts[1:]).abs().reshape(-1, 1)  # (K, 1)
    speed2 = ((xs[1:] - xs[:-1]).square().sum(-1) / dt).sum(0)  # (B,) int |v|^2 dt
    chord2 = (xs[-1] - xs[0]).square().sum(-1)  # (B,)
    return float((speed2 - chord2).mean())


def trajectories(run, n=300, steps=STEPS, seed=0):
    """Paths x_t of n noise draws through run's ODE (Euler, fine steps), in data units, (steps + 1, n, 2); and ts."""
    ts = torch.linspace(run.path.t_max, run.path.t_end, steps + 1, dtype=torch.float64)
    noise = PerSampleNoise.for_range(seed, 0, n)
    xs = euler(velocity_field(run), run.initial(noise), ts)
    return run.to_data(xs.float()), ts


def trajectory_panels(runs, titles, real, n=300):
    """One panel per run: paths from noise (grey dots) to samples (red dots), with straightness in the title."""
    fig, axes = plt.subplots(1, len(runs), figsize=(3.6 * len(runs), 3.8), squeeze=False)
    for ax, run, title in zip(axes[0], runs, titles):
        xs, ts = trajectories(run, n)
        s = straightness((xs - run.shift) / run.scale, ts)
        lines = xs.numpy()
        ax.plot(lines[:, :, 0], lines[:, :, 1], color="#30638e", alpha=0.25, lw=0.6)
        _points(ax, xs[0], REAL, size=4, alpha=0.8)
        _points(ax, xs[-1], MODEL, size=4, alpha=0.9)
        _frame(ax, limits(torch.cat([xs[0], xs[-1], real])), f"{title}\nstraightness {s:.3f}")
    start = "noise" if all(r.cfg.source == "gaussian" for r in runs) else "source"
    fig.suptitle(f"{start} (grey) to samples (red) through the learned ODE", fontsize=9)
    fig.tight_layout()
    return fig


def conditional_vs_marginal(dataset, path, ts=(1.0, 0.75, 0.5, 0.25, 0.0), n=1000, seed=0):
    """Top: p_t(x | x0) for one data point; bottom: the marginal p_t(x) over the whole data set."""
    g = torch.Generator().manual_seed(seed)
    x_data = dataset.normalize(dataset.x[:n])
    one = x_data[:1].expand(n, -1)
    fig, axes = plt.subplots(2, len(ts), figsize=(2.4 * len(ts), 5.0))
    lim = limits(dataset.denormalize(torch.randn(n, 2, generator=g)), pad=0.2)
    for row, (x0, label) in enumerate(((one, "one data point"), (x_data, "the whole data set"))):
        eps = torch.randn(x0.shape, generator=g)
        for ax, t in zip(axes[row], ts):
            x_t = dataset.denormalize(path.add_noise(x0, eps, torch.full((n,), t * path.t_max)).float())
            _points(ax, x_t, "#30638e", size=1.5, alpha=0.4)
            _points(
                ax,
                dataset.denormalize(x0[:1]) if row == 0 else dataset.x[:n],
                MODEL if row == 0 else REAL,
                size=25 if row == 0 else 1,
                alpha=1.0 if row == 0 else 0.2,
            )
            _frame(ax, lim, f"{label}, t={t * path.t_max:.2f}")
    fig.suptitle(
        "conditional path x_t = alpha x0 + sigma eps for one x0 (top); its average over the data, "
        "the marginal path the flow learns (bottom)",
        fontsize=9,
    )
    fig.tight_layout()
    return fig


def velocity_arrows(run, ts=(0.9, 0.6, 0.3, 0.05), grid=19):
    """The learned velocity dx/dt (data units) at a grid of points at several t; arrows point towards noise."""
    real, ds = run.dataset.x, run.dataset
    lim = limits(real, pad=0.6)
    gx, gy = np.meshgrid(np.linspace(*lim[0], grid), np.linspace(*lim[1], grid))
    where = torch.tensor(np.stack([gx.ravel(), gy.ravel()], 1), dtype=torch.float32)
    velocity = velocity_field(run)
    fig, axes = plt.subplots(1, len(ts), figsize=(2.9 * len(ts), 3.0))
    for ax, t in zip(axes, ts):
        with torch.no_grad():
            v = (-velocity(ds.normalize(where).double(), t * run.path.t_max).float() * ds.scale).numpy()
        _points(ax, real, REAL, size=1, alpha=0.4)
        ax.quiver(where[:, 0], where[:, 1], v[:, 0], v[:, 1], color="#30638e", angles="xy", width=0.004, alpha=0.8)
        _frame(ax, lim, f"t={t * run.path.t_max:.2f}")
    fig.suptitle("learned velocity, drawn in the sampling direction (-dx/dt, noise to data), over the data", fontsize=9)
    fig.tight_layout()
    return fig


def likelihood_map(run, grid=48):
    """log p(x) in data units over the plane, by the exact-divergence ODE, with the data on top."""
    from ..likelihood import log_likelihood

    ds = run.dataset
    lim = limits(ds.x, pad=0.5)
    gx, gy = np.meshgrid(np.linspace(*lim[0], grid), np.linspace(*lim[1], grid))
    where = torch.tensor(np.stack([gx.ravel(), gy.ravel()], 1), dtype=torch.float32)
    logp = log_likelihood(velocity_field(run), ds.normalize(where).double(), run.path, rtol=1e-4, atol=1e-4)
    logp = (logp - torch.log(ds.scale.double()).sum()).reshape(grid, grid).numpy()
    fig, ax = plt.subplots(figsize=(5, 4))
    image = ax.imshow(np.maximum(logp, logp.max() - 12), origin="lower", extent=(*lim[0], *lim[1]), cmap="magma")
    fig.colorbar(image, ax=ax, label="log p(x), nats (clipped 12 below the peak)")
    _points(ax, ds.x[:500], "#ffffff", size=1.5, alpha=0.6)
    _frame(ax, lim, "log p(x) by the probability-flow ODE\nheld-out data in white")
    return fig


def guidance_grid(run, ws=(0.0, 1.0, 2.0, 4.0), n=200, nfe=20, sampler="ddim"):
    """Samples of each class (rows) at several guidance weights w (columns), over that class's real data."""
    ds = run.dataset
    classes = range(run.num_classes)
    fig, axes = plt.subplots(len(classes), len(ws), figsize=(2.2 * len(ws), 2.2 * len(classes)), squeeze=False)
    lim = limits(ds.x, pad=0.4)
    for c in classes:
        for ax, w in zip(axes[c], ws):
            x = run.sample(n, sampler, nfe, seed=c, label=c, guidance=w)
            _points(ax, ds.x[ds.y == c], REAL, size=1, alpha=0.3)
            _points(ax, x, MODEL, size=1.5, alpha=0.6)
            _frame(ax, lim, f"class {c}, w={w:g}")
    fig.suptitle(
        "classifier-free guidance: out = out_uncond + w (out_cond - out_uncond); w=1 is the conditional model",
        fontsize=9,
    )
    fig.tight_layout()
    return fig


CAPTIONS = {
    "paths.png": "Flow matching's two pictures: the conditional path x_t = (1 - t) x0 + t eps for one data point "
    "(top), a Gaussian shrinking onto the point; and the marginal path over the whole data set "
    "(bottom), whose velocity the network learns.",
    "trajectories.png": "Noise (grey) carried to samples (red) by the learned ODE. Independent pairing gives curved, "
    "crossing paths; OT pairing or reflow gives nearly straight ones (straightness 0 = straight).",
    "velocity.png": "The learned velocity field at several times, drawn in the sampling direction.",
    "likelihood.png": "The model's log-density over the plane, exact through the probability-flow ODE.",
    "guidance.png": "Classifier-free guidance: each class (rows) at several weights w (columns); w=1 is the "
    "conditional model, larger w sharpens each class.",
}


def write_all(runs, out, names=None):
    """Every flow figure for runs into the folder out; returns the written file names."""
    from pathlib import Path

    from .figures2d import save

    out, first = Path(out), runs[0]
    names = names or [f"{r.folder.name} ({r.cfg.family}, {r.cfg.coupling})" for r in runs]
    written = {"paths.png": conditional_vs_marginal(first.dataset, first.path)}
    continuous = [(r, name) for r, name in zip(runs, names) if not r.path.discrete]
    if continuous:
        written["trajectories.png"] = trajectory_panels(*zip(*continuous), first.dataset.x)
        written["velocity.png"] = velocity_arrows(continuous[0][0])
        written["likelihood.png"] = likelihood_map(continuous[0][0])
    conditional = [r for r in runs if r.cfg.conditional]
    if conditional:
        written["guidance.png"] = guidance_grid(conditional[0])
    for name, fig in written.items():
        save(fig, out / name)
    return list(written)
