"""Distances between 2D point clouds: exact W2, sliced W2 and RBF MMD, each beside its floor.

The floor of a metric is its value between two independent real draws of the same size n: what a
perfect model would score. A model is judged by its ratio to the floor.
"""

import numpy as np
import ot
import torch


def _np(x):
    return torch.as_tensor(x).double().cpu().numpy()


def w2(a, b):
    """Exact 2-Wasserstein distance between two empirical measures (network simplex, POT's emd2)."""
    a, b = _np(a), _np(b)
    cost = ot.dist(a, b)  # squared Euclidean, (n, m)
    return float(np.sqrt(ot.emd2(ot.unif(len(a)), ot.unif(len(b)), cost, numItermax=10_000_000)))


def w2_floor(name, held, draws=4):
    """The W2 floor of held-out points: the mean W2 to `draws` seeded fresh real draws of the same size
    (one draw moves by +-20 %)."""
    from .. import data

    return sum(w2(data.load(name, "fresh", len(held), seed=100 + k).x, held) for k in range(draws)) / draws


def swd(a, b, projections=512, seed=0):
    """Sliced 2-Wasserstein distance over random directions (Rabin et al. 2011), POT's estimator."""
    return float(ot.sliced_wasserstein_distance(_np(a), _np(b), n_projections=projections, seed=seed))


def mmd(a, b):
    """sqrt of the biased MMD^2 with an RBF kernel whose bandwidth is the median pairwise distance (Gretton et al. 2012)."""
    a, b = torch.as_tensor(a).double(), torch.as_tensor(b).double()
    both = torch.cat([a, b])
    dist2 = torch.cdist(both, both).square()  # (n + m, n + m)
    bandwidth2 = dist2[dist2 > 0].median()
    k = torch.exp(-dist2 / (2 * bandwidth2))
    n = len(a)
    value = k[:n, :n].mean() + k[n:, n:].mean() - 2 * k[:n, n:].mean()
    return float(value.clamp(min=0).sqrt())


METRICS = {"w2": w2, "swd": swd, "mmd": mmd}


def report(samples, heldout, fresh):
    """Every metric of samples vs held-out data, beside the same metric of a fresh real draw vs held-out data."""
    n = min(len(samples), len(heldout), len(fresh))
    samples, heldout, fresh = samples[:n], heldout[:n], fresh[:n]
    out = {"n": n}
    for name, metric in METRICS.items():
        out[name] = metric(samples, heldout)
        out[f"{name}_floor"] = metric(fresh, heldout)
        out[f"{name}_ratio"] = out[name] / out[f"{name}_floor"]
    return out
