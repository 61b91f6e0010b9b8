"""Every family behind one small face, so the training loop, `Run` and the CLI never branch on names.

Each module offers
    build(cfg, num_classes, folder) -> nn.Module          the network a config describes
    prepare(cfg, dataset, folder, progress) -> (rows, y)  training tensors, indexed by row, and labels
    loss(net, cfg, rows, y, generator) -> scalar           one training loss on the rows of a batch
and the token families also
    sample(run, n, seed, label, guidance, ...) -> images   sample i depends only on (seed, i)
continuous.py holds diffusion, flow and edm (one Gaussian path core); tokenizer.py the VQ tokenizers;
autoregressive.py raster AR over pixels or tokens; var.py VAR's next-scale prediction.
"""

from . import autoregressive, continuous, tokenizer, var

MODULES = {"diffusion": continuous, "flow": continuous, "edm": continuous,
           "vq": tokenizer, "ar": autoregressive, "var": var}


def of(cfg):
    """The module of cfg's family."""
    return MODULES[cfg.family]
