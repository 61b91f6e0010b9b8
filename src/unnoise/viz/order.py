"""Generation order you can see: how each family builds one image, frame by frame.

order_frames(run, label) follows one sample: raster AR one frame per token (values not drawn yet are
gray), VAR one per scale (the image decoded from the scales so far), diffusion / flow / edm the x0
estimate before each step of a 20-NFE deterministic sampler. write_order sets runs side by side on a
shared progress axis, each at the same share of its own generation: order.gif and a still order.png.
"""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import torch
from matplotlib import font_manager
from PIL import Image, ImageDraw, ImageFont

from ..checkpoint import atomic_write
from ..errors import UnnoiseError
from .figures2d import save
from .frames import denoising_trace, show

FILL = 0.5  # the value drawn for cells not generated yet
MAX_FRAMES = 64  # raster AR: at most this many frames (evenly spaced tokens)
NFE = 20  # diffusion / flow: network evaluations of the figure sampler
PANEL = 128  # GIF: pixels per panel side (nearest-neighbour upscaling)
HOLD_MS = 1000  # GIF: the last frame is held this long
COLUMNS = 8  # PNG: columns at evenly spaced progress


def pick(n, cap):
    """Indices of at most cap of n frames, evenly spaced, always the first and the last."""
    if cap is None or n <= cap:
        return list(range(n))
    return sorted({round(i * (n - 1) / (cap - 1)) for i in range(cap)}) if cap > 1 else [n - 1]


def sampled_ids(run, label, seed):
    """The token ids (L,) of sample 0 for seed (as run.sample(n, seed) draws it), from the sampler's callback."""
    seen = []
    run.sample(1, seed=seed, label=label, callback=lambda level, ids: seen.append(ids[0].clone()))
    return seen[-1]


def known(run, k):
    """(C, H, W) bool: the pixels fixed by the first k raster tokens (pixel values, or VQ latent cells)."""
    C, S = run.cfg.channels, run.cfg.size
    if run.cfg.tokens is None:  # raster order is (row, column, channel)
        return (torch.arange(S * S * C) < k).view(S, S, C).permute(2, 0, 1)
    side = run.net.tokenizer.side
    cells = (torch.arange(side * side) < k).view(side, side)
    up = S // side
    return cells.repeat_interleave(up, 0).repeat_interleave(up, 1).expand(C, S, S)


def raster_frames(run, label, seed, cap):
    """Raster AR: after token k, the image decoded with later tokens set to 0, their cells then drawn gray."""
    ids = sampled_ids(run, label, seed)  # over VQ tokens the decoder sees those 0 codes near the frontier
    L = len(ids)
    keep = pick(L, cap or MAX_FRAMES)
    padded = torch.stack([torch.where(torch.arange(L) <= i, ids, 0) for i in keep])  # (F, L)
    decoded = run.to_data(run.family.decode(run, padded))  # (F, C, H, W)
    frames = [torch.where(known(run, i + 1), image, FILL) for i, image in zip(keep, decoded)]
    return frames, [f"token {i + 1}/{L}" for i in keep]


def scale_frames(run, label, seed, cap):
    """VAR: the image decoded from scales 1..k, after each scale k."""
    tok = run.net.tokenizer
    prefixes = tok.decode_prefixes(sampled_ids(run, label, seed)[None])  # K of (1, C, H, W)
    K = len(prefixes)
    keep = pick(K, cap)
    return (
        [run.to_data(prefixes[k])[0] for k in keep],
        [f"scale {k + 1}/{K} ({tok.scales[k]}x{tok.scales[k]})" for k in keep],
    )


def denoising_frames(run, label, seed, cap):
    """Diffusion / flow / edm: the x0 estimate before each step of the deterministic figure sampler."""
    trace = denoising_trace(run, NFE, label, seed, n=1)
    keep = pick(len(trace), cap)
    form = "{:.0f}" if run.path.discrete else "{:.2f}"
    return ([trace[i][1][0] for i in keep], [f"step {i + 1}/{len(trace)}, t={form.format(trace[i][2])}" for i in keep])


def order_frames(run, label, seed=0, frames=None):
    """([(C, H, W) in [0, 1]], [caption]) of one sample's generation; frames caps their number."""
    if not run.images or run.family.order is None:
        raise UnnoiseError(f"{run.folder}: generation order is drawn for image models (not 2D runs or tokenizers)")
    make = {"raster": raster_frames, "scales": scale_frames, "denoising": denoising_frames}[run.family.order]
    return make(run, label, seed, frames)


def titles(runs):
    """A panel title per run: its family (ar says pixels or VQ tokens), with the folder name when two agree."""
    names = [r.family.label(r) for r in runs]
    return [f"{n} {r.folder.name}" if names.count(n) > 1 else n for n, r in zip(names, runs)]


def at(n, f, F):
    """The frame index, of n, that sits at progress f / (F - 1)."""
    return round(f / max(1, F - 1) * (n - 1))


def to_pil(image, side):
    """(C, H, W) in [0, 1] -> an RGB PIL image upscaled by nearest neighbour to about side pixels."""
    array = (image.detach().float().cpu().clamp(0, 1) * 255).round().byte()
    array = array[0].numpy() if array.shape[0] == 1 else array.permute(1, 2, 0).numpy()
    up = max(1, side // max(array.shape[:2]))
    pil = Image.fromarray(array).convert("RGB")
    return pil.resize((pil.width * up, pil.height * up), Image.Resampling.NEAREST)


def write_gif(orders, names, out):
    """The panels side by side, all advancing together on the progress axis; the last frame held HOLD_MS."""
    font = ImageFont.truetype(font_manager.findfont("DejaVu Sans"), 13)
    F = max(len(frames) for frames, _ in orders)
    texts = names + [c for _, captions in orders for c in captions]
    side = max(to_pil(frames[0], PANEL).width for frames, _ in orders)
    cell = max(side, max(int(font.getlength(t)) for t in texts)) + 16
    width, height = cell * len(orders), side + 58
    pictures = []
    for f in range(F):
        canvas = Image.new("RGB", (width, height), "white")
        draw = ImageDraw.Draw(canvas)
        for j, ((frames, captions), name) in enumerate(zip(orders, names)):
            i, x = at(len(frames), f, F), j * cell + cell // 2
            panel = to_pil(frames[i], PANEL)
            canvas.paste(panel, (x - panel.width // 2, 24))
            draw.text((x, 5), name, fill="black", font=font, anchor="mt")
            draw.text((x, side + 30), captions[i], fill="#444444", font=font, anchor="mt")
        draw.rectangle((0, height - 5, round(width * f / max(1, F - 1)), height), fill="#4a7fb5")  # progress
        pictures.append(canvas.convert("P", palette=Image.Palette.ADAPTIVE))
    ms = max(40, min(200, 4000 // F))
    durations = [ms] * (F - 1) + [HOLD_MS]
    atomic_write(
        out,
        lambda tmp: pictures[0].save(
            tmp, format="GIF", save_all=True, append_images=pictures[1:], duration=durations, loop=0
        ),
    )


def write_strip(orders, names, out, title):
    """A still: one row per run, up to COLUMNS columns at evenly spaced progress, each cell captioned."""
    cols, rows = min(COLUMNS, max(len(frames) for frames, _ in orders)), len(orders)
    cell, gap, left, top = 0.95, 0.08, 1.1, 0.22 + 0.14 * (title.count("\n") + 1)  # inches; rows 0.22 apart
    width, height = left + cols * cell + (cols - 1) * gap + 0.05, top + rows * cell + (rows - 1) * 0.22 + 0.05
    fig, axes = plt.subplots(rows, cols, figsize=(width, height), squeeze=False)
    for (frames, captions), name, row in zip(orders, names, axes):
        for j, ax in enumerate(row):
            i = at(len(frames), j, cols)
            show(ax, frames[i])
            ax.set_title(captions[i], fontsize=6.5, pad=2)
        row[0].set_ylabel(name, rotation=0, ha="right", va="center", fontsize=8)
    fig.suptitle(title, fontsize=8, y=1 - 0.04 / height, va="top")
    fig.subplots_adjust(
        left=left / width,
        right=1 - 0.05 / width,
        bottom=0.05 / height,
        top=1 - top / height,
        wspace=gap / cell,
        hspace=0.22 / cell,
    )
    save(fig, out)


def reading_notes(runs):
    """How to read the still's panels: what each family's frames show."""
    notes = ["left to right: the same share of each run's own generation"] if len(runs) > 1 else []
    raster = sorted({r.family.name for r in runs if r.family.order == "raster"})
    if raster:
        notes.append(f"{', '.join(raster)}: cells not generated yet are gray")
    denoising = sorted({r.family.name for r in runs if r.family.order == "denoising"})
    if denoising:
        notes.append(f"{', '.join(denoising)}: the x0 estimate")
    return notes


def write_order(runs, out, label=0, seed=0):
    """order.gif and order.png for image runs side by side (label: the class, for conditional runs)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    orders = [order_frames(r, label if r.cfg.conditional else None, seed) for r in runs]
    names, notes = titles(runs), reading_notes(runs)
    which = f"class {label}" if label is not None and any(r.cfg.conditional for r in runs) else "unconditional"
    title = f"generation order, one sample ({which}, seed {seed})" + ("\n" + "; ".join(notes) if notes else "")
    write_strip(orders, names, out / "order.png", title)
    write_gif(orders, names, out / "order.gif")
    return ["order.png", "order.gif"]
