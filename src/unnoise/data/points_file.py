"""Your own points: a .npy array (N, D) or a .csv / .txt table (a header line is optional), any D >= 1.

A file has no second independent draw, so its rows are split once by a fixed seeded order: 60% train,
20% held-out, and 20% "fresh", a disjoint part of the same file that stands in for a new draw in every
real-vs-real floor. Rows holding NaN or infinity are refused with their row numbers.
"""

import functools
from pathlib import Path

import numpy as np
import torch

from ..errors import UnnoiseError, refuse_elsewhere

SUFFIXES = (".npy", ".csv", ".txt")
PARTS = {"train": (0.0, 0.6), "heldout": (0.6, 0.8), "fresh": (0.8, 1.0)}
SPLIT_SEED = 0
MAX_BYTES = 1 << 30  # 1 GiB: larger files are refused before they are read
MAX_DIM = 4096
MIN_ROWS = 10


def is_file(name):
    """A point file by its suffix; a .txt file of prose is text (text.py), not a table."""
    from .text import is_text_file

    return Path(str(name)).suffix.lower() in SUFFIXES and not is_text_file(name)


def read_table(path):
    """A .csv (commas) or .txt (whitespace) table as floats; the first line is skipped when it is a header."""
    lines = [line for line in path.read_text(errors="replace").splitlines() if line.strip()]
    sep = "," if path.suffix.lower() == ".csv" else None
    try:
        [float(v) for v in lines[0].split(sep)] if lines else None
        start = 0
    except ValueError:
        start = 1  # a header
    rows = []
    for number, line in enumerate(lines[start:], 1):
        try:
            rows.append([float(v) for v in line.split(sep)])
        except ValueError:
            raise UnnoiseError(f"{path}: row {number} is not numbers: {line[:60]!r}") from None
        if len(rows[-1]) != len(rows[0]):
            raise UnnoiseError(f"{path}: row {number} has {len(rows[-1])} columns, the first row {len(rows[0])}")
    return np.array(rows, dtype=np.float64).reshape(len(rows), -1)


@functools.lru_cache(maxsize=4)
def read(name):
    """The file's rows as a float32 tensor (N, D), checked: no pickles, no NaN or infinity, a sane size."""
    path = Path(name)
    if not path.is_file():
        raise UnnoiseError(f"point file {path} does not exist")
    if path.stat().st_size > MAX_BYTES:
        raise UnnoiseError(f"point file {path} is larger than {MAX_BYTES >> 30} GiB")
    if path.suffix.lower() == ".npy":
        try:
            array = np.load(path, allow_pickle=False)
        except (ValueError, OSError, EOFError) as err:
            raise UnnoiseError(f"{path} is not a readable .npy array of numbers ({str(err).splitlines()[0]})") from None
    else:
        array = read_table(path)
    if array.dtype.kind not in "fiub" or array.ndim not in (1, 2):
        raise UnnoiseError(f"{path} holds a {array.dtype} array of shape {array.shape}; give numbers shaped (N, D)")
    array = np.asarray(array, dtype=np.float64).reshape(len(array), -1)
    bad = np.flatnonzero(~np.isfinite(array).all(1))
    if len(bad):
        raise UnnoiseError(
            f"{path}: rows {', '.join(str(i + 1) for i in bad[:5])}{' ...' if len(bad) > 5 else ''} "
            "hold NaN or infinity; remove or fix them"
        )
    if len(array) < MIN_ROWS or not 1 <= array.shape[1] <= MAX_DIM:
        raise UnnoiseError(
            f"{path} has {len(array)} rows of {array.shape[1]} numbers; need at least {MIN_ROWS} "
            f"rows and 1..{MAX_DIM} numbers per row"
        )
    return torch.from_numpy(array).float()


def part(name, split):
    """The rows of one split: a fixed seeded order of the file, cut 60 / 20 / 20."""
    refuse_elsewhere(name)  # before read's cache, where an Elsewhere equals its plain path
    x = read(name)
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(SPLIT_SEED))
    lo, hi = (round(f * len(x)) for f in PARTS[split])
    return x[order[lo:hi]]
