"""What the image figures (images.py) and the generation-order figures (order.py) share: the deterministic sampler
the figures use, the trace of one denoising, and one image drawn on a matplotlib axis."""

import torch

from ..samplers import PerSampleNoise


def figure_sampler(run):
    """The deterministic sampler the figures use (the family's: DDIM for diffusion, Euler on the other paths)."""
    return run.family.figure_sampler(run)


def denoising_trace(run, nfe=20, label=None, seed=0, n=4):
    """[(x_t, x0 estimate, t)] before each step of one deterministic sampling of n images, all in [0, 1]."""
    trace, state = [], [run.to_data(run.initial(PerSampleNoise.for_range(seed, 0, n)))]  # x_T, as sample() draws it

    def record(i, t, x, x0):  # x is the state after step i; state[-1] the one it started from
        trace.append((state[-1], run.to_data(x0), float(t)))
        state.append(run.to_data(x))

    run.sample(n, figure_sampler(run), nfe, seed, label=label, callback=record)
    return trace


def show(ax, image):
    """Draw one (C, H, W) image in [0, 1] with square pixels and no axes."""
    image = torch.as_tensor(image).detach().float().cpu().clamp(0, 1)
    if image.shape[0] == 1:
        ax.imshow(image[0].numpy(), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    else:
        ax.imshow(image.permute(1, 2, 0).numpy(), interpolation="nearest")
    ax.set_xticks([]), ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)
