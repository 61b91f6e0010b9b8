"""Data sets by name: 2D point sets (toy2d.py), images (images.py: digits, mnist, emoji, or a folder) and text
(text.py: kjv, markov, or a .txt file).

2D splits are seeded the same everywhere: `train` (seed 0), `heldout` (seed 1) and `fresh` (seed 2,
a second independent real draw used only for the real-vs-real floor of every metric). Images have
a fixed `train` / `heldout` split (images.split_mask); their floors compare held-out with train.
"""

import dataclasses
import functools
import os
from pathlib import Path

import torch

from ..errors import Elsewhere, UnnoiseError, bounded, refuse_elsewhere
from . import images, points_file, text, toy2d
from .dataset import Dataset

SPLITS = {"train": 0, "heldout": 1, "fresh": 2}
TRAIN_SIZE_2D = 20000


def names():
    return toy2d.NAMES + images.SOURCES + text.NAMES


COPY = "points.npy"  # a run's own copy of the point file it was trained on
TEXT_COPY = "text.txt"  # a run's own copy of the text file (or folder, joined) it was trained on


def keep_copy(name, folder):
    """A point file's rows (float32, the order unchanged, so the split is too), or a text file's text, copied into
    the run folder, once."""
    if kind(name) == "text" and name not in text.NAMES and not (Path(folder) / TEXT_COPY).exists():
        from ..checkpoint import atomic_write

        words = text.read_file(name)
        atomic_write(Path(folder) / TEXT_COPY, lambda tmp: Path(tmp).write_text(words, encoding="utf-8"))
        return
    if not points_file.is_file(name) or (Path(folder) / COPY).exists():
        return
    import numpy as np

    from ..checkpoint import atomic_write

    array = points_file.read(name).numpy()

    def write(tmp):
        with open(tmp, "wb") as f:
            np.save(f, array)

    atomic_write(Path(folder) / COPY, write)


def confined(name, folder):
    """The data a loaded run may read: a built-in set, its own copy of a point file (a plain file, not a link), or
    an Elsewhere that every reader refuses."""
    if name in toy2d.NAMES or name in images.SOURCES or name in text.NAMES:
        return name
    words = Path(folder) / TEXT_COPY
    if words.is_file() and not words.is_symlink():
        return str(words)
    copy = Path(folder) / COPY
    if points_file.is_file(name) and copy.is_file() and not copy.is_symlink():
        return str(copy)
    return Elsewhere(name)


def kind(name):
    """ "points", "images" or "text" for a data set's name or path; raises for a name that is none of the known."""
    refuse_elsewhere(name)
    if name in text.NAMES or text.is_text_file(name) or text.is_text_folder(name):
        return "text"
    if name in toy2d.NAMES or points_file.is_file(name):
        return "points"
    if name in images.SOURCES or os.sep in str(name) or Path(name).exists():
        return "images"
    raise UnnoiseError(
        f"unknown data set {name!r}; choose one of {', '.join(names())}, or give a point file (.npy, .csv, "
        "or a .txt table), a text file (.txt) or a folder of PNG/JPEG images (a path)"
    )


def is_images(name):
    """True for digits, mnist, emoji or an image folder; raises for a name that is none of the known sets."""
    return kind(name) == "images"


def load(name, split="train", n=None, seed=None, size=None, channels=None):
    """The named data set's split: n points (default: the whole training draw, or 2000) or images
    (default: all of the split; n picks a seeded subset); seed overrides a 2D split's seed."""
    if split not in SPLITS:
        raise UnnoiseError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
    found = kind(name)
    if found == "images":
        return _image_split(name, split, n, seed, size, channels)
    if found == "text":
        return _text_split(name, split)
    if split not in SPLITS:
        raise UnnoiseError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
    if points_file.is_file(name):
        return _file_split(name, split, n, seed)
    n = bounded("n", n if n is not None else (TRAIN_SIZE_2D if split == "train" else 2000))
    x, y = toy2d.draw(name, n, SPLITS[split] if seed is None else seed)
    return Dataset(name, x, y, toy2d.CLASSES[name], *_train_units(name))


@functools.cache
def _train_units(name):
    """Per-coordinate mean and std of the training draw (the map into model units), and its range there."""
    x, _ = toy2d.draw(name, TRAIN_SIZE_2D, SPLITS["train"])
    shift, scale = x.mean(0), x.std(0)
    z = (x - shift) / scale
    return shift, scale, z.min(0).values, z.max(0).values


def _file_split(name, split, n, seed):
    """A split of a point file (points_file.PARTS); n rows, a seeded choice of them when seed is given."""
    x = points_file.part(name, split)
    if n is not None:
        n = min(bounded("n", n), len(x))
        rows = (
            torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))[:n] if seed is not None else slice(n)
        )
        x = x[rows]
    train = points_file.part(name, "train")
    shift, scale = train.mean(0), train.std(0).clamp(min=1e-8)
    z = (train - shift) / scale
    return Dataset(
        str(name), x, torch.zeros(len(x), dtype=torch.long), 0, shift, scale, z.min(0).values, z.max(0).values
    )


def _image_split(name, split, n, seed, size, channels):
    """An image split as a Dataset: x (N, C, H, W) in [0, 1], its shift and scale to model units in [-1, 1] beside it;
    n images chosen by a seeded permutation."""
    dataset = images.image_dataset(name, split, size, channels)
    if n is not None:
        n = bounded("n", n)
        keep = torch.randperm(len(dataset.x), generator=torch.Generator().manual_seed(seed or 0))[:n]
        dataset.x, dataset.y = dataset.x[keep], dataset.y[keep]
    return dataset


def _text_split(name, split):
    """A text split as a Dataset: x the character ids (N,) of the split, the alphabet beside them."""
    found = text.load(name)
    if split == "fresh" and found.chain is None:
        raise UnnoiseError(f"{name} has a train and a heldout split of text; only markov has a fresh draw")
    x = found.train if split == "train" else found.heldout if split == "heldout" else text.markov_text("fresh")
    none = torch.zeros(0)
    return Dataset(str(name), x, torch.zeros(0, dtype=torch.long), 0, none, none, none, none, found.alphabet)


SUBSET_SEED = 0  # one fixed order of the training split, so parts of one size never overlap


def subset(dataset, size, part=0):
    """Rows [part * size, (part + 1) * size) of a fixed seeded order of the split: disjoint parts for different part
    (text: those characters of the split as they stand, a contiguous slice)."""
    if dataset.kind == "text":
        if (part + 1) * size > len(dataset.x):
            raise UnnoiseError(
                f"--subset {size} --subset-part {part} needs {(part + 1) * size} characters, but the training "
                f"split of {dataset.name} has {len(dataset.x)}"
            )
        return dataclasses.replace(dataset, x=dataset.x[part * size : (part + 1) * size])
    order = torch.randperm(len(dataset.x), generator=torch.Generator().manual_seed(SUBSET_SEED))
    if (part + 1) * size > len(order):
        raise UnnoiseError(
            f"--subset {size} --subset-part {part} needs {(part + 1) * size} rows, but the training "
            f"split of {dataset.name} has {len(order)}; the parts of size {size} are 0..{len(order) // size - 1}"
        )
    rows = order[part * size : (part + 1) * size]
    return dataclasses.replace(dataset, x=dataset.x[rows], y=dataset.y[rows])
