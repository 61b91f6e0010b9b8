"""What a family is: its facts and the few functions the pipeline, the trainer and `Run` call, and the parts it
may ask the pipeline for. A family never trains, loads or copies another run: it declares what it needs
(`requires`), and the pipeline hands it over, ready (VAR's train.py passes the VQ-VAE into the model it builds;
diffusers' from_pretrained assembles vae/ and unet/ the same way)."""

from collections.abc import Callable
from dataclasses import dataclass, field

from ..errors import positive_int


@dataclass(frozen=True)
class Stage:
    """A run this one is built on, kept in its folder under the part's name: trained there from `settings`, or
    copied from the run folder `given`. `pin` names the setting that keeps the sha256 of its weights (checked
    whenever the run is loaded); check(folder, cfg, net) refuses a run that does not fit (cfg None: no run there;
    net None: its config alone, before anything is built)."""

    settings: dict
    pin: str
    check: Callable
    given: str | None = None
    note: str = ""  # what the progress line says when it is trained


@dataclass(frozen=True)
class Pairs:
    """The (x0, eps, y) pairs a reflow run trains on, in its folder's pairs.safetensors (pipeline.reflow writes them)."""


@dataclass(frozen=True)
class Pool:
    """The points a flow starts from in place of N(0, I), kept in the run folder (source.py)."""

    name: str


@dataclass(frozen=True)
class Family:
    """One family's facts; subclasses add build / prepare / loss / sample.

    discrete: samples token by token (no Gaussian path, no sampler or NFE); generates: draws samples at all (a
    tokenizer does not); kinds: the data it models ("points", "images", "text"); whole_batch: its forward changes state
    from the batch it sees (the tokenizer's k-means and dead-code restarts), so every process computes the whole
    batch instead of a shard; defaults: settings a config left at None becomes, over the data kind's."""

    name: str
    help: str
    discrete: bool = False
    generates: bool = True
    kinds: tuple = ("points", "images")
    whole_batch: bool = False
    defaults: dict = field(default_factory=dict)
    order: str | None = None  # how a sample is built, as the figures show it: denoising, raster, scales or unmasking
    options: tuple = ()  # the sampling options it takes (Run.sample's keywords beyond n, seed, label, guidance)
    reflows: bool = False  # its ODE maps noise to data in pairs that reflow can retrain on straighter

    def on(self, kind):
        """The family that serves this kind of data under this name (ar: raster over images, left to right on
        text); itself by default."""
        return self

    def check(self, cfg, kind):
        """Fill this family's own defaults into cfg and refuse settings it cannot use (one line each)."""

    def upgrade(self, values):
        """config.json's settings of a run saved by an older unnoise, with what it did not yet know filled in."""
        return values

    def requires(self, cfg):
        """{name: Stage | Pairs | Pool}: what the pipeline must provide before build and prepare."""
        return {}

    def draw(self, cfg, rows, generator, parts=None):
        """The batch's randomness, drawn for the whole global batch before it is split over processes."""
        return rows

    def path(self, cfg):
        """The Gaussian path its runs sample over (paths.py), or None."""
        return None

    def describe(self, cfg, net):
        """The words after the family's name in `unnoise train`'s last line."""
        return f"{sum(p.numel() for p in net.parameters()):,} parameters"

    def role(self, run):
        """The part the run plays on the explainer page (web/explain.py's roles), or None."""
        return None

    def default_sampler(self, run):
        """The sampler a draw uses when none is named (samplers.py), or None: it samples its own way."""
        return None

    def sampler_options(self, sampler=None, nfe=None):
        """The keywords that ask a run of this family for `sampler` at `nfe` ({}: it samples its own way)."""
        return {}

    def figure_sampler(self, run):
        """The deterministic sampler the figures use, or None: it samples its own way."""
        return None

    def label(self, run):
        """The run's family in a figure's title."""
        return self.name

    def sampler_name(self, run, sampler=None):
        """The sampler a draw uses, in words (what `sample` and `evaluate` print)."""
        return self.name

    def forward_passes(self, run, nfe=None):
        """Network calls per sample."""
        raise NotImplementedError

    def report(self, run, n, seed, likelihood=False):
        """What `unnoise evaluate` adds to the image metrics: {} by default."""
        return {}

    def report_lines(self, run, result):
        """report()'s part of a result, in words (after the image metrics)."""
        return []


def positive_settings(cfg, names):
    """Each named setting as a whole number > 0 (one line naming the first that is not)."""
    for name in names:
        setattr(cfg, name, positive_int(name.replace("_", "-"), getattr(cfg, name)))
