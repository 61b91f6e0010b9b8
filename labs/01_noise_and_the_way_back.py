# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Lab 1: noise, and the way back
#
# The first lab of three (they follow the arc of MIT 6.S184, *Generative AI with stochastic differential
# equations*: simulate, then learn, then scale). Here nothing is learned yet. We take data whose denoiser we know
# exactly, a Gaussian, and check that noise really becomes data when we run the reverse process: once as an ODE
# (DDIM, the probability-flow ODE), once as an SDE (DDPM). Then you write the ODE solver yourself.
#
# Every cell runs in well under a minute on two CPU cores. `UNNOISE_LAB_QUICK=1` (what `make test` sets) makes the
# draws smaller. A **Your turn** cell leaves something for you to write; its solution is the cell after it,
# folded: click it to open it.

# %%
import os

import matplotlib.pyplot as plt
import torch

import unnoise
from unnoise.paths import make_path
from unnoise.samplers import SAMPLERS, PerSampleNoise
from unnoise.schedules import timesteps

QUICK = os.environ.get("UNNOISE_LAB_QUICK") == "1"
N = 2000 if QUICK else 20000  # samples behind each check
torch.manual_seed(0)

# %% [markdown]
# ## 1. The forward process
#
# A Gaussian path mixes clean data $x_0$ with noise $\varepsilon \sim N(0, I)$:
# $x_t = \alpha_t x_0 + \sigma_t \varepsilon$. On the VP cosine path $\alpha_t = \cos(\pi t / 2)$ and
# $\sigma_t = \sin(\pi t / 2)$, so $\alpha_t^2 + \sigma_t^2 = 1$ all the way. Here are the two moons at four times.

# %%
path = make_path("vp-cosine")
moons = unnoise.data.load("moons", "train", 1000).x
eps = torch.randn_like(moons)
fig, axes = plt.subplots(1, 4, figsize=(12, 3))
for ax, t in zip(axes, (0.0, 0.3, 0.6, 0.9)):
    t = torch.tensor(t, dtype=torch.float64)
    xt = path.alpha(t) * moons + path.sigma(t) * eps
    ax.scatter(xt[:, 0], xt[:, 1], s=2)
    ax.set_title(f"t = {float(t):.1f}: alpha {float(path.alpha(t)):.2f}, sigma {float(path.sigma(t)):.2f}")
    ax.set_xlim(-4, 4), ax.set_ylim(-4, 4)
plt.show()

# %% [markdown]
# If $x_0 \sim N(\mu, s^2)$ then $x_t \sim N(\alpha_t \mu, \alpha_t^2 s^2 + \sigma_t^2)$: a closed form to check
# the simulation against.

# %%
MU, S = torch.tensor([1.0, -0.5], dtype=torch.float64), torch.tensor([0.5, 1.5], dtype=torch.float64)
x0 = MU + S * torch.randn(N, 2, dtype=torch.float64)
t = torch.tensor(0.4, dtype=torch.float64)
xt = path.alpha(t) * x0 + path.sigma(t) * torch.randn_like(x0)
mean, std = path.alpha(t) * MU, (path.alpha(t) ** 2 * S**2 + path.sigma(t) ** 2).sqrt()
print("simulated mean", xt.mean(0).numpy(), "closed form", mean.numpy())
print("simulated std ", xt.std(0).numpy(), "closed form", std.numpy())
assert torch.allclose(xt.mean(0), mean, atol=0.05) and torch.allclose(xt.std(0), std, rtol=0.05)

# %% [markdown]
# ## 2. The exact denoiser, and the way back
#
# For Gaussian data the best guess of $x_0$ from $x_t$ is linear:
# $E[x_0 \mid x_t] = \mu + \frac{\alpha_t s^2}{\alpha_t^2 s^2 + \sigma_t^2} (x_t - \alpha_t \mu)$, and
# $E[\varepsilon \mid x_t] = (x_t - \alpha_t E[x_0 \mid x_t]) / \sigma_t$. A trained network learns to
# approximate exactly this pair. Every sampler in unnoise takes it in one signature,
# `sampler(model, x, ts, path, noise)` with `model(x, t) -> (x0, eps)` (k-diffusion's convention).


# %%
def exact_model(x, t):
    a, s = path.alpha(t), path.sigma(t)
    x0 = MU + a * S**2 / (a**2 * S**2 + s**2) * (x - a * MU)
    return x0, (x - a * x0) / s


noise = PerSampleNoise.for_range(0, 0, N)
start = noise.initial((2,), dtype=torch.float64)  # x at t = 1 is pure noise on this path
results = {}
for name, nfe in (("ddim", 50), ("ddpm", 200)):
    ts = timesteps(path, nfe)
    results[name] = SAMPLERS[name](exact_model, start, ts, path, PerSampleNoise.for_range(0, 0, N))
    print(f"{name} ({nfe} steps): mean {results[name].mean(0).numpy()}, std {results[name].std(0).numpy()}")
    assert torch.allclose(results[name].mean(0), MU, atol=0.06) and torch.allclose(results[name].std(0), S, rtol=0.06)

# %% [markdown]
# Both land on $N(\mu, s^2)$: the ODE (DDIM) moves each noise draw deterministically, the SDE (DDPM) adds fresh
# noise at every step and still reaches the same distribution. Their paths differ:

# %%
keep = []
SAMPLERS["ddim"](exact_model, start[:20], timesteps(path, 50), path, None, callback=lambda i, t, x, x0: keep.append(x))
ode = torch.stack(keep)
keep = []
SAMPLERS["ddpm"](exact_model, start[:20], timesteps(path, 200), path, PerSampleNoise.for_range(0, 0, 20),
                 callback=lambda i, t, x, x0: keep.append(x))
sde = torch.stack(keep)
fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharex=True, sharey=True)
for ax, paths, name in ((axes[0], ode, "ODE (DDIM), 50 steps"), (axes[1], sde, "SDE (DDPM), 200 steps")):
    ax.plot(paths[:, :, 0], paths[:, :, 1], lw=0.8)
    ax.scatter(paths[-1, :, 0], paths[-1, :, 1], s=8, c="k")
    ax.set_title(name)
plt.show()

# %% [markdown]
# ## 3. Your turn: the ODE solver
#
# DDIM's step from time $t$ to the earlier time $s$ keeps the noise it has and re-mixes it:
# $x_s = \alpha_s \hat x_0 + \sigma_s \hat\varepsilon$, where $(\hat x_0, \hat\varepsilon) = $ `model(x, t)`.
# Write `my_ddim(model, x, ts)` that walks the grid `ts` (from noisy to clean) this way. The check below compares
# it with unnoise's sampler on the same start.


# %%
def my_ddim(model, x, ts):
    """Your turn: x at ts[0] -> x at ts[-1], one DDIM step per pair of times."""
    ...  # replace this line


# %% tags=["solution"] jupyter={"source_hidden": true}
def ddim_solution(model, x, ts):
    for t, s in zip(ts[:-1], ts[1:]):
        x0, eps = model(x, t)
        x = path.alpha(s) * x0 + path.sigma(s) * eps
    return x


# %%
ts = timesteps(path, 30)
reference = SAMPLERS["ddim"](exact_model, start, ts, path, None)
for name, solver in (("yours", my_ddim), ("the solution", ddim_solution)):
    out = solver(exact_model, start, ts)
    if out is None:
        print(f"{name}: not written yet")
        continue
    gap = (out - reference).abs().max().item()
    print(f"{name}: largest difference from unnoise's ddim {gap:.2e}", "(the same)" if gap < 1e-6 else "(differs)")
assert (ddim_solution(exact_model, start, ts) - reference).abs().max() < 1e-6

# %% [markdown]
# ## 4. Why few steps are hard
#
# With the exact denoiser the only error left is the solver's. Count it: the Euler solver's error in the spread
# against the number of steps, on the VP cosine path and on the rectified path of flow matching
# ($\alpha_t = 1 - t$, $\sigma_t = t$). One step sends every draw to $\mu$ on both: at $t = 1$ the best guess of
# $x_0$ is the mean. Which path needs fewer steps for the same error?

# %%
steps = (1, 2, 4, 8, 16, 32)
for name in ("vp-cosine", "rectified"):
    p = make_path(name)

    def model(x, t, p=p):
        a, s = p.alpha(t), p.sigma(t)
        x0 = MU + a * S**2 / (a**2 * S**2 + s**2) * (x - a * MU)
        return x0, (x - a * x0) / s

    errors = [(SAMPLERS["euler"](model, start * p.sigma(p.t_max), timesteps(p, k), p, None).std(0) - S).abs().max()
              for k in steps]
    plt.loglog(steps, [float(e) + 1e-12 for e in errors], "o-", label=name)
plt.xlabel("Euler steps"), plt.ylabel("error in the spread"), plt.legend()
plt.show()

# %% [markdown]
# Next: lab 2 learns the denoiser instead of writing it down, by flow matching and by score matching, and then
# guides it.
