"""Data sets by name, each with a fixed training draw and independent held-out draws.

Splits are seeded the same everywhere: `train` (seed 0), `heldout` (seed 1) and `fresh` (seed 2,
a second independent real draw used only for the real-vs-real floor of every metric).
"""

import functools
from dataclasses import dataclass

import torch

from ..errors import UnnoiseError, positive_int
from . import toy2d

SPLITS = {"train": 0, "heldout": 1, "fresh": 2}
TRAIN_SIZE_2D = 20000


@dataclass
class Dataset:
    """Real data: x (N, ...) float32, labels y (N,) int64, and the affine map into model units."""

    name: str
    x: torch.Tensor
    y: torch.Tensor
    num_classes: int
    shift: torch.Tensor   # model units: (x - shift) / scale
    scale: torch.Tensor
    low: torch.Tensor     # the training data's range in model units, for clipping x0 estimates
    high: torch.Tensor

    @property
    def kind(self):
        return "points" if self.x.dim() == 2 else "images"

    def normalize(self, x):
        return (x - self.shift) / self.scale

    def denormalize(self, z):
        return z * self.scale + self.shift


def names():
    return toy2d.NAMES


def load(name, split="train", n=None, seed=None):
    """The named data set's split; n points (default: the whole training draw, or 2000); seed overrides the split's."""
    if split not in SPLITS:
        raise UnnoiseError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
    if name not in toy2d.NAMES:
        raise UnnoiseError(f"unknown data set {name!r}; choose one of {', '.join(toy2d.NAMES)}")
    n = positive_int("n", n if n is not None else (TRAIN_SIZE_2D if split == "train" else 2000))
    x, y = toy2d.draw(name, n, SPLITS[split] if seed is None else seed)
    return Dataset(name, x, y, toy2d.CLASSES[name], *_train_units(name))


@functools.lru_cache(maxsize=None)
def _train_units(name):
    """Per-coordinate mean and std of the training draw (the map into model units), and its range there."""
    x, _ = toy2d.draw(name, TRAIN_SIZE_2D, SPLITS["train"])
    shift, scale = x.mean(0), x.std(0)
    z = (x - shift) / scale
    return shift, scale, z.min(0).values, z.max(0).values
