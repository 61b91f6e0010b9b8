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
# # Lab 2: learn the way back (flow matching, score matching, guidance)
#
# Lab 1 ran the reverse process with a denoiser written down by hand. Real data has no such formula, so a network
# learns it. Here you train one by hand on the two moons twice, once by **flow matching** (regress the velocity
# $\varepsilon - x_0$ along straight paths) and once by **score matching** (regress the noise $\varepsilon$ on the
# VP cosine path), and measure both with the exact 2-Wasserstein distance beside its floor: the distance between
# two real draws of the same size. Then unnoise trains a class-conditional model of handwritten digits and you
# guide it (classifier-free guidance).
#
# About 4 minutes on two CPU cores as written; `UNNOISE_LAB_QUICK=1` (what `make test` sets) trains for less.

# %%
import os

import matplotlib.pyplot as plt
import torch
from torch import nn

import unnoise
from unnoise.guidance import guided
from unnoise.metrics import measure
from unnoise.metrics.points import w2, w2_floor
from unnoise.paths import make_path
from unnoise.pipeline import get_or_train
from unnoise.samplers import SAMPLERS
from unnoise.schedules import timesteps

QUICK = os.environ.get("UNNOISE_LAB_QUICK") == "1"
STEPS = 300 if QUICK else 3000  # training steps of each 2D model
torch.manual_seed(0)
train_x = unnoise.data.load("moons", "train").x.float()
held = unnoise.data.load("moons", "heldout", 1000).x.float()
floor = w2_floor("moons", held)
print(f"{len(train_x)} training points; W2 floor (two real draws of 1000): {floor:.3f}")


# %%
class Net(nn.Module):
    """(x, t) -> a 2D vector: x and t side by side through an MLP (unnoise's own MLP adds a time embedding)."""

    def __init__(self, width=128):
        super().__init__()
        self.layers = nn.Sequential(nn.Linear(3, width), nn.SiLU(), nn.Linear(width, width), nn.SiLU(),
                                    nn.Linear(width, width), nn.SiLU(), nn.Linear(width, 2))

    def forward(self, x, t):
        return self.layers(torch.cat([x, t.expand(len(x), 1) if t.dim() == 0 else t[:, None]], 1))


def fit(loss_fn, steps=STEPS, batch=512, lr=3e-3):
    """A fresh Net trained on the moons with loss_fn(net, x0, eps, t); the losses every step."""
    torch.manual_seed(0)
    net, losses = Net(), []
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    for _ in range(steps):
        x0 = train_x[torch.randint(len(train_x), (batch,))]
        loss = loss_fn(net, x0, torch.randn_like(x0), torch.rand(batch))
        opt.zero_grad(), loss.backward(), opt.step(), sched.step()
        losses.append(loss.item())
    return net, losses


# %% [markdown]
# ## 1. Your turn: the flow matching loss
#
# On the straight path $x_t = (1 - t)\, x_0 + t\, \varepsilon$ the velocity is $\frac{d x_t}{dt} = \varepsilon - x_0$.
# Flow matching (Lipman et al. 2023; Liu et al.'s rectified flow) regresses it: write
# `flow_loss(net, x0, eps, t)`, the mean squared error between `net(x_t, t)` and that velocity.


# %%
def flow_loss(net, x0, eps, t):
    """Your turn: the flow matching loss (a scalar)."""
    ...  # replace this line


# %% tags=["solution"] jupyter={"source_hidden": true}
def flow_loss_solution(net, x0, eps, t):
    xt = (1 - t[:, None]) * x0 + t[:, None] * eps
    return (net(xt, t) - (eps - x0)).square().mean()


# %%
loss_fn = flow_loss if flow_loss(Net(), train_x[:4], torch.randn(4, 2), torch.rand(4)) is not None else flow_loss_solution
print("training with", "your loss" if loss_fn is flow_loss else "the solution's loss")
flow_net, flow_losses = fit(loss_fn)


@torch.no_grad()
def euler(net, n=1000, steps=50, seed=1):
    """From noise at t = 1 to data at t = 0 along the learned velocity."""
    x = torch.randn(n, 2, generator=torch.Generator().manual_seed(seed))
    ts = torch.linspace(1, 0, steps + 1)
    for t, s in zip(ts[:-1], ts[1:]):
        x = x + (s - t) * net(x, t)
    return x


flow_samples = euler(flow_net)
flow_w2 = w2(flow_samples, held)
print(f"flow matching: W2 {flow_w2:.3f} = {flow_w2 / floor:.2f} x the floor")
assert flow_w2 < (4 if QUICK else 2) * floor

# %% [markdown]
# ## 2. Score matching, through unnoise's samplers
#
# On the VP cosine path, $x_t = \alpha_t x_0 + \sigma_t \varepsilon$, regress $\varepsilon$ instead (DDPM's loss;
# the score is $-\varepsilon / \sigma_t$). The network then gives the pair every unnoise sampler wants:
# $\hat\varepsilon$ = net, $\hat x_0 = (x_t - \sigma_t \hat\varepsilon) / \alpha_t$.

# %%
path = make_path("vp-cosine")


def eps_loss(net, x0, eps, t):
    t = t.clamp(1e-3, 0.999).double()
    a, s = path.alpha(t)[:, None].float(), path.sigma(t)[:, None].float()
    return (net(a * x0 + s * eps, t.float()) - eps).square().mean()


score_net, score_losses = fit(eps_loss)


@torch.no_grad()
def model(x, t):
    a, s = path.alpha(t), path.sigma(t)
    eps = score_net(x.float(), torch.as_tensor(t, dtype=torch.float32)).to(x.dtype)
    return ((x - s * eps) / a.clamp(min=1e-3)).clamp(-4, 4), eps


noise = torch.randn(1000, 2, generator=torch.Generator().manual_seed(1))
score_samples = SAMPLERS["ddim"](model, noise, timesteps(path, 50), path, None)
score_w2 = w2(score_samples, held)
print(f"score matching + DDIM: W2 {score_w2:.3f} = {score_w2 / floor:.2f} x the floor")

fig, axes = plt.subplots(1, 3, figsize=(13, 4))
axes[0].scatter(flow_samples[:, 0], flow_samples[:, 1], s=2), axes[0].set_title(f"flow matching, {flow_w2 / floor:.2f}x floor")
axes[1].scatter(score_samples[:, 0], score_samples[:, 1], s=2), axes[1].set_title(f"score matching, {score_w2 / floor:.2f}x floor")
axes[2].semilogy(flow_losses, label="flow"), axes[2].semilogy(score_losses, label="score"), axes[2].legend()
axes[2].set_title("training loss (not comparable between the two)")
plt.show()

# %% [markdown]
# ## 3. Classifier-free guidance on handwritten digits
#
# Now the real thing, trained by unnoise: a class-conditional U-Net on MNIST at 28x28 (on the 8x8 digits in quick
# mode), trained with the label dropped 10 % of the time, so one network is both conditional and unconditional.
# Guidance mixes the two: $\hat x_0 = \hat x_0^{u} + w\,(\hat x_0^{c} - \hat x_0^{u})$, the same for
# $\hat\varepsilon$; $w = 1$ is the conditional model, larger $w$ pushes towards the class.

# %%
data, seconds = ("digits", 15) if QUICK else ("mnist", 120)
cfg = unnoise.TrainConfig(data=data, size=28 if data == "mnist" else None, conditional=True)
run = get_or_train(cfg, f"lab2-{data}", seconds=seconds, progress=not QUICK)  # a second run of the cell reuses it
print(f"{run.folder}: {run.step} steps in {seconds} s")


# %% [markdown]
# **Your turn:** write the guided denoiser from the conditional and the unconditional ones. Each is a function
# `(x, t) -> (x0, eps)`; return one of the same kind. The check compares it with unnoise's own.


# %%
def my_guided(cond, uncond, w):
    """Your turn: the classifier-free guided denoiser."""
    ...  # replace this line


# %% tags=["solution"] jupyter={"source_hidden": true}
def guided_solution(cond, uncond, w):
    def denoise(x, t):
        x0_c, eps_c = cond(x, t)
        x0_u, eps_u = uncond(x, t)
        return x0_u + w * (x0_c - x0_u), eps_u + w * (eps_c - eps_u)

    return denoise


# %%
x = torch.randn(10, *run.shape)
t, y = torch.tensor(0.5, dtype=torch.float64), torch.arange(10)
reference = guided(run.model(y), run.model(), 3.0)(x, t)
for name, make in (("yours", my_guided), ("the solution", guided_solution)):
    mine = make(run.model(y), run.model(), 3.0)
    if mine is None:
        print(f"{name}: not written yet")
        continue
    gap = max((a - b).abs().max().item() for a, b in zip(mine(x, t), reference))
    print(f"{name}: largest difference from unnoise's {gap:.1e}")
assert max((a - b).abs().max().item() for a, b in zip(guided_solution(run.model(y), run.model(), 3.0)(x, t), reference)) < 1e-6

# %% [markdown]
# Guidance buys class fidelity and costs diversity. Measure it: the judge classifier's accuracy on the samples, and
# FID beside its floor (held-out real digits scored the same way), at each w.

# %%
weights, n = (0.0, 1.0, 3.0), (100 if QUICK else 300)
fig, axes = plt.subplots(1, len(weights), figsize=(4 * len(weights), 2.2))
for ax, w in zip(axes, weights):
    q = measure.image_quality(run, n=n, guidance=w)
    images = run.sample(10, seed=0, label="each", guidance=w)
    ax.imshow(torch.cat(list(images[:, 0]), 1), cmap="gray"), ax.axis("off")
    ax.set_title(f"w = {w}: accuracy {q['accuracy']:.2f}, FID {q['ratio']:.1f}x floor")
    print(f"w = {w}: class accuracy {q['accuracy']:.3f}, FID {q['fid']:.2f} beside a floor of {q['floor']:.2f} (n={q['n']})")
plt.show()

# %% [markdown]
# Next: lab 3 moves the same diffusion into the small latent space of an autoencoder, and onto text, where the
# noise is a mask.
