"""`unnoise reflow`, `likelihood` and `figures`: a flow retrained on its own pairs, exact likelihoods, and pictures
of trained runs."""

import json

from ..errors import UnnoiseError
from ..likelihood import nll
from ..pipeline import reflow
from ..run import Run
from .common import add_count, add_data, positive


def add_parsers(sub):
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
    p.set_defaults(command_fn=cmd_reflow)

    p = sub.add_parser(
        "likelihood",
        help="exact NLL of held-out data through the probability-flow ODE",
        description="Instantaneous change of variables (Chen et al. 2018; Song et al. 2021 App. D), "
        "dopri5 at rtol=atol=1e-5 (1e-6 moves a trained 2D model by ~1e-3 nats). "
        "nll_nats and bpd are in data units (the model's normalisation is undone: "
        "log p_data = log p_model - sum log scale).",
    )
    p.add_argument("run", help="a continuous-time run folder (flow, or diffusion on vp-cosine)")
    add_count(p, 1000, "held-out points (default 1000)")
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
    p.set_defaults(command_fn=cmd_likelihood)

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
    p.set_defaults(command_fn=cmd_figures)


def cmd_reflow(args):
    run = reflow(args.run, args.out, pairs=args.pairs, steps=args.steps, lr=args.lr, seed=args.seed)
    print(f"reflowed {args.run} on {args.pairs} pairs for {run.step} steps: {args.out}")


def cmd_likelihood(args):
    run = Run.load(args.run, args.data)
    if run.path is None:
        raise UnnoiseError(
            f"likelihood integrates the probability-flow ODE of diffusion, flow and edm runs; {args.run} is a "
            f"{run.cfg.family} run, whose bits `unnoise evaluate` reports"
        )
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
    runs = [Run.load(r) for r in args.runs]
    for run in runs:
        if run.text:
            raise UnnoiseError(
                f"figures draws points and images; {run.folder} models text: unnoise sample {run.folder} --out s.txt"
            )
    if runs[0].images:
        from ..viz.images import write_all as write_images
        from ..viz.order import write_order

        names = write_images(runs[0], args.out)
        ordered = [r for r in runs if r.images and r.family.generates]  # tokenizers do not generate
        wanted = sum(r.images for r in runs) > 1 or any(r.family.order != "denoising" for r in ordered)
        if wanted and ordered and not (len(ordered) == 1 and "order.gif" in names):  # else write_all drew it
            conditional = any(r.cfg.conditional for r in ordered)
            names += [n for n in write_order(ordered, args.out, label=0 if conditional else None) if n not in names]
        print(f"wrote {', '.join(names)} to {args.out}/")
        return
    from ..viz.flow import write_all

    names = write_all(runs, args.out)
    print(f"wrote {', '.join(names)} to {args.out}/")
