"""Distances between feature sets (n, d): Frechet (FID) and kernel (KID) distances, with torchmetrics' implementations
fed with features already made, and the standardisation both image floors use (metrics/images.py, metrics/level.py).
"""

import warnings

import torch


class _Given(torch.nn.Module):
    """torchmetrics calls its feature extractor on what update() gets: we hand it features already made."""

    def __init__(self, dim):
        super().__init__()
        self.num_features = dim

    def forward(self, features):
        return features.double()


def fid(a, b):
    """Frechet distance between Gaussians fitted to feature sets a (n, d) and b (m, d) (Heusel et al. 2017)."""
    from torchmetrics.image.fid import FrechetInceptionDistance

    metric = FrechetInceptionDistance(feature=_Given(a.shape[1]))
    metric.update(torch.as_tensor(a), real=False)
    metric.update(torch.as_tensor(b), real=True)
    return float(metric.compute())


def kid(a, b, subsets=100, subset_size=1000, seed=0):
    """(mean, std) over random subsets of the unbiased cubic-kernel MMD^2 between a and b (Binkowski et al. 2018)."""
    from torchmetrics.image.kid import KernelInceptionDistance

    size = min(subset_size, len(a), len(b))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "will save all extracted features"
        metric = KernelInceptionDistance(feature=_Given(a.shape[1]), subsets=subsets, subset_size=size)
    metric.update(torch.as_tensor(a), real=False)
    metric.update(torch.as_tensor(b), real=True)
    with torch.random.fork_rng():
        torch.manual_seed(seed)  # its subsets come from torch.randperm
        mean, std = metric.compute()
    return float(mean), float(std)


def standardized(reference, *others):
    """(reference, *others) features (n, d), each shifted and scaled per feature by the reference's mean and sd."""
    mean, std = reference.mean(0), reference.std(0).clamp(min=1e-6)
    return tuple((f - mean) / std for f in (reference, *others))
