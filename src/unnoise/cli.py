"""The `unnoise` command. Bad input ends in one line on stderr and exit code 2, never a traceback."""

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from . import claims, cli_flow, cli_images, data, dist, export, guidance, samplers
from .config import ALL_FAMILIES, DEFAULTS, FAMILIES, FAMILY_DEFAULTS, TrainConfig
from .errors import UnnoiseError, positive_int, refuse_elsewhere
from .paths import PREDICTIONS, SCHEDULES
from .safety import Stopped
from .web import commands as web_commands


class Parser(argparse.ArgumentParser):
    """argparse, but its errors are one line and exit code 2 like every other unnoise error."""

    def error(self, message):
        command = self.prog.partition(" ")[2]
        raise UnnoiseError(f"{command}: {message}" if command else message)


def positive(name):
    def parse(text):
        try:
            return positive_int(name, text)
        except UnnoiseError as err:
            raise argparse.ArgumentTypeError(str(err)) from None

    return parse


def add_dist(p):
    p.add_argument(
        "--dist-timeout",
        type=positive("dist-timeout"),
        default=dist.TIMEOUT,
        help=f"under torchrun: seconds a process waits for the others before it stops with the rank "
        f"named (default {dist.TIMEOUT})",
    )


def add_sampling(p):
    p.add_argument(
        "--sampler",
        choices=tuple(samplers.SAMPLERS),
        help="diffusion, flow, edm: default dpmpp_2m "
        "(DPM-Solver++(2M)) for points, dpmpp_2m_sde for images, euler for a flow run with a --source",
    )
    p.add_argument(
        "--nfe",
        type=positive("nfe"),
        help="diffusion, flow, edm: network evaluations per "
        "sample (default 20 for dpmpp_2m, 30 for dpmpp_2m_sde, 50 for the other samplers)",
    )
    p.add_argument(
        "--eta",
        type=float,
        help="noise in [0, 1] of ddim (default 0), euler_ancestral, dpmpp_2m_sde and dpmpp_3m_sde (default 1)",
    )
    p.add_argument("--s-churn", type=float, help="heun / euler: EDM's stochastic churn S_churn (default 0)")
    p.add_argument(
        "--spacing",
        choices=samplers.SPACINGS,
        help="time grid: diffusers' spacings, or Karras / exponential noise levels "
        "(default karras on the edm schedule and for heun and rk4 on diffusion paths, trailing "
        "elsewhere); see docs/samplers.md",
    )
    p.add_argument("--n", type=positive("n"), default=2000, help="number of samples (default 2000)")
    p.add_argument("--seed", type=int, default=0, help="sample i depends only on (seed, i)")
    cli_flow.add_guidance(p)
    cli_flow.add_data(p)
    p.add_argument("--temperature", type=float, help="ar, var: divide the logits by this (default 1)")
    p.add_argument("--top-k", type=int, help="ar, var: draw among the k likeliest tokens only (default: all)")
    p.add_argument(
        "--top-p",
        type=float,
        help="ar, var: nucleus sampling, the likeliest tokens holding this much probability, in (0, 1] (default 1)",
    )
    p.add_argument(
        "--guidance-ramp",
        action="store_true",
        help="ar, var: VAR's guidance ramp, from w = 1 at the first level (scale or token) to --guidance at the last",
    )
    add_dist(p)


def build_parser():
    parser = Parser(prog="unnoise", description="Train, sample and measure diffusion and flow models.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)

    p = sub.add_parser("train", help="train a model into a run folder")
    p.add_argument(
        "--data",
        metavar="NAME",
        help=f"data set: {', '.join(data.names())}, your own points (a .npy (N, D) array or a .csv / "
        ".txt table, any D), or a folder of PNG/JPEG images, one subfolder per class or none "
        "(default moons)",
    )
    p.add_argument(
        "--family",
        default="diffusion",
        choices=ALL_FAMILIES,
        help="diffusion, flow, edm (Gaussian paths); vq (a tokenizer), ar (raster autoregressive over "
        "pixels, or tokens with --tokens), var (next-scale prediction); default diffusion",
    )
    p.add_argument(
        "--prediction", choices=PREDICTIONS, help="network target (default: v for diffusion, velocity for flow)"
    )
    p.add_argument(
        "--schedule",
        choices=SCHEDULES,
        help="noise schedule (default: vp-cosine for diffusion, rectified "
        "for flow; a diffusers export needs a beta schedule: linear, scaled_linear, cosine)",
    )
    points, images = DEFAULTS["points"], DEFAULTS["images"]
    for name, kind in (
        ("steps", positive("steps")),
        ("batch-size", positive("batch-size")),
        ("lr", float),
        ("width", positive("width")),
    ):
        key = name.replace("-", "_")
        p.add_argument(
            f"--{name}",
            type=kind,
            help=f"default {points[key]:g} for 2D data, {images[key]:g} for images"
            + (" (MLP units or U-Net base channels)" if name == "width" else ""),
        )
    p.add_argument(
        "--depth",
        type=positive("depth"),
        help="MLP blocks (2D data, default 3) or transformer "
        f"blocks (ar, var: default {FAMILY_DEFAULTS['ar']['depth']})",
    )
    p.add_argument("--heads", type=positive("heads"), help="ar, var: attention heads (default 4)")
    p.add_argument(
        "--levels",
        type=positive("levels"),
        help="ar over pixels: intensity levels K, 2..256 (default 17 for digits, which have 17; 16 otherwise)",
    )
    p.add_argument(
        "--tokens",
        metavar="RUN",
        help="ar: model the tokens of a single-scale tokenizer run (or 'auto': "
        "train one into the run folder first); var: its multi-scale tokenizer (default auto)",
    )
    p.add_argument(
        "--scales",
        help="vq: VAR's scale sides, rising to the latent side (default 1,2,3,4,6,8 for an "
        "8x8 latent; one side, e.g. 8, gives a single-scale tokenizer)",
    )
    p.add_argument(
        "--codebook",
        type=positive("codebook"),
        help=f"vq: codes in the shared codebook (default {TrainConfig.codebook})",
    )
    p.add_argument(
        "--size",
        type=positive("size"),
        help="images: side in pixels, a multiple of 2 "
        "(default 8 for digits, 16 for mnist (28 native), 32 for a folder)",
    )
    p.add_argument("--channels", type=int, choices=(1, 3), help="images: 1 grayscale or 3 RGB (default: as stored)")
    p.add_argument(
        "--patch",
        type=positive("patch"),
        help="images, diffusion / flow / edm: the U-Net folds p x p "
        "pixel patches into channels first (default 2 from 24 px, so 28x28 MNIST runs at 14x14; else 1)",
    )
    p.add_argument("--conditional", action="store_true", help="condition on the data set's class labels")
    p.add_argument("--min-snr-gamma", type=float, help="Min-SNR-gamma loss weighting (Hang et al. 2023), e.g. 5")
    p.add_argument(
        "--time-density",
        help="diffusion / flow: how training times are drawn, uniform or logit-normal "
        "(SD3; default logit-normal for images on the vp-cosine and rectified paths, else uniform)",
    )
    p.add_argument("--sigma-data", type=float, default=TrainConfig.sigma_data, help="edm family: data std (default 1)")
    p.add_argument(
        "--coupling",
        default="independent",
        choices=("independent", "ot", "sinkhorn"),
        help="noise-data pairing in each batch: independent, exact minibatch OT (OT-CFM), or Sinkhorn",
    )
    p.add_argument(
        "--source",
        default="gaussian",
        metavar="NAME",
        help="flow: where the path starts: gaussian (default), a built-in set (8gaussians: Tong et al. "
        "2023's 8 gaussians -> moons) or a point file of the data's dimension (docs/flow.md)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--subset",
        type=positive("subset"),
        help="train on N rows of the training split only (a fixed seeded order), e.g. to see memorization at small N",
    )
    p.add_argument(
        "--subset-part",
        type=int,
        default=0,
        help="which part of that order: parts of one size never overlap (default 0)",
    )
    p.add_argument("--out", required=True, help="run folder (config.json + model.safetensors)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    p.add_argument(
        "--seconds",
        type=float,
        help="train for this many seconds of wall time: the warm-up ends by "
        "a tenth of it, the learning rate decays over the time and --steps, if given, only caps the steps",
    )
    p.add_argument(
        "--checkpoint-every",
        type=positive("checkpoint-every"),
        help=f"write a checkpoint every K steps (default {TrainConfig.checkpoint_every})",
    )
    p.add_argument(
        "--accumulate",
        type=positive("accumulate"),
        default=1,
        help="split each process's share of the batch into K micro-batches (gradient accumulation; "
        "--batch-size stays the global batch)",
    )
    p.add_argument("--device", default="auto", choices=dist.DEVICES, help="auto (CUDA when present), cpu or cuda")
    p.add_argument(
        "--precision",
        default="fp32",
        choices=dist.PRECISIONS,
        help="fp32 (TF32 off, as EDM), tf32 (CUDA GPUs of compute capability 8+), or bf16 autocast "
        "(fp32 weights, optimizer state and EMA; no grad scaler); docs/scale.md",
    )
    p.add_argument(
        "--channels-last",
        action="store_true",
        help="images: NHWC memory order (a GPU option; no gain on the CPU, measured in BENCHMARKS.md)",
    )
    p.add_argument("--compile", action="store_true", help="run the forward through torch.compile (docs/scale.md)")
    p.add_argument(
        "--log",
        metavar="tensorboard|DIR",
        help="write TensorBoard event files: loss, learning rate, "
        "gradient norm, steps per second (into RUN/logs, or DIR); needs pip install 'unnoise[tensorboard]'",
    )
    p.add_argument(
        "--eval-every",
        type=positive("eval-every"),
        metavar="K",
        help="with --log: every K steps, sample "
        "the EMA model and log its main metric beside its floor (W2, or FID and class accuracy) and a "
        "picture of samples",
    )
    add_dist(p)

    p = sub.add_parser("sample", help="draw samples from a trained run")
    p.add_argument("run", help="run folder")
    add_sampling(p)
    p.add_argument(
        "--out",
        required=True,
        help="samples.npy ((n, 2) floats in data units, or images (n, C, H, W) in [0, 1]) or samples.png",
    )

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

    p = sub.add_parser(
        "data",
        help="write real points of a data set",
        description="moons and circles are scikit-learn's (noise 0.05; circles factor 0.5, x2); "
        "see unnoise.data.toy2d for the rest.",
    )
    p.add_argument("name", help=f"{', '.join(data.names())}, or a folder of PNG/JPEG images")
    p.add_argument("--n", type=positive("n"), help="points (default 2000) or images (default: the whole split)")
    p.add_argument(
        "--split",
        default="train",
        choices=tuple(data.SPLITS),
        help="split (default train); images have train and heldout",
    )
    p.add_argument("--seed", type=int, help="draw with this seed instead of the split's (images: which subset of --n)")
    p.add_argument(
        "--size", type=positive("size"), help="images: side in pixels (default 8 digits, 16 mnist, 32 folder)"
    )
    p.add_argument("--channels", type=int, choices=(1, 3), help="images: 1 grayscale or 3 RGB")
    p.add_argument(
        "--out", required=True, help="real.npy ((n, 2) floats, or images (n, C, H, W) in [0, 1]) or real.png"
    )

    cli_flow.add_parsers(sub, positive)
    claims.add_parser(sub)
    export.add_parser(sub)
    web_commands.add_explain(sub)
    web_commands.add_serve(sub, positive)

    p = sub.add_parser("demo", help="train on moons and write every figure into one folder (about a minute)")
    p.add_argument("--out", default="demo", help="output folder (default demo/)")
    p.add_argument(
        "--data",
        default="moons",
        choices=("moons", "digits"),
        help="moons (default, about a minute) or digits (an image run, a few minutes)",
    )
    p.add_argument(
        "--family",
        default="diffusion",
        choices=tuple(FAMILIES),
        help="flow adds the flow pictures: trajectories, paths, velocity, likelihood map",
    )
    return parser


def check_output(path, suffixes):
    path = Path(path)
    if path.suffix not in suffixes:
        raise UnnoiseError(f"--out {path}: write {' or '.join(suffixes)}")
    return path


def write_points(points, out, title):
    """Save (n, 2) points as .npy, or as a scatter plot .png."""
    from .checkpoint import atomic_write
    from .viz import figures2d

    if out.suffix == ".npy":
        atomic_write(out, lambda tmp: np.save(open(tmp, "wb"), points.numpy()))
    else:
        figures2d.save(figures2d.pairs(points, title=title), out)  # a scatter for 2D, pairs beyond
    print(f"wrote {len(points)} points to {out}")


def cmd_train(args):
    from .train import UNCAPPED, train

    cfg = None
    if not args.resume:
        token_settings = {
            k: getattr(args, k)
            for k in ("heads", "levels", "tokens", "scales", "codebook")
            if getattr(args, k) is not None
        }
        cfg = TrainConfig(
            data=args.data or "moons",
            family=args.family,
            prediction=args.prediction,
            schedule=args.schedule,
            steps=args.steps,
            batch_size=args.batch_size,
            lr=args.lr,
            width=args.width,
            depth=args.depth,
            conditional=args.conditional,
            seed=args.seed,
            size=args.size,
            channels=args.channels,
            patch=args.patch,
            min_snr_gamma=args.min_snr_gamma,
            sigma_data=args.sigma_data,
            time_density=args.time_density,
            coupling=args.coupling,
            subset=args.subset,
            subset_part=args.subset_part,
            source=args.source,
            **token_settings,
        )
        if args.checkpoint_every is not None:
            cfg.checkpoint_every = args.checkpoint_every
        if args.seconds is not None and args.steps is None:
            cfg.steps = UNCAPPED
    elif args.checkpoint_every is not None:
        raise UnnoiseError("--checkpoint-every is fixed when a run starts; --resume keeps the run's own")
    run = train(
        cfg,
        args.out,
        resume=args.resume,
        steps=args.steps,
        seconds=args.seconds,
        accumulate=args.accumulate,
        device=args.device,
        precision=args.precision,
        channels_last=args.channels_last,
        compile=args.compile,
        data_path=args.data if args.resume else None,
        log=args.log,
        eval_every=args.eval_every,
    )
    if not dist.is_main():
        return
    kind = (
        f"{run.cfg.prediction}, {run.cfg.schedule}"
        if not run.cfg.discrete
        else f"{sum(p.numel() for p in run.net.parameters()):,} parameters"
    )
    print(f"trained {run.cfg.family} ({kind}) on {run.trained_on} for {run.step} steps: {args.out}")


def sample_run(args, run=None):
    from .run import Run

    run = run or Run.load(args.run, args.data)
    start = time.perf_counter()
    evals = []  # (evaluation index within its batch) per network evaluation
    options = {
        k: getattr(args, k) for k in ("s_churn", "temperature", "top_k", "top_p") if getattr(args, k) is not None
    }
    if args.guidance_ramp:
        options["guidance_ramp"] = True
    if args.label is None and run.images and run.cfg.conditional:
        args.label = guidance.EACH  # image runs: one row per class, and class accuracy
    if args.autoguide is not None:
        options["guide"] = Run.load(args.autoguide)
    points = dist.sample(
        run,
        args.n,
        sampler=args.sampler,
        nfe=args.nfe,
        seed=args.seed,
        eta=args.eta,
        spacing=args.spacing,
        progress=True,
        callback=lambda i, *_: evals.append(i),
        label=args.label,
        guidance=args.guidance,
        **options,
    )
    args.sampler = run.cfg.family if run.cfg.discrete else args.sampler or run.default_sampler
    args.nfe_counted = len(evals) / max(1, evals.count(0))  # evaluations per sample, counted
    args.labels = None
    if args.label is not None or (args.guidance != 1 and args.autoguide is None):  # autoguided: unconditional
        args.labels = guidance.labels(run, args.label, 0, args.n)
    return run, points, time.perf_counter() - start


def cmd_sample(args):
    out = check_output(args.out, (".npy", ".png"))
    run, points, _ = sample_run(args)
    if not dist.is_main():  # under torchrun every process drew its share; rank 0 writes
        return
    title = f"{args.sampler}, {args.nfe_counted:g} NFE"
    if args.autoguide is not None:
        title += f", autoguided (w = {args.guidance:g})"
    if run.images:
        cli_images.write_images(points, out, args.labels, title)
    else:
        write_points(points, out, title)


def cmd_evaluate(args):
    from .metrics.points import report
    from .run import Run

    run = Run.load(args.run, args.data)
    refuse_elsewhere(run.cfg.data)  # before sampling: measuring needs data the run folder cannot name
    if run.cfg.family == "vq":
        return cli_images.evaluate_tokenizer(run, args) if dist.is_main() else None
    run, points, seconds = sample_run(args, run)
    if not dist.is_main():  # the samples are gathered on every process; rank 0 measures
        return
    if run.images:
        return cli_images.evaluate(run, points, args.labels, seconds, args)
    real = [cli_flow.real_points(run, split, args.n, args.label) for split in ("heldout", "fresh")]
    result = report(points, *real)
    result.update(sampler=args.sampler, nfe=args.nfe_counted, sample_seconds=seconds)
    if args.json:
        print(json.dumps(result))
        return
    print(f"{run.cfg.data}, {args.sampler} at {args.nfe_counted:g} NFE, n={result['n']}, {seconds:.2f} s to sample")
    for name in ("w2", "swd", "mmd"):
        print(
            f"  {name:4s} {result[name]:.4f}   floor {result[name + '_floor']:.4f}   ratio {result[name + '_ratio']:.2f}"
        )


def cmd_data(args):
    out = check_output(args.out, (".npy", ".png"))
    if data.is_images(args.name):
        real = data.load(args.name, args.split, args.n, args.seed, args.size, args.channels)
        return cli_images.write_images(
            real.x, out, real.y if real.num_classes else None, f"{real.name} ({args.split}, n={len(real.x)})"
        )
    if args.size is not None or args.channels is not None:
        raise UnnoiseError(f"--size and --channels are for image data, not the 2D set {args.name!r}")
    points = data.load(args.name, args.split, args.n or 2000, seed=args.seed).x
    write_points(points, out, f"{args.name} ({args.split}, n={len(points)})")


def cmd_demo(args):
    from .demo import demo

    demo(args.out, args.family, args.data)


COMMANDS = {
    "train": cmd_train,
    "sample": cmd_sample,
    "evaluate": cmd_evaluate,
    "data": cmd_data,
    "demo": cmd_demo,
    "claims": claims.cmd_claims,
    "export": export.cmd_export,
    "explain": web_commands.cmd_explain,
    "serve": web_commands.cmd_serve,
    **cli_flow.COMMANDS,
}


DISTRIBUTED = ("train", "sample", "evaluate")  # the commands that run under torchrun


def join(args):
    """Under torchrun: check the command runs there, and join the process group (the device's backend)."""
    if not dist.launched():
        return
    if args.command not in DISTRIBUTED:
        raise UnnoiseError(f"{args.command} runs as one process; under torchrun only {', '.join(DISTRIBUTED)} do")
    if args.command != "train":
        args.device = "cpu"  # sampling and measuring run on the CPU
    args.device = dist.init(args.device, args.dist_timeout)


def main(argv=None):
    try:
        args = build_parser().parse_args(argv)
        join(args)
        COMMANDS[args.command](args)
        dist.close()
    except UnnoiseError as err:
        where = f"rank {dist.rank()} of {dist.world()}: " if dist.active() and "rank " not in str(err) else ""
        print(f"unnoise: error: {where}{err}", file=sys.stderr)
        return 2
    except RuntimeError as err:  # a collective outside dist.py's helpers (DDP's own) failed
        if not (dist.active() and dist.is_lost(err)):
            raise
        print(f"unnoise: error: {dist.lost_message(err)}", file=sys.stderr)
        return 2
    except Stopped as stop:  # SIGINT / SIGTERM: the checkpoint is written
        print(f"unnoise: {stop}", file=sys.stderr)
        return stop.code
    except KeyboardInterrupt:
        print("unnoise: interrupted; the last checkpoint is kept", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
