"""The Dataset every data source returns (a module of its own, so the sources and the package that names them
import it without importing each other)."""

from dataclasses import dataclass

import torch


@dataclass
class Dataset:
    """Real data: x (N, ...) float32, labels y (N,) int64, and the affine map into model units."""

    name: str
    x: torch.Tensor
    y: torch.Tensor
    num_classes: int
    shift: torch.Tensor  # model units: (x - shift) / scale
    scale: torch.Tensor
    low: torch.Tensor  # the training data's range in model units, for clipping x0 estimates
    high: torch.Tensor

    @property
    def kind(self):
        return "points" if self.x.dim() == 2 else "images"

    def normalize(self, x):
        return (x - self.shift) / self.scale

    def denormalize(self, z):
        return z * self.scale + self.shift
