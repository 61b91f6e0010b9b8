"""Real data's expected FID level: the mean of the floor over re-splits of the data, each with its own judge.

The image floor (metrics/images.py) is one draw: the held-out split scored against the training split. A fresh
draw of real images, the perfect sampler, scores that floor's expected value, not the one draw: 1.07-1.35 x the
canonical floor on the digits under the three judges, 0.92 x on emoji (docs/images.md). So every image figure is
also quoted against the expected level, as the 2D sets' floor is the mean of several real draws:

    level = mean over SPLITS re-splits k of FID(held-out_k, train_k) under a judge trained on train_k

Each re-split holds out the same share of every class as the canonical one (data.images.split_mask with seed
1000 + k) and trains the judge afresh on its training part with the judge's own seed. The result is kept as
`level-KEY.json` beside the judge KEY it belongs to: in the package for the built-in sets (measured by
`benchmarks/floor_noise.py --write`), else in the user cache once computed. It stores `ratio`, the level over
the canonical floor at the full held-out n, and a report at another n quotes fid_floor * ratio.
"""

import statistics
import sys
import time
from importlib import resources
from pathlib import Path

from tqdm import tqdm

from ..checkpoint import cache_dir, load_json, save_json
from ..data.images import SPLIT_SEED, load_all, split_mask
from ..errors import UnnoiseError
from . import classifier as clf
from .distances import fid, standardized

SPLITS = 3  # re-splits behind a level (the shipped ones too)
FIRST_SPLIT_SEED = 1000  # re-split k uses split seed 1000 + k, as benchmarks/floor_noise.py always has


def resplit_floor(x, y, task, split_seed, judge_seed, judge=None):
    """(FID of the held-out part against the training part, the judge's held-out accuracy, held-out n) for one
    split of every image x (N, C, H, W) with labels y; judge: a trained one to use instead of training afresh."""
    train, held = split_mask(y, seed=split_seed)
    tx, ty, hx, hy = x[train], y[train], x[held], y[held]
    if task == "rotation":  # the judge learns quarter turns; its features are then taken of the upright images
        (tx, ty), (hx, hy) = clf.rotated(tx, ty), clf.rotated(hx, hy)
    net = judge if judge is not None else clf.train(tx, ty, int(ty.max()) + 1, seed=judge_seed)
    f_train, f_held = standardized(clf.features(net, x[train]), clf.features(net, x[held]))
    accuracy = float((clf.predict(net, hx) == hy).double().mean())
    return fid(f_held, f_train), accuracy, int(held.sum())


def measure(source, size, channels=None, judge_seed=clf.SEED, splits=SPLITS, cache=None, verbose=True):
    """The level of one data set under one judge, computed now: the canonical floor under the cached judge
    and `splits` re-split floors, each under a judge trained on its own training part."""
    start = time.perf_counter()
    key, task = clf.key_of(source, size, channels, judge_seed)
    x, y, _ = load_all(source, size, channels)
    judge, _ = clf.classifier(source, size, channels, cache, verbose, judge_seed)
    canonical, _, heldout_n = resplit_floor(x, y, task, SPLIT_SEED, judge_seed, judge)
    floors = [
        resplit_floor(x, y, task, FIRST_SPLIT_SEED + k, judge_seed)[0]
        for k in tqdm(
            range(splits), desc=f"re-splits of {source} {size}x{size}, judge {judge_seed}", disable=not verbose
        )
    ]
    return summary(key, canonical, floors, heldout_n, judge_seed, round(time.perf_counter() - start, 1))


def summary(key, canonical, floors, heldout_n, judge_seed, seconds):
    """The stored form of a level: the floors, their mean and sd, and the mean over the canonical floor."""
    mean = statistics.mean(floors)
    return {
        "judge": key,
        "judge_seed": judge_seed,
        "heldout_n": heldout_n,
        "canonical_floor": canonical,
        "split_seeds": [FIRST_SPLIT_SEED + k for k in range(len(floors))],
        "floors": floors,
        "level": mean,
        "level_sd": statistics.stdev(floors) if len(floors) > 1 else 0.0,
        "ratio": mean / canonical,
        "seconds": seconds,
    }


def level(source, size=None, channels=None, judge_seed=clf.SEED, cache=None, compute=False, verbose=True):
    """The stored level of a data set under a judge (the cache first, then the package), or None when there is
    none; compute=True measures it now (SPLITS judges trained afresh) and caches it."""
    key, _ = clf.key_of(source, size, channels, judge_seed)
    name = f"level-{key}.json"
    folder = Path(cache) if cache is not None else cache_dir()
    for path in (folder / name, resources.files(__package__).joinpath(clf.SHIPPED) / name):
        if path.is_file():
            try:
                found = load_json(path)
                if found.get("judge") == key and found.get("ratio", 0) > 0:
                    return found
            except UnnoiseError as err:
                print(f"unnoise: ignoring {path}: {err}", file=sys.stderr)
    if not compute:
        return None
    found = measure(source, size, channels, judge_seed, cache=cache, verbose=verbose)
    try:
        save_json(folder / name, found)
    except OSError as err:
        print(f"unnoise: could not cache the level in {folder} ({err.strerror})", file=sys.stderr)
    return found
