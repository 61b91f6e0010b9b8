"""The page's sections: numbers and quantized arrays computed from trained runs, one function per section.

Every function reads runs and returns plain JSON (arrays through encode.py); none trains. A run a
section needs but does not have is None, and the section then carries `missing`: the command that
fills it. Points are shown in data units; images in [0, 1].
"""

import statistics

import torch

from .. import data
from ..data import images as image_data
from ..guidance import EACH
from ..metrics import measure
from ..samplers import PerSampleNoise, default_spacing, timesteps
from ..viz.images import figure_sampler
from ..viz.order import order_frames
from . import encode

NFE = measure.NFE  # the figure sampler's network evaluations (DDIM / Euler)
POINTS = 600  # points drawn in the 2D figures
LEVELS = 41  # noise levels the noise and field sliders step through
TRAJ = 200  # trajectories drawn per method
GUIDANCE = (0.0, 1.0, 2.0, 4.0)
QUALITY_N = None  # samples behind each accuracy / FID figure (None: as many as held-out images)
W2_N = 1000  # points behind each W2 figure (and its floor)


def grid(path, k=LEVELS):
    """k times from the cleanest to the noisiest (integers on discrete paths), with alpha, sigma, log SNR."""
    lo = 0.0 if path.discrete else getattr(path, "t_min", path.t_end)
    ts = torch.linspace(lo, path.t_max, k, dtype=torch.float64)
    ts = ts.round() if path.discrete else ts
    alpha = torch.stack([path.alpha(t) for t in ts]).double()
    sigma = torch.stack([path.sigma(t) for t in ts]).double()
    logsnr = (2 * (alpha.clamp(min=1e-12).log() - sigma.clamp(min=1e-12).log())).clamp(-20, 20)
    return {
        "t": ts.tolist(),
        "alpha": alpha.tolist(),
        "sigma": sigma.tolist(),
        "logsnr": logsnr.tolist(),
        "steps": timesteps(path, NFE, default_spacing(path)).tolist()[:-1],
        "name": getattr(path, "name", ""),
    }


def trace(run, n, sampler=None, nfe=None, label=None, seed=0):
    """x_t from x_T to the sample (F + 1, n, ...), the x0 estimates (F, n, ...) and t (F,), in data units."""
    xs, x0s, ts = [run.to_data(run.initial(PerSampleNoise.for_range(seed, 0, n)))], [], []

    def record(i, t, x, x0):
        xs.append(run.to_data(x))
        x0s.append(run.to_data(x0))
        ts.append(float(t))

    run.sample(n, sampler or figure_sampler(run), nfe or NFE, seed, label=label, callback=record)
    return torch.stack(xs), torch.stack(x0s), ts


def pack(x, run):
    """Encode images at 8 bits, points at 16."""
    return encode.images(x) if run.images else encode.points(x)


def noise(points_run, image_run, seed=0):
    """Section 1: clean data and one fixed noise draw per sample; the page mixes them as alpha x0 + sigma eps."""
    out = {}
    g = torch.Generator().manual_seed(seed)
    for key, run in (("points", points_run), ("image", image_run)):
        if run is None:
            continue
        if run.images:
            x0 = data.load(run.cfg.data, "train", size=run.cfg.size, channels=run.cfg.channels).x[:1]
            x0 = (x0 - image_data.SHIFT) / image_data.SCALE  # (1, C, H, W) model units
            view = {"scale": image_data.SCALE, "shift": image_data.SHIFT}
        else:
            train = data.load(run.cfg.data, "train", POINTS)
            x0, view = train.normalize(train.x), None  # (POINTS, 2) model units
        out[key] = {
            "x0": encode.encode(x0, 16),
            "eps": encode.encode(torch.randn(x0.shape, generator=g), 16),
            "view": view,
            "schedule": grid(run.path),
            "run": str(run.folder),
        }
    return out


def denoise(points_run, image_run):
    """Section 2: the deterministic sampler's states x_t and x0 estimates at every step."""
    out = {}
    for key, run, n in (("points", points_run, POINTS), ("image", image_run, None)):
        if run is None:
            continue
        label = EACH if run.cfg.conditional else None
        n = n or (run.num_classes if run.cfg.conditional else 8)
        xs, x0s, ts = trace(run, n, label=label)
        out[key] = {
            "xt": pack(xs, run),
            "x0": pack(x0s, run),
            "t": ts,
            "sampler": figure_sampler(run),
            "run": str(run.folder),
        }
    return out


def tangent_share(dataset_name="digits", k=10, d=5, n=200, seed=0):
    """Section 3: noise energy inside each held-out digit's local tangent space (top d PCA directions of its
    k nearest training digits), against d / D for a random subspace."""
    train = data.load(dataset_name, "train").x.flatten(1).double()  # (N, D)
    held = data.load(dataset_name, "heldout").x.flatten(1).double()[:n]
    g = torch.Generator().manual_seed(seed)
    shares = []
    for x in held:
        near = train[torch.cdist(x[None], train)[0].topk(k, largest=False).indices]  # (k, D)
        basis = torch.linalg.svd(near - near.mean(0), full_matrices=False).Vh[:d]  # (d, D)
        eps = torch.randn(train.shape[1], generator=g, dtype=torch.float64)
        shares.append(float((basis @ eps).square().sum() / eps.square().sum()))
    D = train.shape[1]
    return {"D": D, "d": d, "k": k, "n": n, "mean": statistics.mean(shares), "expected": d / D}


def arrows(run, side=15):
    """Section 4: the denoising direction x0_hat - x on a side x side grid over the data, at every level."""
    real = data.load(run.cfg.data, "heldout", POINTS).x
    lo, hi = real.min(0).values, real.max(0).values
    pad = 0.3 * (hi - lo)
    axes = [torch.linspace(float(lo[i] - pad[i]), float(hi[i] + pad[i]), side) for i in range(2)]
    where = torch.stack(torch.meshgrid(*axes, indexing="xy"), -1).reshape(-1, 2)  # (side^2, 2)
    levels = grid(run.path)["t"][1:]
    model, units = run.model(), run.dataset
    field = [units.denormalize(model(units.normalize(where), t)[0]) - where for t in levels]
    return {
        "where": encode.points(where),
        "arrows": encode.encode(torch.stack(field), 16),
        "t": levels,
        "real": encode.points(real),
        "run": str(run.folder),
    }


def trajectories(methods, seed=1):
    """Section 4: from the same starting noise, each method's path to its sample, (F + 1, TRAJ, 2) each."""
    out = []
    for name, run, sampler in methods:
        xs, _, _ = trace(run, TRAJ, sampler, nfe=40, seed=seed)
        out.append({"name": name, "sampler": sampler, "xt": encode.points(xs), "run": str(run.folder)})
    return out


def guidance(run):
    """Section 5: 4 samples per class at each w (same noise), and accuracy and FID ratio against w."""
    rows, curve = [], []
    for w in GUIDANCE:
        rows.append(run.sample(4 * run.num_classes, "dpmpp_2m", NFE, seed=0, label=EACH, guidance=w))
        curve.append({"w": w, **measure.image_quality(run, n=QUALITY_N, nfe=NFE, guidance=w)})
    return {"w": list(GUIDANCE), "samples": encode.images(torch.stack(rows)), "curve": curve, "run": str(run.folder)}


def forward_passes(run):
    """Network evaluations per sample: the token families' levels, or the continuous sampler's NFE."""
    return len(run.family.lengths(run)) if run.cfg.discrete else NFE


def debate(runs, frames=24, quality=None):
    """Section 6: each run's generation of one image per class, frame by frame, and its measured cost and quality.

    runs: [(name, role, Run)]."""
    panels, table = [], []
    for name, role, run in runs:
        per_class = [
            order_frames(run, c, seed=0, frames=frames)
            if run.cfg.conditional  # one per class, or
            else order_frames(run, None, seed=c, frames=frames)
            for c in range(10)
        ]  # ten seeds
        length = min(len(f) for f, _ in per_class)
        stack = torch.stack([torch.stack(f[:length]) for f, _ in per_class])  # (classes, F, C, H, W)
        panels.append(
            {"name": name, "frames": encode.images(stack), "captions": per_class[0][1][:length], "run": str(run.folder)}
        )
        q = (quality or {}).get(str(run.folder)) or measure.image_quality(run, n=QUALITY_N, nfe=NFE)
        table.append(
            {
                "name": name,
                "params": sum(p.numel() for p in run.net.parameters()),
                "nfe": forward_passes(run),
                "ms": measure.ms_per_image(run, nfe=NFE),
                **q,
                "run": str(run.folder),
                "role": role,
            }
        )
    return {"panels": panels, "table": table}
