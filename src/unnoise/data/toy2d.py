"""2D toy sets, seeded: moons, swiss roll, 8 gaussians, checkerboard, circles, two spirals.

Each `draw(name, n, seed)` returns points (n, 2) float32 and integer class labels (n,), in the
sets' usual coordinates.

Every draw is i.i.d. from its distribution. scikit-learn's make_moons and make_circles place the
points on an even grid along each curve (np.linspace) and split them exactly in half; two such
draws differ only by their noise, so a real-vs-real floor between them is about half what two
independent samples score. Moons and circles here keep scikit-learn's shapes and noise levels but
draw the position along the curve and the curve itself at random.
"""

import math

import numpy as np
import torch
from sklearn import datasets

from ..errors import choose

NOISE = {"moons": 0.05, "swissroll": 0.5, "8gaussians": 0.1, "circles": 0.05, "spirals": 0.3}


def moons(n, rng):
    """make_moons' two half circles (outer at the origin, inner shifted by (1, -0.5)), noise 0.05; label = moon."""
    label = rng.randint(0, 2, n)
    angle = rng.uniform(0, math.pi, n)
    outer = np.stack([np.cos(angle), np.sin(angle)], axis=1)
    inner = np.stack([1 - np.cos(angle), 0.5 - np.sin(angle)], axis=1)
    points = np.where(label[:, None] == 0, outer, inner)
    return points + NOISE["moons"] * rng.randn(n, 2), label


def swissroll(n, rng):
    """scikit-learn make_swiss_roll (noise 0.5), its (x, z) plane scaled by 1/10; label = inner/outer half."""
    points, position = datasets.make_swiss_roll(n, noise=NOISE["swissroll"], random_state=rng)
    return points[:, [0, 2]] / 10.0, (position > np.median(position)).astype(int)


def eight_gaussians(n, rng):
    """Eight unit-weight Gaussians (std 0.1) on the circle of radius 2; label = component."""
    label = rng.randint(0, 8, n)
    angle = label * (2 * math.pi / 8)
    centers = 2.0 * np.stack([np.cos(angle), np.sin(angle)], axis=1)
    return centers + NOISE["8gaussians"] * rng.randn(n, 2), label


def checkerboard(n, rng):
    """Uniform on the 8 dark squares of a 4x4 board on [-2, 2]^2; label = square (0..7)."""
    label = rng.randint(0, 8, n)
    row, col = label // 2, 2 * (label % 2) + (label // 2) % 2
    corner = np.stack([col - 2.0, row - 2.0], axis=1)
    return corner + rng.rand(n, 2), label


def circles(n, rng):
    """make_circles' two rings (radius 1 and factor 0.5), noise 0.05, scaled by 2; label = ring (1 inner)."""
    label = rng.randint(0, 2, n)
    angle = rng.uniform(0, 2 * math.pi, n)
    radius = np.where(label == 1, 0.5, 1.0)[:, None]
    points = radius * np.stack([np.cos(angle), np.sin(angle)], axis=1)
    return 2.0 * (points + NOISE["circles"] * rng.randn(n, 2)), label


def spirals(n, rng):
    """Two interleaved Archimedean spirals with Gaussian noise (std 0.3 before the 1/3 scale)."""
    label = rng.randint(0, 2, n)
    radius = np.sqrt(rng.rand(n)) * 3 * math.pi
    angle = radius + label * math.pi
    points = np.stack([radius * np.cos(angle), radius * np.sin(angle)], axis=1)
    return (points + NOISE["spirals"] * rng.randn(n, 2)) / 3.0, label


MAKERS = {
    "moons": moons,
    "swissroll": swissroll,
    "8gaussians": eight_gaussians,
    "checkerboard": checkerboard,
    "circles": circles,
    "spirals": spirals,
}
NAMES = tuple(MAKERS)
CLASSES = {"moons": 2, "swissroll": 2, "8gaussians": 8, "checkerboard": 8, "circles": 2, "spirals": 2}


def draw(name, n, seed):
    """n points of the named set from seed: (points (n, 2) float32, labels (n,) int64)."""
    maker = MAKERS[choose("data set", name, NAMES)]
    points, labels = maker(n, np.random.RandomState(seed))
    return torch.tensor(points, dtype=torch.float32), torch.tensor(labels, dtype=torch.int64)
