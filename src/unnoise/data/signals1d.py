"""1D signals made by code, never downloaded: mnist1d (Greydanus 2020) and a set of damped sinusoids.

mnist1d follows the published recipe (arXiv 2011.14439; greydanus/mnist1d data.py and transform.py):
ten 12-point templates, one per digit, each example padded with 36-60 zeros, resampled to 72 points,
scaled by up to +-20 %, shifted circularly by up to 48, its padding filled with Gaussian-smoothed noise
(scale 0.25, filter width 2), plus iid noise (0.02) and a linear shear (+-0.375), then resampled to 40
points; 5,000 examples (500 per class), shuffled, standardized as a whole, split 4,000 / 1,000.
The published templates are not in our notes, so TEMPLATES below are our own ten shapes: the recipe is
the paper's, the digits are not, and our accuracies are ours (the paper's CNN reaches 94 %).
"""

import functools

import numpy as np
import torch
from scipy.ndimage import gaussian_filter

from ..errors import UnnoiseError

TEMPLATES = np.array(
    [  # (10, 12): our own ten shapes, one per class
        [0, 2, 3.5, 4.5, 5, 5.2, 5.2, 5, 4.5, 3.5, 2, 0],  # 0: one wide hump
        [0, 0, 0, 0, 1, 5, 5, 1, 0, 0, 0, 0],  # 1: a narrow spike
        [5, 4, 3, 2, 1, 0, -1, -2, -2, -2, -2, -2],  # 2: a ramp down, then flat
        [0, 3, 4, 3, 0, -1, 0, 3, 4, 3, 0, -1],  # 3: two humps
        [-3, -3, -3, -3, -3, 3, 3, 3, 3, 3, 3, 3],  # 4: a step up
        [-5, -4, -3, -2, -1, 0, 1, 2, 3, 4, 5, 6],  # 5: a ramp up
        [0, 3, 5, 3, 0, -2, -3, -2, 0, 0, 0, 0],  # 6: a hump, then a dip
        [4, 4, 4, -4, -3.5, -3, -2.5, -2, -1.5, -1, -0.5, 0],  # 7: a sharp drop, then a slow rise
        [0, 2, 0, -2, 0, 2, 0, -2, 0, 2, 0, -2],  # 8: a zigzag
        [0, -1, -3, -5, -5.5, -5, -4, -2, 0, 2, 3, 3],  # 9: a valley, then up
    ],
    dtype=np.float64,
)
RECIPE = dict(
    padding=(36, 60),
    dense=72,
    scale=0.4,
    shift=48,
    corr_noise=0.25,
    width=2,
    iid_noise=0.02,
    shear=0.75,
    length=40,
    per_class=500,
    train=4000,
    seed=42,
)
SPLITS = ("train", "test")


def templates():
    """The ten templates, each normalized to zero mean and unit standard deviation: (10, 12)."""
    t = TEMPLATES - TEMPLATES.mean(1, keepdims=True)
    return t / t.std(1, keepdims=True)


def resample(x, n):
    """Linear interpolation of x onto n evenly spaced points over the same span (mnist1d's interpolate)."""
    return np.interp(np.linspace(0, 1, n), np.linspace(0, 1, len(x)), x)


def transform(template, rng, r=RECIPE):
    """One mnist1d example from a 12-point template (mnist1d transform.py, step by step): (length,)."""
    pad = rng.integers(r["padding"][0], r["padding"][1] + 1)
    x = resample(np.concatenate([template, np.zeros(pad)]), r["dense"])  # (72,)
    inside = resample(np.concatenate([np.ones(len(template)), np.zeros(pad)]), r["dense"]) > 0
    x = x * (1 + r["scale"] * (rng.random() - 0.5))  # scale +-20 %
    k = rng.integers(r["shift"])
    x, inside = np.roll(x, k), np.roll(inside, k)  # circular shift
    noise = gaussian_filter(r["corr_noise"] * rng.standard_normal(r["dense"]), r["width"])
    x = np.where(inside, x, noise) + r["iid_noise"] * rng.standard_normal(r["dense"])
    x = x - r["shear"] * (rng.random() - 0.5) * np.linspace(-0.5, 0.5, r["dense"])  # linear shear
    return resample(x, r["length"])  # (40,)


@functools.lru_cache(maxsize=4)
def _mnist1d(seed):
    rng = np.random.default_rng(seed)
    shapes = templates()
    ys = np.repeat(np.arange(len(shapes)), RECIPE["per_class"])  # (5000,)
    xs = np.stack([transform(shapes[y], rng) for y in ys])  # (5000, 40)
    order = rng.permutation(len(ys))
    xs, ys = xs[order], ys[order]
    xs = (xs - xs.mean()) / xs.std()  # the whole set: mean 0, std 1
    return torch.tensor(xs, dtype=torch.float32), torch.tensor(ys, dtype=torch.long)


def mnist1d(split="train", seed=RECIPE["seed"]):
    """mnist1d's split as (x (N, 1, 40) float32, y (N,) int64): 4,000 train, 1,000 test, fixed by the seed."""
    if split not in SPLITS:
        raise UnnoiseError(f"unknown mnist1d split {split!r}; choose one of {', '.join(SPLITS)}")
    xs, ys = _mnist1d(seed)
    part = slice(0, RECIPE["train"]) if split == "train" else slice(RECIPE["train"], None)
    return xs[part, None].clone(), ys[part].clone()


def waves(n, length, seed=0, noise=0.02):
    """n signals of 1-3 damped sinusoids, random frequency, phase and decay, plus light noise: (n, 1, length).

    Frequencies are log-uniform in 0.01-0.2 cycles per sample, decay exp(-r s / length) with r in 0.5-4, so
    the set looks alike at every length; the sum is divided by the number of components (peak below 1).
    """
    if length < 2:
        raise UnnoiseError(f"a waveform needs a length of at least 2, got {length}")
    g = torch.Generator().manual_seed(seed)
    s = torch.arange(length, dtype=torch.float64)  # (L,)
    k = torch.randint(1, 4, (n, 1), generator=g)  # components per signal
    on = torch.arange(3)[None] < k  # (n, 3)
    freq = torch.exp(torch.empty(n, 3, 1).uniform_(np.log(0.01), np.log(0.2), generator=g).double())
    phase = torch.empty(n, 3, 1).uniform_(0, 2 * np.pi, generator=g).double()
    decay = torch.empty(n, 3, 1).uniform_(0.5, 4.0, generator=g).double()
    amp = torch.empty(n, 3, 1).uniform_(0.3, 1.0, generator=g).double() * on[..., None]
    x = (amp * torch.exp(-decay * s / length) * torch.sin(2 * np.pi * freq * s + phase)).sum(1) / k  # (n, L)
    x = x + noise * torch.randn(n, length, generator=g, dtype=torch.float64)
    return x[:, None].float()  # (n, 1, L)
