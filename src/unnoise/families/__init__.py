"""Every family behind one small face, so the training loop, `Run` and the CLI never branch on names.

Each module offers
    build(cfg, num_classes, folder) -> nn.Module          the network a config describes
    prepare(cfg, dataset, folder, progress) -> (rows, y)  training tensors, indexed by row, and labels
    loss(net, cfg, rows, y, generator) -> scalar           one training loss on the rows of a batch
and optionally
    draw(cfg, rows, generator) -> rows                     the batch's randomness (times, noise), drawn for the
                                                           whole global batch before it is split over processes
    WHOLE_BATCH = True                                     its forward changes state from the batch it sees (the
                                                           tokenizer's k-means and dead-code restarts), so every
                                                           process computes the whole batch instead of a shard
and the token families also
    sample(run, n, seed, label, guidance, ...) -> images   sample i depends only on (seed, i)
continuous.py holds diffusion, flow and edm (one Gaussian path core); tokenizer.py the VQ tokenizers;
autoregressive.py raster AR over pixels or tokens; var.py VAR's next-scale prediction.
"""

from . import autoregressive, continuous, tokenizer, var

MODULES = {
    "diffusion": continuous,
    "flow": continuous,
    "edm": continuous,
    "vq": tokenizer,
    "ar": autoregressive,
    "var": var,
}


def of(cfg):
    """The module of cfg's family."""
    return MODULES[cfg.family]


def draw(family, cfg, rows, generator):
    """The family's draws for the global batch (continuous families: t and noise); rows unchanged otherwise."""
    return family.draw(cfg, rows, generator) if hasattr(family, "draw") else rows


def whole_batch(family):
    """Whether every process must compute the whole batch (see WHOLE_BATCH above)."""
    return getattr(family, "WHOLE_BATCH", False)
