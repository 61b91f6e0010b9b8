"""Pixels or latents, U-Net or transformer, at equal training seconds: `unnoise train --data mnist --size 28
--conditional` beside `--latent AE` and `--latent AE --net transformer` (issue: latent diffusion).

The autoencoder is trained once (its seconds are reported, counted once: every latent run copies the same one),
then each configuration trains for --seconds of wall time and is scored by benchmarks/images.py's evaluate:
n class-conditional samples at each guidance scale, class accuracy and FID beside the floor under three judges.
The autoencoder's own ceiling, its held-out reconstructions under the same judges, is printed beside them.

    python benchmarks/latent.py [--data mnist] [--size 28] [--seconds 600] [--configs pixel,latent,latent-dit]
        [--ae RUN] [--ae-steps 1500] [--n 1000] [--scales 1.25,1.5] [--seed 0] [--no-append]
"""

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import torch

import common
import images
import unnoise
from unnoise.families.autoencoder import reconstruct
from unnoise.viz import figures2d
from unnoise.viz.images import sample_grid

CONFIGS = {  # name: the settings beside --data, --size, --conditional
    "pixel": {},
    "latent": {"latent": "AE"},
    "latent-dit": {"latent": "AE", "net": "transformer"},
    "pixel-dit": {"net": "transformer"},
}


def flags(settings):
    return "".join(f" --{k} {v}" for k, v in settings.items())


def autoencoder(args, root):
    """The autoencoder run every latent configuration copies: args.ae, or one trained now (seconds reported)."""
    if args.ae:
        return unnoise.Run.load(args.ae), float("nan")
    start = time.perf_counter()
    cfg = unnoise.TrainConfig(data=args.data, size=args.size, family="ae", steps=args.ae_steps, seed=args.seed)
    run = unnoise.train(cfg, root / "ae", progress=False)
    return run, time.perf_counter() - start


def ceiling(ae, n):
    """The judges' view of the autoencoder's held-out reconstructions: (rmse, FID ratios, accuracy)."""
    x, y = ae.dataset.x[:n], ae.dataset.y[:n]
    rebuilt = reconstruct(ae.net, x)
    r = images.judge(rebuilt, y, ae.cfg.data, ae.cfg.size, ae.cfg.channels)
    rmse = float((rebuilt - x).square().mean().sqrt())
    return rmse, images.ratios(r), r["class_accuracy"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="mnist")
    parser.add_argument("--size", type=int, default=28)
    parser.add_argument("--seconds", type=float, default=600.0, help="training budget of each configuration")
    parser.add_argument(
        "--configs", default="pixel,latent,latent-dit", help=f"comma-separated, of {', '.join(CONFIGS)}"
    )
    parser.add_argument("--ae", help="an autoencoder run to reuse (default: train one with --ae-steps)")
    parser.add_argument("--ae-steps", type=int, default=1500)
    parser.add_argument("--n", type=int, default=1000, help="samples per guidance scale")
    parser.add_argument("--scales", default="1.25,1.5", help="guidance scales, comma-separated")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="benchmarks/images", help="folder for the sample grids")
    parser.add_argument("--no-append", action="store_true", help="print only; leave BENCHMARKS.md alone")
    args = parser.parse_args()
    names = args.configs.split(",")
    if not set(names) <= set(CONFIGS):
        parser.error(f"--configs takes {', '.join(CONFIGS)}, got {args.configs!r}")
    scales = [float(w) for w in args.scales.split(",")]
    torch.set_num_threads(2)
    root = Path(tempfile.mkdtemp())
    base = f"`unnoise train --data {args.data} --size {args.size} --conditional --seed {args.seed}"
    lines = []
    print(f"- runs kept in {root}", flush=True)
    ae = ae_seconds = None
    if any("latent" in CONFIGS[name] for name in names):
        ae, ae_seconds = autoencoder(args, root)
        rmse, ratios, accuracy = ceiling(ae, args.n)
        took = "trained beforehand" if args.ae else f"{ae_seconds:.0f} s"
        lines.append(
            f"- the autoencoder (`--family ae`, {ae.step} steps, {took}, trained once and copied into "
            f"every latent run): held-out rmse {rmse:.4f}; its reconstructions' FID ratio "
            f"{' / '.join(f'{q:.2f}' for q in ratios)} (three judges), class accuracy {accuracy:.3f}: the ceiling"
        )
        print(lines[-1], flush=True)
    for name in names:
        settings = {k: (str(ae.folder) if v == "AE" else v) for k, v in CONFIGS[name].items()}
        cfg = unnoise.TrainConfig(data=args.data, size=args.size, conditional=True, seed=args.seed, **settings)
        run, steps, seconds = images.budgeted(cfg, root / name, args.seconds)
        shown = {k: ("AE" if k == "latent" else v) for k, v in settings.items()}
        lines.append(
            f"- {name}: {base}{flags(shown)}`: {cfg.net} width {cfg.width}, patch {cfg.patch}, "
            f"{sum(p.numel() for p in run.net.parameters()):,} parameters; {steps} steps in {seconds:.0f} s "
            f"({1000 * seconds / steps:.0f} ms each)"
        )
        print(lines[-1], flush=True)
        for w in scales:
            r, samples, labels = images.evaluate(run, args.n, w)
            ratios = images.ratios(r)
            lines.append(
                f"  - w = {w:g}: class accuracy {r['class_accuracy']:.3f}; FID ratio "
                f"{' / '.join(f'{q:.2f}' for q in ratios)} (three judges); memorization "
                f"{r['memorization_ratio']:.2f}; {1000 * r['seconds_per_image']:.1f} ms per image"
            )
            print(lines[-1], flush=True)
        keep = torch.cat([torch.nonzero(labels == c).flatten()[:10] for c in range(run.num_classes)])
        grid = Path(args.out) / f"latent-{args.data}{args.size}-{name}.png"
        grid.parent.mkdir(parents=True, exist_ok=True)
        title = f"{args.data} {args.size}x{args.size}, {name}, {steps} steps in {seconds:.0f} s, w = {scales[-1]:g}"
        figures2d.save(sample_grid(samples[keep], labels[keep], title=title), grid)
        lines.append(f"  - sample grid: `{grid}`")
    what = f"{args.data} {args.size}x{args.size}: pixels or latents, U-Net or DiT, {args.seconds:g} s each"
    common.publish(what, lines, args.no_append)


if __name__ == "__main__":
    main()
