"""`unnoise sample`, `evaluate` and `data`: draw samples, measure them beside their floors, write real data."""

import json
from pathlib import Path

from .. import data, dist
from ..checkpoint import atomic_write
from ..errors import UnnoiseError, refuse_elsewhere
from ..metrics import images as image_metrics
from ..metrics import points as point_metrics
from ..metrics import text as text_metrics
from ..run import Run
from .common import (
    add_count,
    add_sampling,
    check_output,
    draw,
    positive,
    real_points,
    write_images,
    write_points,
    write_text,
)


def add_parsers(sub):
    p = sub.add_parser("sample", help="draw samples from a trained run")
    p.add_argument("run", help="run folder")
    add_sampling(p)
    p.add_argument(
        "--out",
        required=True,
        help="samples.npy ((n, 2) floats in data units, or images (n, C, H, W) in [0, 1]) or samples.png; "
        "text runs: samples.txt (one sample per paragraph)",
    )
    p.set_defaults(command_fn=cmd_sample)

    p = sub.add_parser(
        "evaluate",
        help="sample and measure quality beside its real-vs-real floor",
        description="2D: W2, sliced W2, MMD. Images: classifier-feature FID and KID, precision, "
        "recall, class accuracy, memorization ratio (docs/images.md).",
    )
    p.add_argument("run", help="run folder")
    add_sampling(p)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--likelihood", action="store_true", help="images: add bits per dimension of held-out images")
    p.add_argument(
        "--level",
        action="store_true",
        help="images: measure real data's expected FID level where it is not stored (trains 3 judges once, cached)",
    )
    p.set_defaults(command_fn=cmd_evaluate)

    p = sub.add_parser(
        "data",
        help="write real points of a data set",
        description="moons and circles are scikit-learn's (noise 0.05; circles factor 0.5, x2); "
        "see unnoise.data.toy2d for the rest.",
    )
    p.add_argument("name", help=f"{', '.join(data.names())}, or a folder of PNG/JPEG images")
    add_count(p, None, "points (default 2000) or images (default: the whole split)")
    p.add_argument(
        "--split",
        default="train",
        choices=tuple(data.SPLITS),
        help="split (default train); images have train and heldout",
    )
    p.add_argument("--seed", type=int, help="draw with this seed instead of the split's (images: which subset of -n)")
    p.add_argument(
        "--size", type=positive("size"), help="images: side in pixels (default 8 digits, 16 mnist, 32 emoji, 32 folder)"
    )
    p.add_argument("--channels", type=int, choices=(1, 3), help="images: 1 grayscale or 3 RGB")
    p.add_argument(
        "--out", required=True, help="real.npy ((n, 2) floats, or images (n, C, H, W) in [0, 1]) or real.png"
    )
    p.set_defaults(command_fn=cmd_data)


def cmd_sample(args):
    run = Run.load(args.run, args.data)
    out = check_output(args.out, (".txt",) if run.text else (".npy", ".png"))
    drawn = draw(args, run)
    if not dist.is_main():  # under torchrun every process drew its share; rank 0 writes
        return
    if run.text:
        return write_text(run, drawn.x, out)
    title = f"{drawn.sampler}, {drawn.nfe:g} NFE"
    if args.autoguide is not None:
        title += f", autoguided (w = {args.guidance:g})"
    if drawn.run.images:
        write_images(drawn.x, out, drawn.labels, title)
    else:
        write_points(drawn.x, out, title)


def cmd_evaluate(args):
    run = Run.load(args.run, args.data)
    refuse_elsewhere(run.cfg.data)  # before sampling: measuring needs data the run folder cannot name
    if not run.family.generates:  # a tokenizer: its reconstruction, not samples
        result = run.family.report(run, args.n or 2000, args.seed)
        return report(run, result, args.json) if dist.is_main() else None
    drawn = draw(args, run)
    if not dist.is_main():  # the samples are gathered on every process; rank 0 measures
        return
    cost = {"sampler": drawn.sampler, "nfe": drawn.nfe, "sample_seconds": drawn.seconds}
    if run.text:
        result = {
            **cost,
            **run.family.report(run, args.n, args.seed),
            **text_metrics.judge(run.cfg.data, run.cfg.alphabet, drawn.x),
        }
        heading = (
            f"{run.cfg.data}, {drawn.sampler} at {drawn.nfe:g} network calls per sample, "
            f"{drawn.seconds / len(drawn.x) * 1000:.0f} ms per sample of {drawn.x.shape[1]} characters"
        )
        return report(run, result, args.json, heading)
    if run.images:
        result = image_metrics.report(
            drawn.x,
            drawn.labels,
            run.cfg.data,
            run.cfg.size,
            run.cfg.channels,
            verbose=not args.json,
            compute_level=args.level,
        )
        result.update(cost, sample_seconds_per_image=drawn.seconds / len(drawn.x))
        result.update(run.family.report(run, args.n, args.seed, args.likelihood))
        heading = (
            f"{run.cfg.data} {run.cfg.size}x{run.cfg.size}, {drawn.sampler} at {drawn.nfe:g} NFE, "
            f"{drawn.seconds / len(drawn.x) * 1000:.1f} ms per image"
        )
        return report(run, result, args.json, heading, image_metrics.format_report(result))
    real = [real_points(run, split, args.n, args.label) for split in ("heldout", "fresh")]
    result = {**point_metrics.report(drawn.x, *real), **cost}
    lines = [
        f"  {k:4s} {result[k]:.4f}   floor {result[k + '_floor']:.4f}   ratio {result[k + '_ratio']:.2f}"
        for k in ("w2", "swd", "mmd")
    ]
    heading = f"{run.cfg.data}, {drawn.sampler} at {drawn.nfe:g} NFE, n={result['n']}, {drawn.seconds:.2f} s to sample"
    report(run, result, args.json, heading, "\n".join(lines))


def report(run, result, as_json, heading=None, body=None):
    """Print the result as one JSON object, or as lines: heading, body, then the family's own lines."""
    if as_json:
        print(json.dumps(result))
        return
    for text in (heading, body, *run.family.report_lines(run, result)):
        if text:
            print(text)


def cmd_data(args):
    if data.kind(args.name) == "text":  # the split's first n characters (default 2000)
        out = check_output(args.out, (".txt",))
        real = data.load(args.name, args.split)
        passage = "".join(real.alphabet[int(i)] for i in real.x[: args.n or 2000])
        atomic_write(out, lambda tmp: Path(tmp).write_text(passage + "\n", encoding="utf-8"))
        return print(f"wrote {len(passage)} characters of {args.name} ({args.split}) to {out}")
    out = check_output(args.out, (".npy", ".png"))
    if data.is_images(args.name):
        real = data.load(args.name, args.split, args.n, args.seed, args.size, args.channels)
        labels = real.y if real.num_classes else None
        return write_images(real.x, out, labels, f"{real.name} ({args.split}, n={len(real.x)})")
    if args.size is not None or args.channels is not None:
        raise UnnoiseError(f"--size and --channels are for image data, not the 2D set {args.name!r}")
    points = data.load(args.name, args.split, args.n or 2000, seed=args.seed).x
    write_points(points, out, f"{args.name} ({args.split}, n={len(points)})")
