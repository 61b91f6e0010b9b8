"""The Dataset every data source returns (a module of its own, so the sources and the package that names them
import it without importing each other)."""

from dataclasses import dataclass

import torch


@dataclass
class Dataset:
    """Real data: x (N, ...) float32, labels y (N,) int64, and the affine map into model units; or text: x the
    character ids (N,) int64 of the alphabet."""

    name: str
    x: torch.Tensor
    y: torch.Tensor
    num_classes: int
    shift: torch.Tensor  # model units: (x - shift) / scale
    scale: torch.Tensor
    low: torch.Tensor  # the training data's range in model units, for clipping x0 estimates
    high: torch.Tensor
    alphabet: str | None = None  # text: the characters x's ids index

    @property
    def kind(self):
        return "text" if self.alphabet is not None else "points" if self.x.dim() == 2 else "images"

    def normalize(self, x):
        return (x - self.shift) / self.scale

    def denormalize(self, z):
        return z * self.scale + self.shift
