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
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import torch

import common
import images
import unnoise
import unnoise.data
from unnoise.config import LATENT_DEFAULT
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


def has_classes(data):
    """Whether the data set has class labels to condition on (emoji has none)."""
    return unnoise.data.load(data, "train").num_classes > 0


def ceiling(ae, n):
    """The judges' view of the autoencoder's held-out reconstructions: (rmse, images.judge's result, accuracy)."""
    x, y = ae.dataset.x[:n], ae.dataset.y[:n]
    rebuilt = reconstruct(ae.net, x)
    r = images.judge(rebuilt, y, ae.cfg.data, ae.cfg.size, ae.cfg.channels)
    rmse = float((rebuilt - x).square().mean().sqrt())
    return rmse, r, r["class_accuracy"]


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
    classes = has_classes(args.data)
    judges = "the default judge" if args.data in images.ONE_JUDGE else "three judges"
    scales = [float(w) for w in args.scales.split(",")] if classes else [1.0]  # no classes: no guidance
    torch.set_num_threads(2)
    root = Path(tempfile.mkdtemp())
    base = (
        f"`unnoise train --data {args.data} --size {args.size}{' --conditional' if classes else ''} --seed {args.seed}"
    )
    lines = []
    saved = {"command": "python " + " ".join(sys.argv), "seconds": args.seconds, "n": args.n, "judges": judges,
             "seed": args.seed, "ae": None, "configs": {}}  # fmt: skip
    print(f"- runs kept in {root}", flush=True)
    ae = ae_seconds = None
    if any("latent" in CONFIGS[name] for name in names):
        ae, ae_seconds = autoencoder(args, root)
        rmse, judged, accuracy = ceiling(ae, args.n)
        took = "trained beforehand" if args.ae else f"{ae_seconds:.0f} s"
        lines.append(
            f"- the autoencoder (`--family ae`, {ae.step} steps, {took}, trained once and copied into "
            f"every latent run): held-out rmse {rmse:.4f}; its reconstructions' FID "
            f"{images.against(judged)} ({judges})"
            + (f", class accuracy {accuracy:.3f}" if accuracy is not None else "")
            + ": the ceiling"
        )
        print(lines[-1], flush=True)
        saved["ae"] = {
            "steps": ae.step,
            "seconds": ae_seconds,
            "rmse": rmse,
            "fid_ratios": images.ratios(judged),
            "level_ratios": images.level_ratios(judged),
            "accuracy": accuracy,
        }
    for name in names:
        settings = {k: (str(ae.folder) if v == "AE" else v) for k, v in CONFIGS[name].items()}
        cfg = unnoise.TrainConfig(data=args.data, size=args.size, conditional=classes, seed=args.seed, **settings)
        run, steps, seconds = images.budgeted(cfg, root / name, args.seconds)
        shown = {k: ("AE" if k == "latent" else v) for k, v in settings.items()}
        if "latent" not in settings and args.data in LATENT_DEFAULT:  # the command line would pick a latent
            shown = {"latent": "none", **shown}
        lines.append(
            f"- {name}: {base}{flags(shown)}`: {cfg.net} width {cfg.width}, patch {cfg.patch}, "
            f"{sum(p.numel() for p in run.net.parameters()):,} parameters; {steps} steps in {seconds:.0f} s "
            f"({1000 * seconds / steps:.0f} ms each)"
        )
        print(lines[-1], flush=True)
        saved["configs"][name] = row = {"flags": flags(shown).strip(), "net": cfg.net, "steps": steps,
                                        "seconds": seconds, "parameters": sum(p.numel() for p in run.net.parameters()),
                                        "scales": []}  # fmt: skip
        for w in scales:
            r, samples, labels = images.evaluate(run, args.n, w)
            accuracy = f"class accuracy {r['class_accuracy']:.3f}; " if classes else ""
            lines.append(
                f"  - w = {w:g}: {accuracy}FID {images.against(r)} ({judges}, n = {r['n']}); memorization "
                f"{r['memorization_ratio']:.2f}; {1000 * r['seconds_per_image']:.1f} ms per image"
            )
            print(lines[-1], flush=True)
            row["scales"].append({"w": w, "accuracy": r["class_accuracy"], "fid_ratios": images.ratios(r),
                                  "level_ratios": images.level_ratios(r), "ms_per_image": 1000 * r["seconds_per_image"], "n": r["n"]})  # fmt: skip
        grid = Path(args.out) / f"latent-{args.data}{args.size}-{name}.png"
        grid.parent.mkdir(parents=True, exist_ok=True)
        title = f"{args.data} {args.size}x{args.size}, {name}, {steps} steps in {seconds:.0f} s"
        if classes:
            keep = torch.cat([torch.nonzero(labels == c).flatten()[:10] for c in range(run.num_classes)])
            grid_figure = sample_grid(samples[keep], labels[keep], title=f"{title}, w = {scales[-1]:g}")
        else:
            grid_figure = sample_grid(samples[:100], title=f"{title}, the first 100 samples")
        figures2d.save(grid_figure, grid)
        lines.append(f"  - sample grid: `{grid}`")
        row["grid"] = str(grid)
    out = Path(args.out).parent / "latent" / f"results-{args.data}{args.size}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(saved, indent=1) + "\n")
    lines.append(f"- JSON: `{out}`")
    what = f"{args.data} {args.size}x{args.size}: pixels or latents, U-Net or DiT, {args.seconds:g} s each"
    common.publish(what, lines, args.no_append)


if __name__ == "__main__":
    main()
