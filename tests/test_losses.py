"""EDM's preconditioning and loss, and Min-SNR-gamma weighting, against their papers' formulas."""

import math

import pytest
import torch

from unnoise.config import TrainConfig
from unnoise.errors import UnnoiseError
from unnoise.losses import denoising_loss, edm_loss, min_snr_weight
from unnoise.paths import edm_scalings, make_path


def test_edm_scalings_are_table_1():
    sigma, sd = torch.tensor([0.002, 0.5, 80.0], dtype=torch.float64), 0.5
    c_skip, c_out, c_in, c_noise = edm_scalings(sigma, sd)
    torch.testing.assert_close(c_skip, sd**2 / (sigma**2 + sd**2))
    torch.testing.assert_close(c_out, sigma * sd / (sigma**2 + sd**2).sqrt())
    torch.testing.assert_close(c_in, 1 / (sigma**2 + sd**2).sqrt())
    torch.testing.assert_close(c_noise, sigma.log() / 4)


def test_edm_prediction_round_trips_and_its_target_is_unit_variance():
    """F's target (x0 - c_skip x) / c_out has unit variance when x0 has std sigma_data (EDM's design goal)."""
    path = make_path("edm", sigma_data=0.5)
    g = torch.Generator().manual_seed(0)
    x0 = 0.5 * torch.randn(20000, 2, generator=g, dtype=torch.float64)
    eps = torch.randn(20000, 2, generator=g, dtype=torch.float64)
    for sigma in (0.01, 0.5, 20.0):
        t = torch.full((20000,), sigma, dtype=torch.float64)
        target = path.target("edm", x0, eps, t)
        assert target.std().item() == pytest.approx(1.0, rel=0.03)
        back_x0, back_eps = path.to_x0_eps("edm", target, path.add_noise(x0, eps, t), t)
        torch.testing.assert_close(back_x0, x0)
        torch.testing.assert_close(back_eps, eps)


class Recorder(torch.nn.Module):
    """A 'network' that returns a fixed function of its inputs and remembers them."""

    def forward(self, x, t, y):
        self.seen = (x, t)
        return 0.1 * x + t[:, None].to(x)


def test_edm_loss_is_the_weighted_denoising_error():
    path = make_path("edm", sigma_data=0.7)
    x0 = torch.randn(64, 2, generator=torch.Generator().manual_seed(1))
    net = Recorder()
    loss = edm_loss(net, path, x0, None, torch.Generator().manual_seed(2))
    g = torch.Generator().manual_seed(2)  # replay the same draws
    sigma = (-1.2 + 1.2 * torch.randn(64, generator=g, dtype=torch.float64)).exp()
    noise = torch.randn(64, 2, generator=g)
    x = x0 + sigma[:, None].float() * noise
    c_skip, c_out, c_in, c_noise = edm_scalings(sigma, 0.7)
    torch.testing.assert_close(net.seen[0], x * c_in[:, None].float())
    F = 0.1 * x * c_in[:, None].float() + c_noise[:, None].float()
    D = c_skip[:, None] * x + c_out[:, None] * F
    weight = (sigma**2 + 0.49) / (sigma * 0.7) ** 2
    expected = (weight * (D - x0).square().mean(1)).mean()
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)


@pytest.mark.parametrize("prediction,power", [("eps", 1), ("v", None), ("x0", 0)])
def test_min_snr_gamma_weights(prediction, power):
    path = make_path("linear")
    t = torch.tensor([0.0, 100.0, 400.0, 999.0], dtype=torch.float64)
    snr = path.log_snr(t).exp()
    w = min_snr_weight(path, prediction, t, 5.0)
    expected = {"eps": snr.clamp(max=5) / snr, "v": snr.clamp(max=5) / (snr + 1), "x0": snr.clamp(max=5)}[prediction]
    torch.testing.assert_close(w, expected)
    assert w[0] < 1e-2 if prediction != "x0" else w[0] == 5  # SNR(0) is about 1e4: clipped to gamma


def test_min_snr_gamma_changes_the_loss_by_its_weights():
    path = make_path("linear")
    x0 = torch.randn(32, 2, generator=torch.Generator().manual_seed(3))
    net = Recorder()
    plain = denoising_loss(net, path, "eps", x0, None, torch.Generator().manual_seed(4))
    weighted = denoising_loss(net, path, "eps", x0, None, torch.Generator().manual_seed(4), min_snr_gamma=5.0)
    assert weighted.item() < plain.item()  # eps weights min(SNR, 5) / SNR are <= 1
    with pytest.raises(UnnoiseError, match="eps, x0 or v"):
        TrainConfig(family="flow", min_snr_gamma=5.0)
    with pytest.raises(UnnoiseError, match="positive"):
        TrainConfig(min_snr_gamma=-1.0)
    assert TrainConfig(family="edm").prediction == "edm" and TrainConfig(family="edm").schedule == "edm"
    assert math.isclose(TrainConfig(min_snr_gamma=5).min_snr_gamma, 5)
