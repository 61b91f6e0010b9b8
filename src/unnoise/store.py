"""The run-folder format, below `Run`: config.json (checked before anything is allocated), the EMA weights in
model.safetensors, and the parts a family requires, each in its own subfolder pinned by the sha256 of its weights.
Loading a folder runs no code and reads nothing its config names outside the folder."""

import hashlib
from pathlib import Path

import torch

from . import families
from .checkpoint import load_json, load_weights
from .config import TrainConfig
from .errors import UnnoiseError
from .families.base import Stage

FORMAT, VERSION = "unnoise-run", 1  # config.json's "format" and "version": bump VERSION when the layout changes


def check_format(config, path):
    """Refuse a config.json that is not an unnoise run's, or whose format version this unnoise does not read."""
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise UnnoiseError(f'{path} is not an unnoise run\'s config (no "format": "{FORMAT}")')
    version = config.get("version")
    if isinstance(version, int) and not isinstance(version, bool) and version > VERSION:
        raise UnnoiseError(
            f"{path} was written by a newer unnoise (format version {version}); this one reads "
            f"version {VERSION}: upgrade unnoise to load it"
        )
    if version != VERSION:
        raise UnnoiseError(
            f"{path} has format version {version!r}, which this unnoise does not read (it reads version {VERSION})"
        )


def run_config(cfg, dataset, step, net=None, seconds=None, timed=False):
    """What config.json holds (with a tokenizer's code use per scale, the training seconds so far, and
    whether they were a --seconds budget)."""
    config = {
        "format": FORMAT,
        "version": VERSION,
        "step": step,
        "train": cfg.to_dict(),
        "num_classes": dataset.num_classes,
    }
    if seconds is not None:
        config["train_seconds"] = round(float(seconds), 1)
    if timed:
        config["timed"] = True
    if hasattr(net, "summary"):
        config["codes"] = net.summary()
    if dataset.kind == "points":  # the map into model units, so sampling never needs the data
        config["units"] = {k: getattr(dataset, k).tolist() for k in UNITS}
    return config


UNITS = ("shift", "scale", "low", "high")


def read_units(config, dim, path):
    """config.json's units (four lists of dim finite floats, scale > 0) as tensors; None in a run saved before them."""
    units = config.get("units")
    if units is None:
        return None
    try:
        out = {k: torch.tensor([float(v) for v in units[k]], dtype=torch.float32) for k in UNITS}
    except (KeyError, TypeError, ValueError) as err:
        raise UnnoiseError(f"{path} has malformed units ({err})") from None
    if any(len(v) != dim or not torch.isfinite(v).all() for v in out.values()) or not (out["scale"] > 0).all():
        raise UnnoiseError(f"{path}: units must be {dim} finite numbers each, with scale > 0")
    return out


def read_config(folder):
    """(config.json as a dict, its TrainConfig) of a run folder, checked: one line when it is not a run's."""
    folder = Path(folder)
    config = load_json(folder / "config.json")
    check_format(config, folder / "config.json")
    try:
        cfg = TrainConfig.from_dict(config["train"])
        int(config["step"]), int(config["num_classes"])
    except (KeyError, TypeError, ValueError) as err:
        raise UnnoiseError(f"{folder / 'config.json'} is not an unnoise run config ({err})") from None
    return config, cfg


def digest(folder):
    """sha256 of a run's weights."""
    return hashlib.sha256((Path(folder) / "model.safetensors").read_bytes()).hexdigest()


def load_net(folder, cfg=None, config=None):
    """The EMA network of the run in folder (eval mode), with the parts it was built on; (config, cfg, net)."""
    folder = Path(folder)
    if cfg is None:
        config, cfg = read_config(folder)
    net = families.of(cfg).build(cfg, int(config["num_classes"]), load_parts(cfg, folder))
    load_weights(net, folder / "model.safetensors")
    return config, cfg, net.eval()


def load_stage(folder, stage):
    """A Stage's run in folder (cfg, net; frozen), refused by the stage's check when it does not fit: first by its
    config (nothing is built for a run of the wrong kind, so a stranger's folder cannot nest runs), then its net."""
    if not (Path(folder) / "config.json").exists():
        stage.check(folder, None, None)
    config, cfg = read_config(folder)
    stage.check(folder, cfg, None)
    _, cfg, net = load_net(folder, cfg, config)
    stage.check(folder, cfg, net)
    return cfg, net.requires_grad_(False)


def load_parts(cfg, folder):
    """{name: frozen network} of the Stage parts a run of cfg was trained on, each from folder/name and checked
    against the hash its config pins."""
    parts = {}
    for name, part in families.of(cfg).requires(cfg).items():
        if not isinstance(part, Stage):
            continue  # pairs and source points are for training; sampling reads the source in Run.source
        sub = Path(folder) / name
        if not (sub / "model.safetensors").exists():
            raise UnnoiseError(f"{folder} is a {cfg.family} run without its {name} ({sub} is missing)")
        pinned = getattr(cfg, part.pin)
        if pinned and digest(sub) != pinned:
            raise UnnoiseError(
                f"{sub} is not the {name} {folder} was trained on (its codebook and weights "
                "differ); put back the original or train the prior again"
            )
        parts[name] = load_stage(sub, part)[1]
    return parts
