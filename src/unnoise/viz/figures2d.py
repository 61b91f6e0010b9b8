"""Figures of 2D models: forward noising, reverse denoising, the learned field, samples over data."""

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import torch
from PIL import Image

from ..checkpoint import atomic_write

REAL, MODEL = "#9aa5b1", "#d1495b"


def save(fig, out):
    """Write a figure atomically as PNG and close it."""
    atomic_write(out, lambda tmp: fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight"))
    plt.close(fig)


def _points(ax, x, color, size=2, alpha=0.6, label=None):
    x = torch.as_tensor(x).numpy()
    ax.scatter(x[:, 0], x[:, 1], s=size, c=color, alpha=alpha, linewidths=0, label=label)


def _frame(ax, lim, title=None):
    ax.set_xlim(*lim[0]), ax.set_ylim(*lim[1])
    ax.set_aspect("equal"), ax.set_xticks([]), ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=9)


def limits(x, pad=0.3):
    x = torch.as_tensor(x)
    lo, hi = x.min(0).values - pad, x.max(0).values + pad
    return (float(lo[0]), float(hi[0])), (float(lo[1]), float(hi[1]))


def scatter(points, real=None, title=None):
    """Points in red, over real data in grey when given."""
    fig, ax = plt.subplots(figsize=(5, 4))
    lim = limits(real if real is not None else points)
    if real is not None:
        _points(ax, real, REAL, label="real (held-out)")
    _points(ax, points, MODEL if real is not None else "#30638e", label="model" if real is not None else None)
    _frame(ax, lim, title)
    if real is not None:
        ax.legend(loc="upper right", fontsize=8, markerscale=4)
    return fig


def pairs(points, real=None, title=None, dims=4):
    """Points of any dimension D: a histogram for D = 1, one scatter for D = 2, else every pair of the first
    `dims` coordinates (model in red over real data in grey when given)."""
    points = torch.as_tensor(points)
    D = points.shape[1]
    if D == 2:
        return scatter(points, real, title)
    if D == 1:
        fig, ax = plt.subplots(figsize=(5, 3))
        if real is not None:
            ax.hist(torch.as_tensor(real)[:, 0].numpy(), bins=60, color=REAL, alpha=0.7, label="real (held-out)")
        ax.hist(
            points[:, 0].numpy(),
            bins=60,
            color=MODEL if real is not None else "#30638e",
            alpha=0.6,
            label="model" if real is not None else None,
        )
        ax.set_title(title or "", fontsize=9)
        return fig
    k = min(D, dims)
    fig, axes = plt.subplots(k - 1, k - 1, figsize=(2.2 * (k - 1), 2.2 * (k - 1)), squeeze=False)
    for i in range(1, k):
        for j in range(k - 1):
            ax = axes[i - 1][j]
            if j >= i:
                ax.axis("off")
                continue
            both = (
                points[:, [j, i]] if real is None else torch.cat([points[:, [j, i]], torch.as_tensor(real)[:, [j, i]]])
            )
            if real is not None:
                _points(ax, torch.as_tensor(real)[:, [j, i]], REAL)
            _points(ax, points[:, [j, i]], MODEL if real is not None else "#30638e")
            _frame(ax, limits(both))
            ax.set_xlabel(f"x{j}", fontsize=7), ax.set_ylabel(f"x{i}", fontsize=7)
    fig.suptitle(f"{title or ''} (coordinates 0-{k - 1} of {D}, in pairs)", fontsize=9)
    return fig


def strip(frames, titles, lim, real=None):
    """One row of scatter panels sharing the same axes."""
    fig, axes = plt.subplots(1, len(frames), figsize=(2.3 * len(frames), 2.5))
    for ax, frame, title in zip(axes, frames, titles):
        if real is not None:
            _points(ax, real, REAL, size=1, alpha=0.3)
        _points(ax, frame, "#30638e", size=1.5)
        _frame(ax, lim, title)
    fig.tight_layout()
    return fig


def forward_strip(x0, path, ts, scale_back):
    """Data noised to x_t = alpha x0 + sigma eps at each t of ts (shown in data units)."""
    eps = torch.randn(x0.shape, generator=torch.Generator().manual_seed(0))
    frames = [scale_back(path.add_noise(x0, eps, torch.full((len(x0),), float(t)))) for t in ts]
    titles = [
        f"t={float(t):.0f}  SNR={float(path.log_snr(t).exp()):.2g}" if path.discrete else f"t={float(t):.2f}"
        for t in ts
    ]
    return strip(frames, titles, limits(frames[-1]))


def field(model, path, ts, real, normalize, denormalize, grid=21):
    """The denoising direction x0_hat - x at a grid of points, at several noise levels, over the data."""
    lim = limits(real, pad=0.6)
    gx, gy = np.meshgrid(np.linspace(*lim[0], grid), np.linspace(*lim[1], grid))
    where = torch.tensor(np.stack([gx.ravel(), gy.ravel()], 1), dtype=torch.float32)
    fig, axes = plt.subplots(1, len(ts), figsize=(2.8 * len(ts), 2.9))
    for ax, t in zip(axes, ts):
        x0, _ = model(normalize(where), t)
        arrow = (denormalize(x0) - where).numpy()
        _points(ax, real, REAL, size=1, alpha=0.4)
        length = np.linalg.norm(arrow, axis=1)
        ax.quiver(
            where[:, 0],
            where[:, 1],
            arrow[:, 0],
            arrow[:, 1],
            length,
            cmap="viridis",
            angles="xy",
            width=0.004,
            alpha=0.9,
        )
        _frame(ax, lim, f"noise level sigma={float(path.sigma(t)):.2f}")
    fig.suptitle(
        "the denoising direction: from each point to the model's estimate of the clean data "
        "(arrows scaled per panel; colour = distance)",
        fontsize=9,
    )
    fig.tight_layout()
    return fig


def gif(frames, titles, lim, out, real=None, ms=120):
    """Animate scatter frames into an atomic GIF; the last frame is held longer."""
    images = []
    for frame, title in zip(frames, titles):
        fig, ax = plt.subplots(figsize=(4, 3.4))
        if real is not None:
            _points(ax, real, REAL, size=1, alpha=0.3)
        _points(ax, frame, "#30638e", size=1.5)
        _frame(ax, lim, title)
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=80)
        plt.close(fig)
        images.append(Image.open(buffer).convert("P", palette=Image.ADAPTIVE))
    durations = [ms] * (len(images) - 1) + [1500]
    atomic_write(
        out,
        lambda tmp: images[0].save(
            tmp, format="GIF", save_all=True, append_images=images[1:], duration=durations, loop=0
        ),
    )
