"""A Gaussian data set N(mu, diag(std^2)) whose optimal denoiser is known in closed form."""

import torch

MU = torch.tensor([1.0, -0.5], dtype=torch.float64)
STD = torch.tensor([0.5, 1.5], dtype=torch.float64)


def exact_model(path):
    """model(x, t) -> (E[x0 | x_t], E[eps | x_t]) for x0 ~ N(MU, diag(STD^2))."""

    def model(x, t):
        a, s = path.alpha(t), path.sigma(t)
        gain = a * STD**2 / (a**2 * STD**2 + s**2)  # per coordinate
        x0 = MU + gain * (x.double() - a * MU)
        eps = (x.double() - a * x0) / s
        return x0.to(x.dtype), eps.to(x.dtype)

    return model
