"""`unnoise reflow`, `unnoise likelihood` and `unnoise figures`: the flow-matching commands, kept apart from cli.py."""

import json

GUIDANCE_HELP = (
    "classifier-free guidance weight w: out = out_uncond + w (out_cond - out_uncond), on eps, x0 or "
    "velocity alike; w=1 (default) is the conditional model, w=0 the unconditional one, w>1 sharper "
    "classes (Ho & Salimans' w is this w - 1); needs a --conditional run"
)


def add_guidance(p):
    """--guidance, --class and --autoguide, for every command that samples."""
    p.add_argument("--guidance", type=float, default=1.0, metavar="W", help=GUIDANCE_HELP)
    p.add_argument(
        "--class",
        dest="label",
        type=class_label,
        metavar="C",
        help="draw class C of a conditional run, or 'each' for every class in turn (default: unconditional "
        "for 2D runs; every class in turn for image runs and with --guidance)",
    )
    p.add_argument(
        "--autoguide",
        metavar="RUN",
        help="diffusion, flow, edm: guide by this weaker run of the same data "
        "(shorter or smaller) in place of the unconditional model, out = out_RUN + w (out - out_RUN) with "
        "w = --guidance (autoguidance, Karras et al. 2024); works for unconditional runs too",
    )


def class_label(text):
    """--class: a class index or 'each'."""
    import argparse

    if text == "each":
        return text
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--class takes a class index or 'each', not {text!r}") from None


def real_points(run, split, n, label=None):
    """n real points of the split, or of class `label` only (what --class samples are compared with)."""
    from . import data

    if label in (None, "each"):
        return data.load(run.cfg.data, split, n).x
    real = data.load(run.cfg.data, split, n * run.num_classes * 2)
    return real.x[real.y == label][:n]


def add_parsers(sub, positive):
    p = sub.add_parser(
        "reflow",
        help="retrain a flow on its own (noise, sample) pairs so 1-2 Euler steps suffice",
        description="Rectified flow (Liu et al. 2022): sample pairs with the run's ODE (dopri5), then "
        "train a new run on them starting from the trained weights.",
    )
    p.add_argument("run", help="a flow run folder (trained with --family flow)")
    p.add_argument("--out", required=True, help="new run folder")
    p.add_argument(
        "--pairs", type=positive("pairs"), default=20000, help="(noise, sample) pairs to generate (default 20000)"
    )
    p.add_argument("--steps", type=positive("steps"), help="training steps (default: the source run's)")
    p.add_argument("--lr", type=float, help="learning rate (default: the source run's)")
    p.add_argument("--seed", type=int, default=0)

    p = sub.add_parser(
        "likelihood",
        help="exact NLL of held-out data through the probability-flow ODE",
        description="Instantaneous change of variables (Chen et al. 2018; Song et al. 2021 App. D), "
        "dopri5 at rtol=atol=1e-5 (1e-6 moves a trained 2D model by ~1e-3 nats). "
        "nll_nats and bpd are in data units (the model's normalisation is undone: "
        "log p_data = log p_model - sum log scale).",
    )
    p.add_argument("run", help="a continuous-time run folder (flow, or diffusion on vp-cosine)")
    p.add_argument("--n", type=positive("n"), default=1000, help="held-out points (default 1000)")
    p.add_argument(
        "--divergence",
        default="auto",
        choices=("auto", "exact", "hutchinson"),
        help="exact (one backward pass per dimension) or Hutchinson's estimate; "
        "auto (default): exact up to 16 dimensions, Hutchinson above",
    )
    p.add_argument("--probes", type=positive("probes"), default=1, help="Rademacher probes per point for hutchinson")
    p.add_argument("--seed", type=int, default=0, help="seed of the Hutchinson probes")
    p.add_argument("--json", action="store_true", help="print one JSON object (nll_nats, stderr_nats, bpd, n, ...)")
    add_data(p)

    p = sub.add_parser(
        "figures",
        help="figures of trained runs: flow trajectories, paths, velocity, likelihood map, "
        "guidance grid; for an image run its samples, guidance and denoising "
        "(token runs: generation order; a tokenizer: reconstruction by scale)",
    )
    p.add_argument(
        "runs",
        nargs="+",
        help="run folders; trajectories (2D) or generation order (images: order.png, "
        "order.gif) are drawn side by side, the rest for the first",
    )
    p.add_argument("--out", default="figures", help="output folder (default figures/)")


def add_data(p):
    p.add_argument(
        "--data",
        metavar="NAME",
        help="the data to measure against, or to read units from, instead of the "
        "run's own: needed for a run trained on an image folder (a run folder's paths are never followed), "
        "and for a point-file run saved before runs kept a copy; same kind and dimension as the run",
    )


def cmd_reflow(args):
    from .reflow import reflow

    run = reflow(args.run, args.out, pairs=args.pairs, steps=args.steps, lr=args.lr, seed=args.seed)
    print(f"reflowed {args.run} on {args.pairs} pairs for {run.step} steps: {args.out}")


def cmd_likelihood(args):
    from .likelihood import nll
    from .run import Run

    run = Run.load(args.run, args.data)
    result = nll(run, args.n, args.divergence, args.probes, args.seed)
    if args.json:
        print(json.dumps(result))
        return
    probes = f", {result['probes']} probe(s)" if result["divergence"] == "hutchinson" else ""
    print(f"{run.cfg.data}, n={result['n']}, {result['divergence']} divergence{probes}, {result['seconds']:.1f} s")
    print(
        f"  NLL {result['nll_nats']:.4f} +- {result['stderr_nats'] or float('nan'):.4f} nats per point (data units), "
        f"{result['bpd']:.4f} bits/dim"
    )


def cmd_figures(args):
    from .run import Run

    runs = [Run.load(r) for r in args.runs]
    if runs[0].images:
        from .viz.images import write_all as write_images

        names = write_images(runs[0], args.out)
        ordered = [r for r in runs if r.images and r.cfg.family != "vq"]  # tokenizers do not generate
        wanted = sum(r.images for r in runs) > 1 or any(r.cfg.family in ("ar", "var") for r in runs)
        if wanted and ordered and not (len(ordered) == 1 and "order.gif" in names):  # else write_all drew it
            from .viz.order import write_order

            conditional = any(r.cfg.conditional for r in ordered)
            names += [n for n in write_order(ordered, args.out, label=0 if conditional else None) if n not in names]
        print(f"wrote {', '.join(names)} to {args.out}/")
        return
    from .viz.flow import write_all

    names = write_all(runs, args.out)
    print(f"wrote {', '.join(names)} to {args.out}/")


COMMANDS = {"reflow": cmd_reflow, "likelihood": cmd_likelihood, "figures": cmd_figures}
