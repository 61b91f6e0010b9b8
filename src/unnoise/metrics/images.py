"""Honest image metrics, each beside its floor: held-out real images scored the same way, at the same n.

Features come from a small classifier trained on the data set itself (metrics/classifier.py), since
Inception features mean nothing at 8x8 or 28x28; each of its 64 features is standardized by its mean
and standard deviation over the training split. The reference is always the training split:

    fid, kid               Frechet and kernel distances of features (Heusel et al. 2017; Binkowski et al. 2018),
                           torchmetrics' implementations fed with our features; for samples, the mean
                           over DRAWS draws of n, each with the held-out images' class counts when the
                           samples carry labels (the held-out split is stratified by class)
    precision, recall      k-NN manifolds in feature space (Kynkaanniemi et al. 2019), k = 3
    class_accuracy         share of class-conditional samples the classifier puts in their class
    fid_level              real data's expected FID level (metrics/level.py): the mean floor over re-splits of the
                           data, each with its own judge, where it is stored (None otherwise); the floor is one
                           draw of it, and a fresh draw of real images scores fid_level on average
    memorization_ratio     median pixel distance from a sample to its nearest training image, over the
                           same for held-out images: >= 0.9 means samples are no nearer the training
                           images than unseen real images are; near 0 means copies
"""

import torch

from ..data.images import load_images
from ..errors import UnnoiseError
from . import classifier as clf
from .distances import fid, kid, standardized

K_NEAREST = 3
DRAWS = 10  # FID and KID of samples: the mean over this many class-matched draws of n samples


def knn_radii(x, k=K_NEAREST):
    """Distance from each row of x (n, d) to its k-th nearest other row: the radius of its ball."""
    dist = torch.cdist(x, x)  # (n, n), zero diagonal
    return dist.kthvalue(k + 1, dim=1).values  # k + 1: the row itself is first


def coverage(points, centres, radii):
    """Share of points (m, d) inside at least one ball (centres (n, d), radii (n,))."""
    dist = torch.cdist(points, centres)  # (m, n)
    return float((dist <= radii[None]).any(1).double().mean())


def precision_recall(real, fake, k=K_NEAREST):
    """Improved precision (fake inside the real manifold) and recall (real inside the fake one) (Kynkaanniemi et al. 2019)."""
    real, fake = torch.as_tensor(real).double(), torch.as_tensor(fake).double()
    precision = coverage(fake, real, knn_radii(real, k))
    recall = coverage(real, fake, knn_radii(fake, k))
    return precision, recall


def nearest_distances(x, reference, batch=500):
    """L2 distance from each image of x to its nearest image in reference: (n,)."""
    x, reference = x.flatten(1).double(), reference.flatten(1).double()
    return torch.cat([torch.cdist(x[i : i + batch], reference).min(1).values for i in range(0, len(x), batch)])


def memorization_ratio(samples, train, heldout):
    """median NN distance of samples to train / median NN distance of held-out images to train (>= 0.9: no copying)."""
    return float(nearest_distances(samples, train).median() / nearest_distances(heldout, train).median())


def class_accuracy(net, samples, labels):
    """Share of samples the classifier assigns to the class they were asked for."""
    return float((clf.predict(net, samples) == torch.as_tensor(labels)).double().mean())


def subset(x, n, seed=0):
    """A fixed random n rows of x: real sets are often sorted by class, so never take the first n."""
    return x[torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))[:n]]


def class_matched(labels, wanted, generator):
    """Rows of labels holding as many of each class as wanted (the real images' labels) does; None when short.

    The held-out split is stratified, so a random draw of samples would add class-proportion noise the
    floor does not have: at n = 359 that alone moved FID by more than the floor itself.
    """
    picks = []
    for c, k in enumerate(torch.bincount(wanted).tolist()):
        rows = torch.nonzero(labels == c).flatten()
        if len(rows) < k:
            return None
        picks.append(rows[torch.randperm(len(rows), generator=generator)[:k]])
    return torch.cat(picks)


def sample_draws(labels, real_labels, total, n, draws=DRAWS, seed=1):
    """draws index sets of n samples each, class-matched to real_labels when the samples have labels."""
    generator, out = torch.Generator().manual_seed(seed), []
    labels = torch.as_tensor(labels) if labels is not None else None
    for _ in range(draws):
        rows = class_matched(labels, real_labels, generator) if labels is not None else None
        out.append(rows if rows is not None else torch.randperm(total, generator=generator)[:n])
    return out


def report(
    samples,
    labels=None,
    source="digits",
    size=None,
    channels=None,
    cache=None,
    verbose=True,
    classifier_seed=clf.SEED,
    kid_too=True,
    compute_level=False,
):
    """Every image metric of samples (N, C, H, W) in [0, 1] against the training split, beside its held-out floor
    (kid_too=False leaves out KID, nine tenths of the time at n = 359; compute_level=True measures real data's
    expected level when it is not stored, training level.SPLITS judges once)."""
    samples = _check(samples, size, channels)
    if labels is not None and len(labels) != len(samples):
        raise UnnoiseError(f"got {len(labels)} labels for {len(samples)} samples")
    size, channels = samples.shape[-1], samples.shape[1]
    train_x, _, _ = load_images(source, "train", size, channels)
    held_x, held_y, _ = load_images(source, "heldout", size, channels)
    net, info = clf.classifier(source, size, channels, cache, verbose, classifier_seed)
    n = min(len(samples), len(held_x))
    if n < K_NEAREST + 2:
        raise UnnoiseError(f"image metrics need at least {K_NEAREST + 2} samples, got {len(samples)}")
    real_rows = subset(torch.arange(len(held_x)), n, seed=2)
    real = held_x[real_rows]
    draws = sample_draws(labels if info["task"] == "classes" else None, held_y[real_rows], len(samples), n)
    f_train, f_all, f_real = standardized(*(clf.features(net, x) for x in (train_x, samples, real)))
    fake, f_fake = samples[draws[0]], f_all[draws[0]]
    out = {"n": n, "reference_n": len(train_x), "classifier_accuracy": info["heldout_accuracy"], "draws": len(draws)}
    fids = torch.tensor([fid(f_all[rows], f_train) for rows in draws])
    out["fid"], out["fid_std"], out["fid_floor"] = float(fids.mean()), float(fids.std()), fid(f_real, f_train)
    out.update(expected_level(out["fid_floor"], source, size, channels, classifier_seed, cache, compute_level, verbose))
    if kid_too:
        kids = torch.tensor([kid(f_all[rows], f_train) for rows in draws])
        out["kid"], out["kid_std"] = float(kids[:, 0].mean()), float(kids[:, 1].mean())
        out["kid_floor"], out["kid_floor_std"] = kid(f_real, f_train)
    out["precision"], out["recall"] = precision_recall(subset(f_train, n, seed=3), f_fake)
    out["precision_floor"], out["recall_floor"] = precision_recall(subset(f_train, n, seed=3), f_real)
    out["class_accuracy"] = out["class_accuracy_floor"] = None
    if labels is not None and info["task"] == "classes":
        out["class_accuracy"] = class_accuracy(net, samples, labels)
        out["class_accuracy_floor"] = info["heldout_accuracy"]
    out["memorization_ratio"] = memorization_ratio(fake, train_x, real)
    out["memorization_ratio_floor"] = 1.0
    return out


def expected_level(floor, source, size, channels, judge_seed, cache=None, compute=False, verbose=True):
    """{"fid_level", "fid_level_splits"}: real data's expected level at this n, the floor times the stored
    level's ratio to the canonical floor (equal to the level itself at the full held-out n); None when unknown."""
    from .level import level

    found = level(source, size, channels, judge_seed, cache, compute, verbose)
    if found is None:
        return {"fid_level": None, "fid_level_splits": None}
    return {"fid_level": floor * found["ratio"], "fid_level_splits": len(found["floors"])}


def _check(samples, size, channels):
    """Samples as float (N, C, H, W) in [0, 1], with a one-line error for the wrong shape."""
    samples = torch.as_tensor(samples).float()
    if samples.dim() != 4:
        raise UnnoiseError(f"image metrics need samples shaped (N, C, H, W), got {tuple(samples.shape)}")
    if size is not None and tuple(samples.shape[-2:]) != (size, size):
        raise UnnoiseError(f"samples are {samples.shape[-2]}x{samples.shape[-1]}, the data set is {size}x{size}")
    if channels is not None and samples.shape[1] != channels:
        raise UnnoiseError(f"samples have {samples.shape[1]} channels, the data set has {channels}")
    return samples.clamp(0, 1)


def level_line(result):
    """The FID's second yardstick: real data's expected level, or how to measure it."""
    if result.get("fid_level") is None:
        return f"  {'':<19s} {'':9s}   real data's expected level: not measured for this data set (--level measures it)"
    return (
        f"  {'fid / level':<19s} {result['fid'] / result['fid_level']:9.4f}   real data's expected level {result['fid_level']:.4f} "
        f"(the mean floor of {result['fid_level_splits']} re-splits: a fresh real draw scores it)"
    )


def format_report(result):
    """One line per metric: value, floor and, where it helps, what a good value is."""
    lines = [
        f"image metrics at n={result['n']} against {result['reference_n']} training images "
        f"(features from a classifier with held-out accuracy {result['classifier_accuracy']:.3f})"
    ]
    for name, hint in (
        ("fid", "lower is better"),
        ("kid", "lower is better"),
        ("precision", "higher is better"),
        ("recall", "higher is better"),
        ("class_accuracy", "higher is better"),
        ("memorization_ratio", ">= 0.9: no nearer the training images than unseen real ones"),
    ):
        if result.get(name) is not None:
            lines.append(
                f"  {name:<19s} {result[name]:9.4f}   floor (held-out real) {result[name + '_floor']:9.4f}   {hint}"
            )
        if name == "fid":
            lines.append(level_line(result))
    return "\n".join(lines)
