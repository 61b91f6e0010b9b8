"""Training losses over the path core."""

import torch

from .errors import UnnoiseError


def denoising_loss(net, path, prediction, x0, y, generator, min_snr_gamma=None, eps=None, t=None):
    """E_{t, eps} w(t) || net(x_t, t) - target ||^2 (Ho et al. 2020 eq. 14; Lipman et al. 2022 eq. 9 for velocity).

    The target is whatever `prediction` names (eps, x0, v or velocity), so one loss serves every family;
    w(t) = 1, or Min-SNR-gamma's weight when min_snr_gamma is set.
    eps, t: noise already paired with x0 (see coupling.py) and times, drawn for the whole batch by the
    training loop (so any number of processes sees the same draws); drawn here when None.
    """
    if t is None:
        t = path.sample_t(x0.shape[0], generator)  # (B,)
    if eps is None:
        eps = torch.randn(x0.shape, generator=generator)  # (B, ...)
    x_t = path.add_noise(x0, eps, t)
    out = net(x_t, path.net_time(t).to(x0.device), y)
    target = path.target(prediction, x0, eps, t)
    per_sample = (out - target).square().flatten(1).mean(1)  # (B,)
    if min_snr_gamma is not None:
        per_sample = per_sample * min_snr_weight(path, prediction, t, min_snr_gamma).to(per_sample)
    return per_sample.mean()


def min_snr_weight(path, prediction, t, gamma):
    """Min-SNR-gamma (Hang et al. 2023, eq. 10): the x0-loss weight min(SNR, gamma), carried to the prediction's loss.

    || eps - eps_hat ||^2 = || x0 - x0_hat ||^2 SNR and || v - v_hat ||^2 = || x0 - x0_hat ||^2 (SNR + 1), hence
    min(SNR, gamma) / SNR for eps and min(SNR, gamma) / (SNR + 1) for v.
    """
    snr = path.log_snr(t).exp()  # alpha^2 / sigma^2, (B,)
    weight = snr.clamp(max=gamma)
    if prediction == "eps":
        return weight / snr
    if prediction == "v":
        return weight / (snr + 1)
    if prediction == "x0":
        return weight
    raise UnnoiseError(f"min-snr-gamma weights eps, x0 or v prediction, not {prediction}")


def edm_loss(net, path, x0, y, generator, eps=None, sigma=None):
    """EDM's loss (Karras et al. 2022, eq. 8 and Table 1): ln sigma ~ N(P_mean, P_std^2),
    weight (sigma^2 + sigma_data^2) / (sigma sigma_data)^2 on || D(x0 + sigma n; sigma) - x0 ||^2."""
    if sigma is None:
        sigma = path.sample_t(x0.shape[0], generator)  # (B,) log-normal
    noise = torch.randn(x0.shape, generator=generator) if eps is None else eps  # (B, ...)
    x = path.add_noise(x0, noise, sigma)
    out = net(path.net_input(x, sigma), path.net_time(sigma).to(x0.device), y)  # F(c_in x; c_noise)
    denoised, _ = path.to_x0_eps("edm", out, x, sigma)  # D = c_skip x + c_out F
    weight = (sigma**2 + path.sigma_data**2) / (sigma * path.sigma_data) ** 2
    return (weight.to(x0) * (denoised - x0).square().flatten(1).mean(1)).mean()
