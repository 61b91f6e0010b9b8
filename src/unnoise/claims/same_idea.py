"""Claim "one-idea": diffusion and flow matching are one idea (Gao et al. 2024, "Diffusion meets flow matching").

One trained flow-matching network u(z, t) on the path z_t = (1 - t) x + t eps is also a denoiser:
x_hat = z - t u, eps_hat = z + (1 - t) u, score = -eps_hat / t. So it can be sampled as a flow (Euler on
u), as DDIM, as DDPM's reverse SDE and by higher-order ODE solvers. DDIM on this path *is* the flow's
Euler step: z_s = (1 - s) x_hat + s eps_hat = z_t + (s - t) u. (The losses agree too, by algebra alone:
eps_hat - eps = (1 - t)(u_hat - u), so the velocity loss is the epsilon loss weighted by 1 / (1 - t)^2.)
"""

import torch

from .. import data
from ..errors import UnnoiseError
from ..metrics import points as point_metrics
from ..samplers import PerSampleNoise, sample_ddim, timesteps

NAME = "one-idea"
TITLE = "Diffusion and flow matching are one idea"
ROLES = ("points-flow",)
QUICK_SECONDS = 5  # with --quick on 2 cores (docs/claims.md, Time)
SAMPLERS = ("euler", "ddim", "heun", "dpmpp_2m", "ddpm", "euler_ancestral")


def flow_euler(run, n, steps, seed=0, dtype=torch.float32):
    """The flow's own sampler, written out: z <- z + (s - t) u_hat(z, t), u_hat = eps_hat - x_hat."""
    ts = timesteps(run.path, steps)
    model = run.model(clip=False)
    z = run.initial(PerSampleNoise.for_range(seed, 0, n)).to(dtype)
    for t, s in zip(ts[:-1], ts[1:]):
        x0, eps = model(z, t)
        z = z + float(s - t) * (eps - x0)
    return z


def ddim(run, n, steps, seed=0, dtype=torch.float32):
    """DDIM (eta = 0) through the library's sampler, from the same noise."""
    ts = timesteps(run.path, steps)
    noise = PerSampleNoise.for_range(seed, 0, n)
    return sample_ddim(run.model(clip=False), run.initial(noise).to(dtype), ts, run.path, noise)


def measure(runs, quick=False):
    run = runs["points-flow"]
    if run.cfg.schedule != "rectified":
        raise UnnoiseError(
            f"claim {NAME} needs a flow on the straight path (--schedule rectified); "
            f"{run.folder} uses {run.cfg.schedule}"
        )
    n = 500 if quick else 2000
    nfes = (8, 32) if quick else (4, 8, 32, 128)
    gaps = {steps: float((flow_euler(run, n, steps) - ddim(run, n, steps)).abs().max()) for steps in (8, 32)}
    held = data.load(run.cfg.data, "heldout", n).x
    floor = point_metrics.w2_floor(run.cfg.data, held)
    table = {
        name: [point_metrics.w2(run.sample(n, name, nfe, seed=1), held) / floor for nfe in nfes] for name in SAMPLERS
    }
    return {"n": n, "nfe": list(nfes), "ddim_vs_euler": gaps, "floor": floor, "w2_ratio": table, "run": str(run.folder)}


def figure(result, path):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4))
    for name, ratios in result["w2_ratio"].items():
        ax.plot(result["nfe"], ratios, "o-", label=name)
    ax.axhline(1, color="grey", ls="--", label="real-vs-real floor")
    ax.set(
        xscale="log",
        yscale="log",
        xlabel="network evaluations per sample",
        ylabel="W2 / floor",
        title="one flow-matching network, sampled every way",
    )
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def row(result):
    gap = max(result["ddim_vs_euler"].values())
    last = {name: ratios[-1] for name, ratios in result["w2_ratio"].items()}
    lo, hi = min(last.values()), max(last.values())
    same, near = gap < 1e-4, hi < 2.0
    verdict = "True. " if same and near else "Half true. " if same else "Not shown here. "
    verdict += (
        f"DDIM and the flow's Euler step are one computation (equal to {gap:.0e}); "
        if same
        else f"DDIM and the flow's Euler step differ by {gap:.1e}, more than float error; "
    )
    verdict += (
        f"stochastic and deterministic samplers of the same network all land within {hi:.1f}x the W2 floor "
        "given enough steps: the model is shared, only the path's schedule and the sampler differ."
        if near
        else f"but at {result['nfe'][-1]} NFE the samplers still spread from {lo:.1f}x to {hi:.1f}x the floor "
        "(the network is too rough for them to agree)."
    )
    return {
        "claim": TITLE,
        "experiment": f"one flow network on {result['n']} moons draws, sampled by {', '.join(result['w2_ratio'])}",
        "ours": f"DDIM and flow Euler differ by at most {gap:.1e}; at {result['nfe'][-1]} NFE every sampler is at "
        f"{lo:.2f}-{hi:.2f} x the W2 floor",
        "reference": "Gao et al. 2024: DDIM is flow matching's Euler sampler; the losses differ only by a weight",
        "verdict": verdict,
    }
