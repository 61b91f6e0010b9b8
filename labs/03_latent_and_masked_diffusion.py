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
# # Lab 3: diffusion in a latent space, and diffusion on text
#
# Two ways the same idea scales. **Latent diffusion** (Rombach et al. 2022; Stable Diffusion, DiT, Flux) first
# trains an autoencoder that squeezes each image into a small grid of numbers, then runs diffusion there: fewer
# numbers per network call. **Masked diffusion** (MDLM, Sahoo et al. 2024) replaces Gaussian noise by a mask:
# the forward process hides characters, the model learns to fill them in, and generation unmasks everywhere at
# once instead of writing left to right.
#
# About 4 minutes on two CPU cores as written (MNIST at 28x28); `UNNOISE_LAB_QUICK=1` (what `make test` sets)
# uses the 8x8 digits and shorter runs.

# %%
import os

import matplotlib.pyplot as plt
import torch

import unnoise
from unnoise.families.autoencoder import latents, reconstruct, standardisation
from unnoise.families.text import decode
from unnoise.metrics import measure
from unnoise.pipeline import get_or_train

QUICK = os.environ.get("UNNOISE_LAB_QUICK") == "1"
DATA, SIZE = ("digits", None) if QUICK else ("mnist", 28)
AE_STEPS, LATENT_SECONDS, TEXT_SECONDS = (100, 10, 6) if QUICK else (300, 45, 30)

# %% [markdown]
# ## 1. The autoencoder
#
# unnoise's `ae` family is LDM's KL autoencoder at laptop size: two stride-2 convolutions take an image to a grid a
# quarter of its side, with 4 channels; the loss is the reconstruction error plus a tiny KL term that keeps the
# latent near a unit Gaussian.

# %%
ae_run = get_or_train(unnoise.TrainConfig(data=DATA, size=SIZE, family="ae", steps=AE_STEPS), f"lab3-ae-{DATA}",
                      progress=not QUICK)
ae = ae_run.net
x = unnoise.data.load(DATA, "heldout", size=SIZE).x[:8]  # (8, 1, H, W) in [0, 1]
z = latents(ae, x * 2 - 1)
print(f"an image: {tuple(x.shape[1:])} = {x[0].numel()} numbers; its latent: {tuple(z.shape[1:])} = {z[0].numel()}")
rebuilt = reconstruct(ae, x)
print(f"reconstruction error (RMSE in [0, 1] units): {(rebuilt - x).square().mean().sqrt():.3f}")
fig, axes = plt.subplots(2, 8, figsize=(10, 2.6))
for k in range(8):
    axes[0, k].imshow(x[k, 0], cmap="gray"), axes[1, k].imshow(rebuilt[k, 0], cmap="gray")
    axes[0, k].axis("off"), axes[1, k].axis("off")
axes[0, 0].set_title("held-out", loc="left"), axes[1, 0].set_title("decoded from its latent", loc="left")
plt.show()

# %% [markdown]
# **Your turn:** diffusion assumes data of about unit scale, and a latent is not. Stable Diffusion multiplies its
# latents by 0.18215; unnoise measures the number instead. Write `my_standardisation(ae, images)`: the mean and
# the standard deviation of the latents of `images` (in [0, 1]; the encoder takes them in [-1, 1]), over all
# values.


# %%
def my_standardisation(ae, images):
    """Your turn: (mean, std) of the latents of images, as two floats."""
    ...  # replace this line


# %% tags=["solution"] jupyter={"source_hidden": true}
def standardisation_solution(ae, images):
    z = latents(ae, images * 2 - 1)
    return float(z.mean()), float(z.std())


# %%
train = unnoise.data.load(DATA, "train", size=SIZE).x
reference = standardisation(ae, train * 2 - 1)
for name, fn in (("yours", my_standardisation), ("the solution", standardisation_solution)):
    got = fn(ae, train)
    print(f"{name}: {got}" if got is not None else f"{name}: not written yet")
print(f"unnoise's: {reference}")
assert all(abs(a - b) < 1e-5 for a, b in zip(standardisation_solution(ae, train), reference))

# %% [markdown]
# ## 2. Diffusion in the latent
#
# `--latent RUN` trains any continuous family on the autoencoder's latents (standardised as above) and decodes its
# samples, so sampling, guidance and evaluation work as on pixels. One network call now sees the latent's numbers,
# not the image's.

# %%
cfg = unnoise.TrainConfig(data=DATA, size=SIZE, latent=str(ae_run.folder), conditional=True)
run = get_or_train(cfg, f"lab3-latent-{DATA}", seconds=LATENT_SECONDS, progress=not QUICK)
images = run.sample(20, seed=0, label="each")  # decoded into [0, 1]
q = measure.image_quality(run, n=100 if QUICK else 500)
print(f"{run.step} steps in {LATENT_SECONDS} s; class accuracy {q['accuracy']:.3f}, FID {q['fid']:.2f} beside a floor "
      f"of {q['floor']:.2f} (n={q['n']})")
plt.figure(figsize=(10, 1.2))
plt.imshow(torch.cat(list(images[:10, 0]), 1), cmap="gray"), plt.axis("off"), plt.title("one sample per class")
plt.show()

# %% [markdown]
# ## 3. Masked diffusion on text
#
# On characters there is no Gaussian to add. MDLM's forward process hides each character independently with
# probability $t$ (the mask is the noise; at $t = 1$ everything is hidden), and the model learns
# $p(x_0 \mid x_t)$ at the hidden positions, weighted by $1/t$ (its ELBO).
#
# **Your turn:** write `my_mask(ids, t, generator)`: the ids with each position replaced by -1 (masked) with
# probability t. The check counts the masked share.


# %%
def my_mask(ids, t, generator):
    """Your turn: ids (N, L) with each position set to -1 with probability t."""
    ...  # replace this line


# %% tags=["solution"] jupyter={"source_hidden": true}
def mask_solution(ids, t, generator):
    return ids.masked_fill(torch.rand(ids.shape, generator=generator) < t, -1)


# %%
ids = torch.randint(0, 60, (200, 256))
for name, fn in (("yours", my_mask), ("the solution", mask_solution)):
    out = fn(ids, 0.3, torch.Generator().manual_seed(0))
    if out is None:
        print(f"{name}: not written yet")
        continue
    share = (out < 0).float().mean().item()
    kept = bool(((out == ids) | (out < 0)).all())
    print(f"{name}: masked share {share:.3f} (t = 0.3), unmasked positions unchanged: {kept}")
assert abs((mask_solution(ids, 0.3, torch.Generator().manual_seed(0)) < 0).float().mean() - 0.3) < 0.01

# %% [markdown]
# Now train it, beside left-to-right AR with the same transformer for the same seconds, on the King James Bible
# (public domain, shipped in a Python package). Held-out bits per character: exact for AR, an upper bound (the
# ELBO) for MDLM.

# %%
text_runs = {}
for family in ("ar", "mdlm"):
    cfg = unnoise.TrainConfig(data="kjv", family=family, context=64)
    text_runs[family] = get_or_train(cfg, f"lab3-{family}-{TEXT_SECONDS}s", seconds=TEXT_SECONDS, progress=not QUICK)
    bits = text_runs[family].family.report(text_runs[family], 0, 0)
    print(f"{family}: {text_runs[family].step} steps, held-out {bits['bits_per_char']:.3f} bits per character "
          f"({bits['bits_per_char_kind']})")

# %% [markdown]
# Watch MDLM write: every position starts masked (shown as ▒) and is unmasked over 16 steps, anywhere in the line.

# %%
mdlm, states = text_runs["mdlm"], []
final = mdlm.sample(1, seed=0, length=64, callback=lambda i, z: states.append(z[0].clone()),
                    **mdlm.family.sampler_options(nfe=16))[0]
for z in states[:: max(1, len(states) // 6)] + [final]:
    shown = decode(mdlm, z.clamp(min=0)).replace("\n", "¶")
    print("".join("▒" if int(i) < 0 else c for i, c in zip(z, shown)))
print("ar, left to right:", decode(text_runs["ar"], text_runs["ar"].sample(1, seed=0, length=64)[0]).replace("\n", "¶"))

# %% [markdown]
# That is the whole tranche in three labs: a Gaussian path and its reverse (lab 1), a network that learns the way
# back and a guide (lab 2), and the same machinery in a latent space and on text (here). `unnoise explain` draws
# all of it as one page from your own runs.
