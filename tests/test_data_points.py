"""2D data sets and point metrics against closed forms."""

import math

import numpy as np
import pytest
import torch

from unnoise import data
from unnoise.data import toy2d
from unnoise.errors import UnnoiseError
from unnoise.metrics.points import mmd, report, swd, w2


def test_moons_lie_on_make_moons_half_circles():
    x, y = toy2d.draw("moons", 4000, 0)
    centre = torch.where(y[:, None] == 0, torch.tensor([0.0, 0.0]), torch.tensor([1.0, 0.5]))
    radius = (x - centre).norm(dim=1)
    assert radius.mean().item() == pytest.approx(1.0, abs=0.01)
    assert radius.std().item() == pytest.approx(0.05, abs=0.01)            # the noise level
    upper = x[y == 0, 1] > 0 - 0.2
    assert upper.float().mean() > 0.99                                     # outer moon is the upper half
    assert abs(y.float().mean().item() - 0.5) < 0.03                        # classes drawn at random


def test_eight_gaussians_components():
    x, y = toy2d.draw("8gaussians", 8000, 0)
    angle = y.double() * 2 * math.pi / 8
    centres = 2 * torch.stack([angle.cos(), angle.sin()], 1).float()
    assert (x - centres).std().item() == pytest.approx(0.1, abs=0.01)


@pytest.mark.parametrize("name", data.toy2d.NAMES)
def test_splits_are_seeded_and_independent(name):
    a = data.load(name, "heldout", 500)
    assert torch.equal(a.x, data.load(name, "heldout", 500).x)
    assert not torch.equal(a.x, data.load(name, "fresh", 500).x)
    z = a.normalize(data.load(name, "train").x)
    assert z.mean(0).abs().max() < 1e-4 and (z.std(0) - 1).abs().max() < 1e-3
    assert torch.allclose(a.denormalize(a.normalize(a.x)), a.x, atol=1e-5)


def test_unknown_data_set_names_the_choices():
    with pytest.raises(UnnoiseError, match="moons"):
        data.load("mnist2d")


def test_w2_of_a_shift_is_the_shift_length():
    x = torch.randn(300, 2, generator=torch.Generator().manual_seed(0))
    assert w2(x, x + torch.tensor([0.3, 0.4])) == pytest.approx(0.5, abs=1e-6)
    assert w2(x, x[torch.randperm(300)]) == pytest.approx(0.0, abs=1e-6)


def test_swd_of_a_shift_and_mmd_of_identical_sets():
    x = torch.randn(500, 2, generator=torch.Generator().manual_seed(0))
    # A shift d projects onto direction u as <d, u>; averaged over the circle, E<d,u>^2 = |d|^2 / 2.
    assert swd(x, x + torch.tensor([1.0, 0.0]), projections=4000) == pytest.approx(math.sqrt(0.5), rel=0.03)
    assert mmd(x, x) == pytest.approx(0.0, abs=1e-6)
    assert mmd(x, x + 3) > 0.5


def test_report_puts_every_metric_beside_its_floor():
    held, fresh = data.load("moons", "heldout", 400).x, data.load("moons", "fresh", 400).x
    good = report(fresh, held, data.load("moons", "fresh", 400, seed=9).x)
    bad = report(held + 0.5, held, fresh)
    assert 0.5 < good["w2_ratio"] < 2 and bad["w2_ratio"] > 3
    assert set(good) >= {"w2", "w2_floor", "swd", "swd_floor", "mmd", "mmd_floor", "n"}
    assert np.isclose(bad["w2"] / bad["w2_floor"], bad["w2_ratio"])
