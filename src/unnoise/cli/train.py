"""`unnoise train`: its arguments made from the settings' own definitions (config.py), then the pipeline."""

import sys

from .. import data, dist, families, logs, snapshots
from ..config import DEFAULTS, LATENT_DEFAULT, SETTINGS, TrainConfig
from ..coupling import COUPLINGS
from ..errors import UnnoiseError
from ..families.continuous import Continuous
from ..families.tokens import TRANSFORMER
from ..paths import PREDICTIONS, SCHEDULES
from ..pipeline import train
from .common import add_dist, positive


def choices():
    """The names a setting may take, by the kind its metadata names (families: the registry as it is now)."""
    return {
        "families": tuple(families.FAMILIES),
        "predictions": PREDICTIONS,
        "schedules": SCHEDULES,
        "couplings": COUPLINGS,
    }


def words():
    """What a setting's help may name."""
    return {
        "data": ", ".join(data.names()),
        "families": "; ".join(f"{name} ({f.help})" for name, f in families.FAMILIES.items()),
        "points": DEFAULTS["points"],
        "images": DEFAULTS["images"],
        "transformer_depth": TRANSFORMER["depth"],
    }


def add_setting(p, name, f):
    """One `unnoise train` argument from a TrainConfig field's metadata (defaults left to the config)."""
    meta = f.metadata
    flag = "--" + name.replace("_", "-")
    if meta["kind"] == "flag":
        return p.add_argument(flag, action="store_true", help=meta["help"])
    options = dict(meta["argparse"])
    if isinstance(options.get("choices"), str):
        options["choices"] = choices()[options["choices"]]
    kind = {"int": positive(name.replace("_", "-")) if meta["bound"] or name == "levels" else int, "float": float}
    if name in ("seed", "subset_part", "channels"):
        kind["int"] = int
    p.add_argument(flag, type=kind.get(meta["kind"]), help=meta["help"].format(**words()), **options)


def add_parser(sub):
    p = sub.add_parser("train", help="train a model into a run folder")
    for name, f in SETTINGS.items():
        if f.metadata["cli"]:
            add_setting(p, name, f)
    p.add_argument("--out", required=True, help="run folder (config.json + model.safetensors)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    p.add_argument(
        "--seconds",
        type=float,
        help="train for this many seconds of wall time: the warm-up ends by "
        "a tenth of it, the learning rate decays over the time and --steps, if given, only caps the steps",
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
        "--tensorboard",
        "--log",  # torchrun takes --log for its own --log-dir: use --tensorboard there
        dest="log",
        nargs="?",
        const="tensorboard",
        metavar="DIR",
        help="write TensorBoard event files: loss, learning rate, gradient norm, steps per second (into RUN/logs, "
        "or DIR); needs pip install 'unnoise[tensorboard]'",
    )
    p.add_argument(
        "--eval-every",
        type=positive("eval-every"),
        metavar="K",
        help="with --tensorboard: every K steps, sample the EMA model and log its main metric beside its floor (W2, "
        "or FID and class accuracy) and a picture of samples",
    )
    p.add_argument(
        "--snapshots",
        action="store_true",
        help="keep the EMA network at 1, 5 and 20 %% of training and the loss curve, in RUN/snapshots (the "
        "explainer's 'watch it learn' replays them)",
    )
    add_dist(p)
    p.set_defaults(command_fn=cmd_train)


def config_of(args):
    """The TrainConfig the arguments describe (settings not given are left to the config's defaults)."""
    given = {name: getattr(args, name) for name, f in SETTINGS.items() if f.metadata["cli"]}
    given = {k: v for k, v in given.items() if v is not None and v is not False or k == "conditional"}
    return TrainConfig(**latent_default({"data": "moons", **given}))


def latent_default(given):
    """--latent none means pixels; without --latent, the data's measured best (emoji: auto), said in one line.

    The command line picks it, not TrainConfig: a run saved with latent None before this default loads as pixels."""
    if given.get("latent") == "none":
        return {k: v for k, v in given.items() if k != "latent"}
    family = families.FAMILIES.get(given.get("family", TrainConfig.family))
    latent = LATENT_DEFAULT.get(given["data"])
    from_data = given.get("coupling") != "reflow" and given.get("teacher") is None
    if "latent" in given or latent is None or not isinstance(family, Continuous) or not from_data:
        return given
    if dist.is_main():
        print(
            f"unnoise: {given['data']} trains in an autoencoder's latent by default (--latent {latent}; at 1,200 s "
            "its FID was a third of the pixel U-Net's, docs/latent.md); --latent none trains on pixels",
            file=sys.stderr,
        )
    return {**given, "latent": latent}


def cmd_train(args):
    if args.resume and args.checkpoint_every is not None:
        raise UnnoiseError("--checkpoint-every is fixed when a run starts; --resume keeps the run's own")
    cfg = None if args.resume else config_of(args)
    hooks = logs.hooks(args.log, args.out, args.eval_every)
    if args.snapshots:
        if args.resume:
            raise UnnoiseError("--snapshots starts with a run: a resumed run keeps what it kept, or nothing")
        hooks.append(snapshots.Snapshots(args.out, args.seconds))
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
        hooks=hooks,
    )
    if dist.is_main():
        words = run.family.describe(run.cfg, run.net)
        print(f"trained {run.cfg.family} ({words}) on {run.trained_on} for {run.step} steps: {args.out}")
