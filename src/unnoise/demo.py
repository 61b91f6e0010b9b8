"""`unnoise demo`: train a diffusion model on moons and write every picture of it into one folder."""

import html
import time
from pathlib import Path

import torch

from . import data
from .checkpoint import atomic_write, load_json, save_json
from .config import TrainConfig
from .errors import UnnoiseError
from .metrics.points import report
from .samplers import PerSampleNoise, sample_ddim, timesteps
from .train import train
from .viz import figures2d

N, NFE = 2000, 50

PAGE = """<!doctype html><meta charset="utf-8"><title>unnoise demo</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto}}img{{max-width:100%}}</style>
<h1>unnoise demo: diffusion on two moons</h1>
<p>{summary}</p>
{sections}
"""


def train_or_reuse(folder, cfg):
    """Train the demo run, resuming a partial one and reusing a finished one."""
    config = folder / "config.json"
    if config.exists() and load_json(config)["train"] == cfg.to_dict():
        return train(cfg, folder, resume=True)
    if config.exists():
        raise UnnoiseError(f"{folder} holds a different run; remove it or pick another --out")
    return train(cfg, folder)


def reverse_trajectory(run, n, nfe):
    """Samples at every step of DDIM, from pure noise to data, in data units."""
    noise = PerSampleNoise.for_range(0, 0, n)
    x = run.initial(noise)
    frames = [x]
    ts = timesteps(run.path, nfe)
    sample_ddim(run.model(), x, ts, run.path, noise, callback=lambda i, t, x, x0: frames.append(x))
    return [run.to_data(f) for f in frames], ts


def figures(run, folder, real, frames, ts, metrics):
    """Write the five pictures of the demo."""
    dataset, path = run.dataset, run.path
    levels = torch.linspace(0, path.t_max, 7).round() if path.discrete else torch.linspace(0, path.t_max, 7)
    train_x = data.load(run.cfg.data, "train", N).x
    figures2d.save(
        figures2d.forward_strip(dataset.normalize(train_x), path, levels, dataset.denormalize), folder / "forward.png"
    )
    sigmas = torch.stack([path.sigma(t) for t in ts])  # noise level before each step
    pick = [int((sigmas - level).abs().argmin()) for level in (1.0, 0.9, 0.75, 0.5, 0.3, 0.15, 0.05, 0.0)]
    lim = figures2d.limits(frames[0])
    titles = [f"step {i}/{len(frames) - 1}, sigma={float(sigmas[i]):.2f}" for i in range(len(frames))]
    figures2d.save(figures2d.strip([frames[i] for i in pick], [titles[i] for i in pick], lim), folder / "reverse.png")
    figures2d.gif(frames, titles, lim, folder / "reverse.gif")
    field_ts = [path.t_max * f for f in (0.6, 0.3, 0.1, 0.02)]
    field_ts = [round(t) for t in field_ts] if path.discrete else field_ts
    figures2d.save(
        figures2d.field(run.model(), path, field_ts, real, dataset.normalize, dataset.denormalize), folder / "field.png"
    )
    title = (
        f"DDIM, {NFE} NFE, n={metrics['n']}:  W2 {metrics['w2']:.3f} (floor {metrics['w2_floor']:.3f}), "
        f"MMD {metrics['mmd']:.3f} (floor {metrics['mmd_floor']:.3f})"
    )
    figures2d.save(figures2d.scatter(frames[-1], real=real, title=title), folder / "samples.png")


def write_page(folder, metrics, extra=()):
    sections = [
        (
            "forward.png",
            "Forward process: the data is mixed with more and more Gaussian noise until nothing of it is left.",
        ),
        (
            "reverse.png",
            "Reverse process: the model starts from pure noise and removes a little of it at each step until the moons appear.",
        ),
        ("reverse.gif", "The same reverse process as an animation, one frame per network evaluation."),
        (
            "field.png",
            "The learned field: at each grid point, an arrow to where the model thinks the clean data is; "
            "at high noise every arrow points to the data's centre, at low noise onto the nearest moon.",
        ),
        (
            "samples.png",
            "Final samples (red) over held-out real data (grey); the title gives each metric beside its "
            "floor, the value two independent real draws of the same size score.",
        ),
    ] + list(extra)
    body = "\n".join(f"<h2>{name}</h2><p>{html.escape(text)}</p><img src='{name}'>" for name, text in sections)
    summary = html.escape(
        f"W2 {metrics['w2']:.4f} against a real-vs-real floor of {metrics['w2_floor']:.4f} "
        f"(ratio {metrics['w2_ratio']:.2f}), n={metrics['n']}, {metrics['nfe']} network evaluations "
        f"per sample, trained {metrics['train_seconds']:.0f} s."
    )
    atomic_write(folder / "index.html", lambda tmp: Path(tmp).write_text(PAGE.format(summary=summary, sections=body)))


def demo(out="demo", family="diffusion", data_name="moons"):
    """Train (or reuse) the moons run, then write figures, metrics.json and index.html into out/."""
    if data_name != "moons":
        return image_demo(out, family, data_name)
    folder = Path(out)
    start = time.perf_counter()
    run = train_or_reuse(folder / "run", TrainConfig(data="moons", family=family))
    train_seconds = time.perf_counter() - start
    start = time.perf_counter()
    frames, ts = reverse_trajectory(run, N, NFE)
    sample_seconds = time.perf_counter() - start
    real = data.load("moons", "heldout", N).x
    metrics = report(frames[-1], real, data.load("moons", "fresh", N).x)
    metrics.update(sampler="ddim", nfe=NFE, sample_seconds=sample_seconds, train_seconds=train_seconds)
    save_json(folder / "metrics.json", metrics)
    figures(run, folder, real, frames, ts, metrics)
    extra = []
    if run.cfg.family == "flow":  # the flow pictures (viz/flow.py)
        from .viz.flow import CAPTIONS, write_all

        extra = [(name, CAPTIONS[name]) for name in write_all([run], folder)]
    write_page(folder, metrics, extra)
    print(
        f"W2 {metrics['w2']:.4f} (floor {metrics['w2_floor']:.4f}, ratio {metrics['w2_ratio']:.2f}), n={N}, NFE {NFE}"
    )
    print(
        f"demo written to {folder}/: index.html, forward.png, reverse.png, reverse.gif, field.png, samples.png, metrics.json"
    )


IMAGE_PAGE = """<!doctype html><meta charset="utf-8"><title>unnoise demo: {name}</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto}}img{{max-width:100%}}</style>
<h1>unnoise demo: class-conditional {family} on {name}</h1>
<p>{summary}</p>
{sections}
"""


def image_demo(out, family, name, n=360, nfe=20):
    """Train (or reuse) a class-conditional U-Net on an image set; write its figures and metrics."""
    from .metrics.images import format_report, report
    from .viz.images import CAPTIONS, figure_sampler, write_all

    folder = Path(out)
    start = time.perf_counter()
    run = train_or_reuse(folder / "run", TrainConfig(data=name, family=family, conditional=True))
    train_seconds = time.perf_counter() - start
    start = time.perf_counter()
    images = run.sample(n, figure_sampler(run), nfe, label="each")
    sample_seconds = time.perf_counter() - start
    metrics = report(images, torch.arange(n) % run.num_classes, name, run.cfg.size, run.cfg.channels)
    metrics.update(sampler=figure_sampler(run), nfe=nfe, sample_seconds=sample_seconds, train_seconds=train_seconds)
    save_json(folder / "metrics.json", metrics)
    names = write_all(run, folder, nfe)
    body = "\n".join(f"<h2>{f}</h2><p>{html.escape(CAPTIONS[f])}</p><img src='{f}'>" for f in names)
    summary = html.escape(
        f"Classifier-feature FID {metrics['fid']:.3f} against a held-out floor of "
        f"{metrics['fid_floor']:.3f}; class accuracy {metrics['class_accuracy']:.3f}; "
        f"memorization ratio {metrics['memorization_ratio']:.2f} (>= 0.9: no copying); "
        f"n={metrics['n']}, {nfe} network evaluations per image, trained {train_seconds:.0f} s."
    )
    page = IMAGE_PAGE.format(name=name, family=family, summary=summary, sections=body)
    atomic_write(folder / "index.html", lambda tmp: Path(tmp).write_text(page))
    print(format_report(metrics))
    print(f"demo written to {folder}/: index.html, {', '.join(names)}, metrics.json")
