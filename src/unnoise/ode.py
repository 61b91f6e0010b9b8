"""The probability-flow ODE of a trained run as a velocity field, and solving it (torchdiffeq).

For any continuous Gaussian path, dx/dt = alpha'(t) x0_hat + sigma'(t) eps_hat (the path's `velocity`),
whatever the network predicts. The fixed-step samplers live in samplers.py; this module only
provides the field itself and an adaptive solve (dopri5), which reflow and the likelihood need.
"""

import torch
from torchdiffeq import odeint

from .errors import UnnoiseError


def velocity_field(run, y=None):
    """(x, t) -> dx/dt in model units, differentiable in x (no torch.no_grad), float64 out."""
    if run.path.discrete:
        raise UnnoiseError(
            f"{run.folder} uses the discrete {run.path.name!r} schedule; the probability-flow ODE "
            "needs a continuous-time model (flow, or diffusion on vp-cosine)"
        )
    path, prediction = run.path, run.cfg.prediction

    def velocity(x, t):
        t = torch.as_tensor(t, dtype=torch.float64).reshape(())
        t_batch = t.expand(x.shape[0])
        inp = path.net_input(x, t_batch) if hasattr(path, "net_input") else x  # EDM's c_in, where a path has one
        inp = inp.float().reshape((x.shape[0],) + run.shape)  # images: the net sees (B, C, H, W)
        out = run.net(inp, path.net_time(t_batch), y).double().reshape(x.shape)  # (B, D)
        x0, eps = path.to_x0_eps(prediction, out, x.double(), t)
        return path.velocity(x0, eps, t)

    return velocity


def solve(velocity, x, ts, method="dopri5", rtol=1e-5, atol=1e-5):
    """Integrate dx/dt = velocity(x, t) through the times ts; returns x at every t, (len(ts), B, D) float64."""
    ts = torch.as_tensor(ts, dtype=torch.float64)
    with torch.no_grad():
        return odeint(lambda t, z: velocity(z, t), x.double(), ts, method=method, rtol=rtol, atol=atol)


def euler(velocity, x, ts):
    """Euler steps x <- x + (s - t) v(x, t) over ts; returns x at every t, (len(ts), B, D). On the rectified
    path this is exactly DDIM with eta = 0."""
    xs = [x.double()]
    with torch.no_grad():
        for t, s in zip(ts[:-1], ts[1:]):
            xs.append(xs[-1] + (s - t) * velocity(xs[-1], t))
    return torch.stack(xs)
