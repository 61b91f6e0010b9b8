"""Above the trainer: a run's prerequisites trained, reused or copied first, then the run itself.

A family declares what it needs (`requires`: a tokenizer run, reflow's pairs, a flow's source points); this module
provides it, ready, to `train.train`, which trains one stage and knows no family by name. It is also the one
"train or reuse" every front end calls (get_or_train), and reflow (Liu et al. 2022): a flow's own (noise, sample)
pairs, then a run trained on them from its weights.
"""

import dataclasses
import shutil
from pathlib import Path

from . import data, dist, families
from .checkpoint import atomic_write, load_tensors, save_tensors
from .config import TrainConfig
from .errors import UnnoiseError, positive_int
from .families.base import Pairs, Pool, Stage
from .reflow import PAIRS, generate_pairs
from .run import Run
from .source import FILE as SOURCE_FILE
from .source import Source, pool
from .source import write as write_pool
from .store import digest, load_stage, read_config
from .train import layout
from .train import train as train_stage

UNCAPPED = 10**9  # the step cap of a run trained for a time budget with no step count of its own
COPIED = ("model.safetensors", "config.json")  # a copied stage's files, config.json last: half a copy is no run


def train(cfg, out, resume=False, steps=None, progress=True, seconds=None, data_path=None, **options):
    """Train cfg into the run folder `out` (continuing it when resume), its prerequisites first; returns the Run.

    steps: with resume, raise the run's step count; seconds: a wall-clock budget (a config given no steps is then
    uncapped); data_path: where to read cfg.data's rows when that differs from its name (a loaded run's own copy;
    --data for a run folder whose config names a path outside it); config.json keeps cfg.data as named.
    options go to train.train (init, accumulate, device, precision, callback, channels_last, compile, hooks).
    """
    folder = Path(out)
    if seconds is not None and (resume or not seconds > 0):
        raise UnnoiseError(
            "a time budget needs a positive number of seconds and a fresh run (not --resume), "
            f"got {seconds}" + (" with --resume" if resume else "")
        )
    cfg = resolve_config(cfg, folder, resume, steps, data_path)
    if seconds is not None and "steps" not in cfg.given:
        cfg = dataclasses.replace(cfg, steps=UNCAPPED)
    dataset, rows_from = training_data(cfg, folder, resume, data_path)
    family = families.of(cfg)
    layout(cfg.batch_size, options.get("accumulate", 1), 1 if family.whole_batch else dist.world())
    parts = fulfil(cfg, folder, dataset, progress)
    train_stage(cfg, folder, dataset, parts, resume, progress, seconds=seconds, data_name=rows_from, **options)
    return Run.load(folder)


def resolve_config(cfg, folder, resume, steps, data_path=None):
    """The config to train with: the saved one when resuming (steps may be raised; a --data given must name the
    data it was trained on), else cfg."""
    exists = (folder / "config.json").exists()
    if resume:
        if not exists:
            raise UnnoiseError(f"nothing to resume: {folder} holds no run (its config.json is missing)")
        _, cfg = read_config(folder)
        if steps is not None:
            cfg.steps = steps
        if data_path is not None and data_path != cfg.data:
            raise UnnoiseError(
                f"{folder} was trained on {cfg.data!r}; --resume continues on the same data, not {data_path!r}"
            )
        return cfg
    if exists:
        raise UnnoiseError(f"{folder} already holds a run; pass --resume to continue it, or choose another --out")
    return cfg


def training_data(cfg, folder, resume, data_path=None):
    """(the training split cfg trains on (its subset), where its rows are read), with cfg's channels or point
    dimension set from it; a copy of a point file is kept in the run folder, so the run never needs a path outside
    it."""
    rows_from = data_path or (data.confined(cfg.data, folder) if resume else cfg.data)
    dataset = data.load(rows_from, "train", size=cfg.size, channels=cfg.channels)
    if cfg.subset is not None:
        dataset = data.subset(dataset, cfg.subset, cfg.subset_part)
    if dataset.kind == "text":
        if cfg.alphabet is not None and cfg.alphabet != dataset.alphabet:
            raise UnnoiseError(f"{rows_from} holds other characters than the text {folder} was trained on")
        cfg.alphabet = dataset.alphabet
    elif cfg.size is not None:
        cfg.channels = dataset.x.shape[1]
    else:
        cfg.dim = dataset.x.shape[1]  # 2 for the built-in sets, D for a point file
    if dist.is_main():
        data.keep_copy(rows_from, folder)
    if cfg.conditional and dataset.num_classes < 2:
        how = "" if cfg.data in data.images.SOURCES else " (put images in one subfolder per class)"
        raise UnnoiseError(f"{cfg.data} has no classes{how}; train it without --conditional")
    return dataset, rows_from


def fulfil(cfg, folder, dataset, progress=True):
    """{name: ready part} for what cfg's family requires: stages trained, reused or copied into folder/name (their
    hash pinned in cfg), reflow's pairs, the source's points in the data's model units."""
    parts = {}
    for name, part in families.of(cfg).requires(cfg).items():
        if isinstance(part, Stage):
            parts[name] = stage(cfg, folder / name, part, progress)
        elif isinstance(part, Pairs):
            tensors = load_tensors(folder / PAIRS)
            parts[name] = tensors["x0"], tensors["eps"], tensors["y"]
        elif isinstance(part, Pool):
            write_pool(cfg, folder)
            dist.barrier()  # rank 0 has written the pool before anyone reads it
            parts[name] = Source(part.name, pool(folder, cfg.dim or 2), dataset.shift, dataset.scale)
    return parts


def stage(cfg, sub, part, progress=True):
    """The stage's network in sub: kept when there, else trained there or copied from part.given; cfg pins its
    hash."""
    present = (sub / "config.json").exists()
    dist.barrier()  # every process has looked before rank 0 writes (under torchrun)
    if not present and part.given is None:
        if progress:
            print(f"training {part.note or 'the ' + sub.name} into {sub}")
        train(TrainConfig(**part.settings), sub, progress=progress)
    elif not present:
        given = Path(part.given)
        load_stage(given, part)  # refuse anything that does not fit before copying
        for name in COPIED if dist.is_main() else ():
            atomic_write(sub / name, lambda tmp, name=name: shutil.copyfile(given / name, tmp))
        dist.barrier()
    if not getattr(cfg, part.pin):
        setattr(cfg, part.pin, digest(sub))
    return load_stage(sub, part)[1]


def reflow(source, out, pairs=20000, steps=None, lr=None, seed=0, progress=True):
    """Reflow the flow run `source` into the new run folder `out`, starting from its weights; returns the new Run."""
    run = write_pairs(source, out, pairs, seed)
    cfg = dataclasses.replace(
        run.cfg, data=run.trained_on, coupling="reflow", seed=seed, steps=steps or run.cfg.steps, lr=lr or run.cfg.lr
    )
    return train(cfg, out, progress=progress, init=run.net.state_dict(), data_path=run.cfg.data)


def write_pairs(source, folder, pairs=20000, seed=0):
    """Check that source is a flow run, write its pairs into the new run folder; returns the source Run."""
    run = Run.load(source)
    if not run.family.reflows:
        raise UnnoiseError(f"{source} is a {run.cfg.family} run; reflow needs a flow model (--family flow)")
    if run.latent is not None:
        raise UnnoiseError(f"{source} is a latent run; reflow retrains pixel flows (train one without --latent)")
    folder = Path(folder)
    if (folder / "config.json").exists():
        raise UnnoiseError(f"{folder} already holds a run; choose another --out (or resume it with train --resume)")
    x0, eps, y = generate_pairs(run, positive_int("pairs", pairs), seed)
    save_tensors(folder / PAIRS, {"x0": x0, "eps": eps, "y": y})
    if not run.source.gaussian:  # the source run's pool, so the new run reads no source path
        save_tensors(folder / SOURCE_FILE, {"points": pool(run.folder, run.shape[0]).contiguous()})
    return run


def get_or_train(cfg, folder, seconds=None, progress=True, base=None, pairs=None, hooks=()):
    """The run in folder if it holds one; else cfg trained there (for `seconds` of wall time when given: steps
    then only cap it if cfg was given them). base, pairs: a reflow's flow run and its (noise, sample) pair count,
    for a cfg with coupling 'reflow' (cfg.steps: its steps); hooks: train.train's."""
    folder = Path(folder)
    if (folder / "config.json").exists():
        run = Run.load(folder)
        if progress:
            print(f"reusing {folder} ({run.step} steps)")
        return run
    if progress:
        print(f"training {cfg.family} on {cfg.data} into {folder}" + (f" for {seconds:g} s" if seconds else ""))
    if cfg.coupling == "reflow":
        if base is None:
            raise UnnoiseError(f"{folder}: a reflow run starts from a flow run; name it (base)")
        return reflow(base, folder, pairs=pairs or 20000, steps=cfg.steps, seed=cfg.seed, progress=progress)
    return train(cfg, folder, seconds=seconds, progress=progress, hooks=hooks)
