"""Pictures of image models: sample grids (one row per class), guidance grids, denoising strips and GIFs.

Every function takes images in data units, (N, C, H, W) in [0, 1], and returns a matplotlib figure;
save(fig, path) writes it atomically. Pixels are drawn as squares (no smoothing), gray or RGB.
"""

import io

import matplotlib

matplotlib.use("Agg")
from pathlib import Path

import matplotlib.pyplot as plt
import torch
from PIL import Image

from ..checkpoint import atomic_write
from .figures2d import save
from .frames import denoising_trace, figure_sampler, show
from .order import write_order


def tile(images, ncol, pad=1, fill=1.0):
    """(N, C, H, W) -> one (C, rows * (H + pad) - pad, ncol * (W + pad) - pad) image, row by row."""
    images = torch.as_tensor(images).detach().float().cpu().clamp(0, 1)
    N, C, H, W = images.shape
    rows = -(-N // ncol)
    out = torch.full((C, rows * (H + pad) - pad, ncol * (W + pad) - pad), fill)
    for i, image in enumerate(images):
        r, c = divmod(i, ncol)
        out[:, r * (H + pad) : r * (H + pad) + H, c * (W + pad) : c * (W + pad) + W] = image
    return out


def labelled_grid(rows, row_labels=None, col_labels=None, title=None, cell=0.6):
    """A grid of images, rows[i] (K, C, H, W) on row i, with a label left of each row and above each column."""
    nrows, ncols = len(rows), max(len(r) for r in rows)
    top = (0.35 if title else 0.05) + (0.25 if col_labels is not None else 0)  # inches above the grid
    width, height = cell * ncols + 0.9, cell * nrows + top + 0.05
    fig, axes = plt.subplots(nrows, ncols, figsize=(width, height), squeeze=False)
    for i, row in enumerate(rows):
        for j in range(ncols):
            ax = axes[i][j]
            if j < len(row):
                show(ax, row[j])
            else:
                ax.axis("off")
            if j == 0 and row_labels is not None:
                ax.set_ylabel(str(row_labels[i]), rotation=0, ha="right", va="center", fontsize=8)
            if i == 0 and col_labels is not None:
                ax.set_title(str(col_labels[j]), fontsize=8)
    if title:
        fig.suptitle(title, fontsize=9, y=1 - 0.08 / height, va="top")
    fig.subplots_adjust(
        left=0.9 / width, right=0.99, bottom=0.05 / height, top=1 - top / height, wspace=0.05, hspace=0.05
    )
    return fig


def sample_grid(images, labels=None, class_names=None, per_row=10, title=None):
    """Samples with one row per class (labels (N,)), or in rows of per_row when there are no labels."""
    images = torch.as_tensor(images)
    if labels is None:
        rows = [images[i : i + per_row] for i in range(0, len(images), per_row)]
        return labelled_grid(rows, title=title)
    labels = torch.as_tensor(labels)
    classes = torch.unique(labels).tolist()
    rows = [images[labels == c][:per_row] for c in classes]
    names = [class_names[c] if class_names else c for c in classes]
    return labelled_grid(rows, row_labels=names, title=title)


def guidance_grid(images, scales, title="same noise, rising guidance scale w"):
    """images (S, K, C, H, W) or a list of S (K, C, H, W): row s holds the K samples drawn at guidance scale scales[s]."""
    return labelled_grid(list(images), row_labels=[f"w={w:g}" for w in scales], title=title)


def denoising_strip(xts, x0s, ts, title=None):
    """x_t (top row) and the model's estimate of x0 (bottom row) at each step; each entry (C, H, W) or (B, C, H, W)."""
    top, bottom = [_cell(x) for x in xts], [_cell(x) for x in x0s]
    cols = [f"t={float(t):.2f}" for t in ts]
    return labelled_grid(
        [torch.stack(top), torch.stack(bottom)],
        row_labels=["x_t", "x0 estimate"],
        col_labels=cols,
        title=title,
        cell=1.1,
    )


def _cell(x):
    """One image for a strip cell: a (C, H, W) image as is, a batch tiled in a near-square block."""
    x = torch.as_tensor(x).detach().float().cpu()
    if x.dim() == 3:
        return x
    return tile(x, ncol=int(max(1, round(len(x) ** 0.5))))


def denoising_gif(xts, x0s, ts, out, ms=120):
    """An atomic GIF of the denoising: each frame x_t | x0 estimate side by side, the last frame held longer."""
    frames = []
    for xt, x0, t in zip(xts, x0s, ts):
        pair = tile(torch.stack([_cell(xt), _cell(x0)]), ncol=2, pad=2)  # (C, h, 2 w + 2)
        fig, ax = plt.subplots(figsize=(4, 2.3))
        show(ax, pair)
        ax.set_title(f"x_t  |  x0 estimate    t={float(t):.2f}", fontsize=9)
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=80, bbox_inches="tight")
        plt.close(fig)
        buffer.seek(0)
        frames.append(Image.open(buffer).convert("RGB"))
    frames = [f.resize(frames[0].size) for f in frames]
    frames = [f.convert("P", palette=Image.Palette.ADAPTIVE) for f in frames]
    durations = [ms] * (len(frames) - 1) + [1500]
    atomic_write(
        out,
        lambda tmp: frames[0].save(
            tmp, format="GIF", save_all=True, append_images=frames[1:], duration=durations, loop=0
        ),
    )


def save_image(images, out, ncol=10, upscale=4):
    """Write images (N, C, H, W) as one plain PNG grid, each pixel upscale x upscale, atomically."""
    grid = (tile(images, ncol) * 255).round().byte()  # (C, h, w)
    array = grid.permute(1, 2, 0).squeeze(-1).numpy() if grid.shape[0] == 1 else grid.permute(1, 2, 0).numpy()
    image = Image.fromarray(array)
    image = image.resize((image.width * upscale, image.height * upscale), Image.Resampling.NEAREST)
    atomic_write(out, lambda tmp: image.save(tmp, format="PNG"))


CAPTIONS = {
    "samples.png": "Generated images, one row per class for a class-conditional run.",
    "guidance.png": "The same starting noise at rising guidance scale w: w=0 ignores the class, w=1 is the "
    "conditional model, larger w makes each digit more typical and less varied.",
    "denoising.png": "Top: the noisy image x_t at a few steps; bottom: the model's guess of the clean image at "
    "that moment. The digit is already decided in the guess long before the noise is gone.",
    "denoising.gif": "The same, one frame per network evaluation.",
    "order.png": "How one image is built, at evenly spaced shares of its generation: raster AR token by token "
    "(cells not generated yet are gray), VAR scale by scale (the image decoded from the scales so "
    "far), diffusion and flow by the x0 estimate sharpening.",
    "order.gif": "The same as an animation, one frame per token, scale or network evaluation.",
    "reconstruction.png": "Held-out images (top) and the tokenizer's decoding of them from the first scales only, "
    "one row per prefix of scales: coarse layout first, detail last.",
}


def write_reconstruction(run, out, n=10):
    """reconstruction.png for a tokenizer (vq) or autoencoder (ae) run: held-out images and their decodings."""
    rows, labels, title = run.family.reconstructions(run, run.dataset.x[:n])  # (n, C, H, W) in [0, 1] each
    save(labelled_grid(rows, row_labels=labels, title=title), Path(out) / "reconstruction.png")
    return ["reconstruction.png"]


def figure_draws(run, nfe, seed):
    """(draw(n, label, w), how it samples, what the guidance rows share) for an image run's figures: a token
    run's own sampler, one pass per token or scale, or the continuous families' figure sampler at nfe."""
    if run.family.figure_sampler(run) is None:  # it samples its own way

        def draw(n, label, w=1.0):
            return run.sample(n, seed=seed, label=label, guidance=w)

        levels = run.family.lengths(run)
        return draw, f"{sum(levels)} tokens in {len(levels)} steps", "same random draws"
    sampler = figure_sampler(run)

    def draw(n, label, w=1.0):
        return run.sample(n, sampler, nfe, seed, label=label, guidance=w)

    return draw, f"{sampler}, {nfe} NFE", "same noise"


def write_denoising(run, out, nfe, label=None, seed=0):
    """denoising.png (x_t and the x0 estimate at 8 of the steps) and denoising.gif (every step)."""
    frames = denoising_trace(run, nfe, label=label, seed=seed)
    pick = sorted(set(round(k * (len(frames) - 1) / 7) for k in range(8)))
    xts, x0s, ts = zip(*[frames[k] for k in pick])
    title = f"{figure_sampler(run)}, {nfe} steps: x_t and the x0 estimate"
    save(denoising_strip(xts, x0s, ts, title=title), Path(out) / "denoising.png")
    xts, x0s, ts = zip(*frames)
    denoising_gif(xts, x0s, ts, Path(out) / "denoising.gif")
    return ["denoising.png", "denoising.gif"]


def write_generation(run, out, nfe, label=None, seed=0):
    """How the run builds one image: its generation order for a token run, its denoising otherwise."""
    if run.family.order != "denoising":
        return write_order([run], out, label=label, seed=seed)
    return write_denoising(run, out, nfe, label, seed)


def write_all(run, out, nfe=20, seed=0):
    """samples.png, guidance.png (conditional runs), denoising.png and denoising.gif for an image run.

    Token runs (ar, var) write order.png and order.gif instead of the denoising figures; a tokenizer
    (vq) writes reconstruction.png only. nfe is the continuous families' figure sampler budget.
    """
    from ..guidance import EACH

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if not run.family.generates:  # a tokenizer samples nothing
        return write_reconstruction(run, out)
    conditional = run.cfg.conditional
    draw, how, same = figure_draws(run, nfe, seed)
    n = 10 * run.num_classes if conditional else 100
    images = draw(n, EACH if conditional else None)
    labels = torch.arange(n) % run.num_classes if conditional else None
    save(sample_grid(images, labels, title=f"{run.cfg.family}, {how}"), out / "samples.png")
    written = ["samples.png"]
    if conditional:
        scales = (0.0, 1.0, 2.0, 4.0)
        rows = [draw(run.num_classes, EACH, w) for w in scales]
        save(guidance_grid(rows, scales, title=f"{same}, rising guidance scale w"), out / "guidance.png")
        written.append("guidance.png")
    return written + write_generation(run, out, nfe, label=0 if conditional else None, seed=seed)
