"""Claim "projection": denoising is the shortest way back: a denoiser's step is normal to the data manifold.

Claim 2(b) of the discussion, on a manifold we know exactly: points on a d-sphere embedded in a random
(d + 1)-dimensional subspace of R^D. A diffusion model is trained on them as on any point file (the one loop).
At each noise level t, held-out sphere points are noised, and we take the model's correction, the x0
estimate minus x_t, in data units. Its normal share is |P_N c|^2 / |c|^2, where the normal space at the
nearest sphere point holds the radial direction and every direction off the subspace.
- Geometry alone predicts the isotropic noise's normal share, (D - d) / D.
- The claim says a denoiser does better: near the data its correction should be almost purely normal,
  a projection back onto the sphere.
"""

import math
from pathlib import Path

import numpy as np
import torch

from .. import data
from ..checkpoint import atomic_write
from ..config import TrainConfig
from ..pipeline import get_or_train

NAME = "projection"
TITLE = "Denoising is the shortest way back (a denoiser on a known sphere)"
ROLES = ()
QUICK_SECONDS = 40  # with --quick on 2 cores (docs/claims.md, Time)
TRAINS = True
RECIPE = dict(family="diffusion", prediction="v", schedule="vp-cosine", width=256, depth=3)
SETTINGS = {
    "quick": dict(d=5, D=32, rows=20000, seconds=40, n=400),
    "full": dict(d=5, D=32, rows=20000, seconds=150, n=2000),
}
TIMES = (0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9)
RATIOS = (0.01, 0.03, 0.1)  # sigma / alpha for Stanczuk's estimate (model units, unit variance per coordinate)
DIMENSION_POINTS = 9  # held-out points per noise ratio: K = 2D + 8 = 72 scores each


def hadamard(D):
    """Sylvester's Hadamard matrix over sqrt(D), D a power of 2: orthogonal, every entry +-1/sqrt(D)."""
    h = torch.ones(1, 1, dtype=torch.float64)
    while len(h) < D:
        h = torch.cat([torch.cat([h, h], 1), torch.cat([h, -h], 1)])
    if len(h) != D:
        raise ValueError(f"D must be a power of 2, got {D}")
    return h / math.sqrt(D)


def sphere(d, D, rows, seed=0):
    """rows points on the unit d-sphere in a (d + 1)-dimensional subspace of R^D, and its basis Q (D, d + 1).

    Q is d + 1 random columns of a Hadamard matrix, so every coordinate has the same variance: the point file's
    per-coordinate standardisation is then one scale, and the sphere stays a sphere in model units."""
    g = torch.Generator().manual_seed(seed)
    q = hadamard(D)[:, torch.randperm(D, generator=g)[: d + 1]]
    v = torch.randn(rows, d + 1, generator=g, dtype=torch.float64)
    return (v / v.norm(dim=1, keepdim=True)) @ q.T, q


def normal_share(c, x, q):
    """|P_N c|^2 / |c|^2 per row: the tangent space at the sphere point nearest x is span(Q) minus its radius."""
    inside = (c @ q) @ q.T  # (n, D) the part in the subspace
    p = (x @ q) @ q.T
    p = p / p.norm(dim=1, keepdim=True).clamp(min=1e-12)  # the radial direction
    tangent = inside - (inside * p).sum(1, keepdim=True) * p
    return 1 - tangent.square().sum(1) / c.square().sum(1).clamp(min=1e-30)


def nearest_on_sphere(x, q):
    """pi(x): the point of the unit sphere in span(Q) nearest x."""
    inside = (x @ q) @ q.T
    return inside / inside.norm(dim=1, keepdim=True).clamp(min=1e-12)


def projection_gap(x0_hat, x_t, q):
    """|x0_hat - pi(x_t)| / |x_t - pi(x_t)| per row: 0 for a projection onto the sphere, 1 for not moving.
    A step to the centre (x0_hat = 0, normal but no projection) scores 1 / (distance to the sphere): large."""
    target = nearest_on_sphere(x_t, q)
    return (x0_hat - target).norm(dim=1) / (x_t - target).norm(dim=1).clamp(min=1e-12)


def sphere_run(settings, folder):
    """The run trained on the sphere's data file (written first) into folder/run, or the one already there."""
    folder = Path(folder)
    target = folder / f"sphere-{settings['d']}-in-{settings['D']}.npy"
    if not target.exists():  # written once, before its run
        points, _ = sphere(settings["d"], settings["D"], settings["rows"])
        atomic_write(target, lambda tmp: np.save(open(tmp, "wb"), points.float().numpy()))
    cfg = TrainConfig(data=str(target), **RECIPE)
    return get_or_train(cfg, folder / "run", seconds=settings["seconds"], progress=False)


@torch.no_grad()
def corrections(run, dataset, x0, t, seed=1):
    """The model's step x0_hat - x_t at time t, x_t and the noise drawn, in data units, for clean points x0
    (dataset: the run's data, for its map into model units)."""
    z0 = dataset.normalize(x0.float())
    eps = torch.randn(z0.shape, generator=torch.Generator().manual_seed(seed))
    tt = torch.tensor(t, dtype=torch.float64)
    z_t = (run.path.alpha(tt) * z0 + run.path.sigma(tt) * eps).float()
    x0_hat, _ = run.model(clip=False)(z_t, t)
    step = (dataset.denormalize(x0_hat) - dataset.denormalize(z_t)).double()
    return step, dataset.denormalize(z_t).double(), (eps * dataset.scale).double()  # noise, in data units


@torch.no_grad()
def sphere_dimension(run, dataset, x0, ratios=RATIOS):
    """Stanczuk's estimate on the trained sphere model (claim 2(c) on a known manifold): the median k over the
    held-out points x0 at each noise ratio sigma / alpha, in model units (the standardisation is one scale)."""
    from .geometry import dimension, run_score

    z0 = dataset.normalize(x0.float()).double()  # (points, D)
    out = []
    for ratio in ratios:
        t = float(run.path.t_from_sigma_ratio(torch.tensor(ratio, dtype=torch.float64)))
        score, a, s = run_score(run, t)
        ks = sorted(dimension(score, a * z, s, seed=i)[0] for i, z in enumerate(z0))
        out.append({"ratio": ratio, "t": t, "k": ks[len(ks) // 2], "ks": ks})
    return out


def measure(runs, quick=False, folder="claims/runs/projection"):
    settings = SETTINGS["quick" if quick else "full"]
    run = sphere_run(settings, folder)
    _, q = sphere(settings["d"], settings["D"], 1)
    heldout = data.load(run.cfg.data, "heldout")
    x0 = heldout.x[: settings["n"]].double()
    rows = []
    for t in TIMES:
        c, x_t, eps = corrections(run, heldout, x0, t)
        share = normal_share(c, x_t, q)
        noise_share = normal_share(eps, x_t, q)  # the noise that was added
        gap = projection_gap(x_t + c, x_t, q)
        rows.append(
            {
                "t": t,
                "mean": float(share.mean()),
                "lo": float(share.quantile(0.1)),
                "hi": float(share.quantile(0.9)),
                "noise": float(noise_share.mean()),
                "gap": float(gap.median()),
            }
        )
    return {
        "d": settings["d"],
        "D": settings["D"],
        "n": settings["n"],
        "steps": run.step,
        "train_seconds": settings["seconds"],
        "geometry": (settings["D"] - settings["d"]) / settings["D"],
        "rows": rows,
        "dimension": sphere_dimension(run, heldout, x0[:DIMENSION_POINTS]),
    }


def figure(result, path):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    ts = [r["t"] for r in result["rows"]]
    ax.fill_between(ts, [r["lo"] for r in result["rows"]], [r["hi"] for r in result["rows"]], alpha=0.2)
    ax.plot(ts, [r["mean"] for r in result["rows"]], "o-", label="the denoiser's step x0_hat - x_t (mean, 10-90%)")
    ax.plot(ts, [r["noise"] for r in result["rows"]], "s--", label="the noise that was added")
    ax.axhline(
        result["geometry"], color="k", ls=":", lw=1, label=f"isotropic noise, (D - d) / D = {result['geometry']:.2f}"
    )
    ax.plot(
        ts,
        [r["gap"] for r in result["rows"]],
        "^-",
        color="tab:green",
        label="|x0_hat - nearest sphere point| / |x_t - it| (0: a projection)",
    )
    ax.set(
        xlabel="t (noise level, vp-cosine)",
        ylabel="share normal to the sphere; projection gap",
        ylim=(0, 1.05),
        title=f"a {result['d']}-sphere in R^{result['D']}",
    )
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def row(result):
    near = result["rows"][0]
    return {
        "claim": TITLE,
        "experiment": f"an MLP diffusion model on a {result['d']}-sphere in R^{result['D']} "
        f"({result['train_seconds']} s, {result['steps']} steps); {result['n']} held-out points "
        "noised at each t: the share of x0_hat - x_t normal to the sphere",
        "ours": "; ".join(
            f"t = {r['t']}: {r['mean']:.3f} normal, projection gap {r['gap']:.2f}" for r in result["rows"][::2]
        )
        + dimension_text(result),
        "reference": f"geometry alone: isotropic noise is {result['geometry']:.2f} normal ((D - d) / D); "
        "a projection onto the sphere would be 1.00; Stanczuk et al. 2022 recover a 10-sphere "
        "in R^100 as 11",
        "verdict": verdict(near, result) + dimension_verdict(result),
    }


def dimension_text(result):
    """'; Stanczuk's estimate k = 5, 5, 6 at sigma / alpha = ...' (results saved before it existed: '')."""
    rows = result.get("dimension")
    if not rows:
        return ""
    ks, ratios = ", ".join(str(r["k"]) for r in rows), ", ".join(f"{r['ratio']:g}" for r in rows)
    return f"; Stanczuk's estimate on this model: k = {ks} at sigma / alpha = {ratios} (d = {result['d']})"


def dimension_verdict(result):
    """Whether the estimate recovers the sphere's dimension within 1 at the smallest noise."""
    rows = result.get("dimension")
    if not rows:
        return ""
    k, d = rows[0]["k"], result["d"]
    if abs(k - d) <= 1:
        return (
            f" Stanczuk's estimate from its scores at small noise recovers the sphere's dimension within 1: "
            f"k = {k} for d = {d} (the paper: 11 for a 10-sphere)."
        )
    return (
        f" Stanczuk's estimate on its scores gives k = {k}, not the sphere's {d}: near the data this model's "
        "scores still have a tangent part."
    )


def verdict(near, result):
    """True when the step is more than halfway from the noise's normal share to a pure projection (1)."""
    base = near["noise"]
    where = (near["mean"] - base) / max(1e-12, 1 - base)
    said = (
        f"at t = {near['t']} the denoiser's step is {near['mean']:.1%} normal to the sphere, against "
        f"{base:.1%} for the noise it removes"
    )
    said += f"; x0_hat lands {near['gap']:.2f} of the way from the nearest sphere point back to x_t"
    if where >= 0.5 and near["gap"] < 0.5:
        return (
            f"True near the data: {said}. The denoiser removes the part of the noise that leads away from "
            "the manifold and lands close to the nearest point on it: a projection, not a step along it. Far "
            "from the data (large t) the step aims at the centre, which on a sphere is normal too."
        )
    if where > 0:
        return (
            f"Half true here: {said}. That is more normal than the noise, but nearer to the noise's share "
            "than to a pure projection: this small model also moves along the sphere."
        )
    return f"Not shown: {said}. This model does not step back onto the sphere any more than the noise points away."
