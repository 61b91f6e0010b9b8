"""Every family behind one small face, so the trainer, `Run`, the CLI and the page never branch on names.

A family (base.Family) carries its facts (discrete, generates, kinds, defaults, check, role, figure sampler,
forward passes, report) and
    requires(cfg) -> {name: Stage | Pairs | Pool}       what the pipeline must provide first (a tokenizer run,
                                                         reflow's pairs, a flow's source points)
    build(cfg, num_classes, parts) -> nn.Module          the network a config describes
    prepare(cfg, dataset, parts) -> (rows, y)            training tensors, indexed by row, and labels
    draw(cfg, rows, generator, parts) -> rows            the batch's randomness (times, noise), drawn for the
                                                         whole global batch before it is split over processes
    loss(net, cfg, rows, y, generator) -> scalar         one training loss on the rows of a batch
    sample(run, n, seed, label, guidance, ...) -> x      sample i depends only on (seed, i)
continuous.py holds diffusion, flow and edm (one Gaussian path core); autoencoder.py latent diffusion's
autoencoder; tokenizer.py the VQ tokenizers;
autoregressive.py raster AR over pixels or tokens; var.py VAR's next-scale prediction; tokens.py what the
token families share; text.py what the text families share and ar on text, mdlm.py masked and duo.py uniform-state
diffusion on text. Adding a family is one module here and one line below.
"""

from ..errors import choose
from .autoencoder import AE
from .autoregressive import AR
from .consistency import CONSISTENCY
from .continuous import DIFFUSION, EDM, FLOW
from .duo import DUO
from .mdlm import MDLM
from .meanflow import MEANFLOW
from .shortcut import SHORTCUT
from .text import is_text
from .tokenizer import VQ
from .var import VAR

FAMILIES = {f.name: f for f in (DIFFUSION, FLOW, EDM, MEANFLOW, SHORTCUT, CONSISTENCY, AE, VQ, AR, VAR, MDLM, DUO)}


def get(name):
    """The family called name, or one line naming the choices."""
    return FAMILIES[choose("family", name, tuple(FAMILIES))]


def of(cfg):
    """The family of a config (ar on text is the text one)."""
    family = get(cfg.family)
    return family.on("text") if is_text(cfg) else family
