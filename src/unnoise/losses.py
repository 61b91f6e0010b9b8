"""Training losses over the path core."""

import torch


def denoising_loss(net, path, prediction, x0, y, generator, eps=None):
    """E_{t, eps} || net(x_t, t) - target ||^2 (Ho et al. 2020 eq. 14; Lipman et al. 2022 eq. 9 for velocity).

    The target is whatever `prediction` names (eps, x0, v or velocity), so one loss serves every family.
    eps: noise already paired with x0 (see coupling.py); drawn here when None.
    """
    t = path.sample_t(x0.shape[0], generator)                           # (B,)
    if eps is None:
        eps = torch.randn(x0.shape, generator=generator)                 # (B, ...)
    x_t = path.add_noise(x0, eps, t)
    out = net(x_t, path.net_time(t), y)
    target = path.target(prediction, x0, eps, t)
    return (out - target).square().flatten(1).mean(1).mean()
