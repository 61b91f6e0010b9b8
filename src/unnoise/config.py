"""The configuration of a training run, checked once up front."""

import math
from dataclasses import asdict, dataclass, fields

from . import data, source
from .coupling import COUPLINGS
from .errors import UnnoiseError, choose, positive_int
from .paths import CONTINUOUS_SCHEDULES, DISCRETE_SCHEDULES, TIME_DENSITIES

# family -> (default schedule, default prediction, schedules allowed, predictions allowed)
FAMILIES = {
    # v on the VP cosine path (Salimans & Ho 2022; Nichol & Dhariwal 2021) measured best for diffusion on moons and
    # digits (docs/performance.md); DDPM's eps on linear betas is --prediction eps --schedule linear
    "diffusion": ("vp-cosine", "v", DISCRETE_SCHEDULES + ("vp-cosine",), ("eps", "x0", "v")),
    "flow": ("rectified", "velocity", ("rectified", "vp-cosine"), ("velocity",)),
    "edm": ("edm", "edm", ("edm",), ("edm",)),  # Karras et al. 2022: preconditioned F, log-normal sigma
}
# the token families (images only): a tokenizer, raster autoregressive (pixels or VQ tokens), VAR next-scale
TOKEN_FAMILIES = ("vq", "ar", "var")
ALL_FAMILIES = tuple(FAMILIES) + TOKEN_FAMILIES


# what a setting left at None becomes, for 2D points (MLP) and for images (U-Net)
DEFAULTS = {
    "points": {"steps": 2000, "batch_size": 512, "lr": 4e-3, "width": 64, "ema": 0.999},
    "images": {"steps": 6000, "batch_size": 32, "lr": 3e-3, "width": 32, "ema": 0.995},
}
# the token families' own defaults (over DEFAULTS["images"]): a tokenizer is used as trained (its codebook
# restarts do not average well) and keeps the batch of 128 it was measured with (the U-Nets' batch of 32 spends
# a time budget on more steps; docs/performance.md). The transformer of raster AR and VAR measured best at 3
# blocks, batch 16 and lr 4e-3 (digits: raster AR 0.970 and FID 3.8 x in 180 s, VAR 0.963 and 12.5 x in 108 s,
# against 0.917 and 7.6 x, 0.135 and 173 x for 5 blocks at batch 64 and 2e-3; docs/performance.md, "Raster AR
# and VAR")
TRANSFORMER = {"steps": 6000, "batch_size": 16, "lr": 4e-3, "width": 64, "depth": 3, "ema": 0.999}
FAMILY_DEFAULTS = {
    "vq": {"steps": 800, "batch_size": 128, "lr": 2e-3, "width": 16, "ema": 0.0, "warmup": 100},
    "ar": TRANSFORMER,
    "var": TRANSFORMER,
}
DEFAULT_SCALES = {8: "1,2,3,4,6,8", 7: "1,2,3,5,7"}  # latent side -> VAR's scale list (others: 1,2,..)


# the largest value a real run would use; a config.json beyond them (from a stranger's run folder) is refused
# before anything is allocated (a width of 10^9 would ask for exabytes)
BOUNDS = {
    "steps": 10**9,
    "batch_size": 2**16,
    "width": 4096,
    "depth": 64,
    "heads": 64,
    "codebook": 2**16,
    "latent_channels": 1024,
    "size": 1024,
    "patch": 64,
    "checkpoint_every": 10**9,
    "warmup": 10**9,
    "subset": 10**8,
    "subset_part": 10**8,
    "seed": 2**63 - 1,
    "dim": 4096,
}  # levels has its own check: 2..256
FLOATS = ("lr", "ema", "grad_clip", "label_dropout", "min_snr_gamma", "sigma_data")
TEXTS = (
    "data",
    "family",
    "prediction",
    "schedule",
    "coupling",
    "tokens",
    "scales",
    "tokenizer_hash",
    "source",
    "time_density",
)


def check_bounds(cfg):
    """Types and sizes of every setting, before any is used: one line naming the setting and its limit."""
    for name, limit in BOUNDS.items():
        value = getattr(cfg, name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise UnnoiseError(f"{name} must be a whole number, got {value!r}")
        if isinstance(value, (int, float)) and abs(value) > limit:
            raise UnnoiseError(f"{name} = {value} is beyond what a run can use (at most {limit})")
    for name in FLOATS:
        value = getattr(cfg, name)
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value)
        ):
            raise UnnoiseError(f"{name} must be a finite number, got {value!r}")
    for name in TEXTS:
        value = getattr(cfg, name)
        if value is not None and not (isinstance(value, str) and len(value) <= 4096):
            raise UnnoiseError(f"{name} must be a short text, got {str(value)[:60]!r}")
    if not isinstance(cfg.conditional, bool):
        raise UnnoiseError(f"conditional must be true or false, got {cfg.conditional!r}")


def default_time_density(kind, schedule):
    """Logit-normal times for images on continuous-time paths (docs/performance.md), uniform otherwise."""
    return "logit-normal" if kind == "images" and schedule in CONTINUOUS_SCHEDULES else "uniform"


@dataclass
class TrainConfig:
    """Everything that decides a training run; saved in the run's config.json."""

    data: str = "moons"
    family: str = "diffusion"
    prediction: str | None = None  # family default: v for diffusion, velocity for flow
    schedule: str | None = None  # family default: vp-cosine for diffusion, rectified for flow
    steps: int | None = None  # None: the data kind's default (DEFAULTS), written into config.json
    batch_size: int | None = None
    lr: float | None = None
    warmup: int | None = None  # learning-rate warm-up steps (default 200; vq: 100, also its autoencoder warm-up)
    ema: float | None = None
    grad_clip: float = 1.0
    width: int | None = None  # MLP units, or the U-Net's base channels
    depth: int | None = None  # MLP residual blocks (2D, default 3) or transformer blocks (default 4)
    conditional: bool = False
    label_dropout: float = 0.1  # classifier-free guidance: share of labels replaced by 'no class'
    coupling: str = "independent"  # noise-data pairing: independent, ot, sinkhorn; reflow (pairs.safetensors)
    seed: int = 0
    checkpoint_every: int = 1000
    min_snr_gamma: float | None = None  # Min-SNR-gamma loss weighting (Hang et al. 2023) for eps, x0 or v
    sigma_data: float = 1.0  # EDM's data std; model units have unit variance (EDM's images: 0.5)
    size: int | None = None  # images: side in pixels (default 8 digits, 16 mnist, 32 folder)
    channels: int | None = None  # images: 1 or 3 (default: as the images are)
    patch: int | None = None  # images, continuous families: the U-Net's patch side (default 2 from 24 px, else 1)
    heads: int = 4  # ar, var: attention heads
    levels: int | None = None  # ar over pixels: intensity levels K (default 17 for digits, 16 otherwise)
    tokens: str | None = None  # ar: None (pixels) or a tokenizer ("auto", or a vq run folder); var: default auto
    scales: str | None = None  # vq: VAR's scale list, e.g. "1,2,3,4,6,8" (one side, e.g. "8": single scale)
    codebook: int = 64  # vq: codes V in the one shared codebook
    latent_channels: int = 16  # vq: channels C of the latent and of each code
    tokenizer_hash: str | None = None  # ar, var: sha256 of the tokenizer's weights, checked when the run is loaded
    dim: int | None = None  # points: numbers per point (2 for the built-in sets; a file's D), set by train
    subset: int | None = None  # train on this many rows of the training split only (data.subset) ...
    subset_part: int = 0  # ... part P of its disjoint parts of that size (Kadkhodaie et al.'s halves)
    source: str = "gaussian"  # flow: where the path starts, N(0, I) or points (source.py; Tong et al. 2023)
    time_density: str | None = None  # training times: uniform or logit-normal (SD3) on vp-cosine / rectified paths

    def __post_init__(self):
        check_bounds(self)
        # the settings given, of those whose default depends on the data and family (a time budget reads "steps")
        self.given = frozenset(f.name for f in fields(self) if f.default is None and getattr(self, f.name) is not None)
        choose("family", self.family, ALL_FAMILIES)
        if self.subset is not None:
            self.subset = positive_int("subset", self.subset)
        if not (isinstance(self.subset_part, int) and self.subset_part >= 0):
            raise UnnoiseError(f"subset-part must be a whole number >= 0, got {self.subset_part!r}")
        if self.subset_part and self.subset is None:
            raise UnnoiseError("--subset-part picks one part of --subset N rows; give --subset too")
        kind = "images" if data.is_images(self.data) else "points"
        defaults = {**DEFAULTS[kind], "depth": 3, "warmup": 200, **FAMILY_DEFAULTS.get(self.family, {})}
        for name, value in defaults.items():
            if getattr(self, name) is None:
                setattr(self, name, value)
        if self.family in TOKEN_FAMILIES:
            if self.source != "gaussian":
                raise UnnoiseError(f"--source belongs to flow matching on points, not the {self.family} family")
            if self.time_density is not None:
                raise UnnoiseError(f"--time-density belongs to diffusion and flow, not the {self.family} family")
            return self._check_tokens(kind)
        if kind == "images":
            from .data.images import default_size
            from .nets.unet import FACTOR, check_size, default_patch

            self.size = positive_int("size", self.size or default_size(self.data))
            self.patch = positive_int("patch", self.patch or default_patch(self.size))
            check_size(self.size, FACTOR * self.patch)
            if self.channels not in (None, 1, 3):
                raise UnnoiseError(f"channels must be 1 (grayscale) or 3 (RGB), got {self.channels}")
        elif self.size is not None or self.channels is not None or self.patch is not None:
            raise UnnoiseError(f"--size, --channels and --patch are for image data, not the 2D set {self.data!r}")
        schedule, prediction, schedules, predictions = FAMILIES[self.family]
        self.schedule = choose(f"schedule for {self.family}", self.schedule or schedule, schedules)
        self.prediction = choose(f"prediction for {self.family}", self.prediction or prediction, predictions)
        choose("coupling", self.coupling, COUPLINGS + ("reflow",))
        self.time_density = choose(
            "time density", self.time_density or default_time_density(kind, self.schedule), TIME_DENSITIES
        )
        if self.time_density != "uniform" and self.schedule not in CONTINUOUS_SCHEDULES:
            raise UnnoiseError(
                f"--time-density {self.time_density} needs a continuous-time path "
                f"({', '.join(CONTINUOUS_SCHEDULES)}), not the {self.schedule} schedule"
            )
        source.check(self)
        for name in ("steps", "batch_size", "width", "depth", "checkpoint_every"):
            setattr(self, name, positive_int(name.replace("_", "-"), getattr(self, name)))
        if not self.lr > 0:
            raise UnnoiseError(f"lr must be positive, got {self.lr}")
        if self.min_snr_gamma is not None and not (self.min_snr_gamma > 0 and self.prediction in ("eps", "x0", "v")):
            raise UnnoiseError(
                f"min-snr-gamma must be positive and applies to eps, x0 or v prediction "
                f"(got {self.min_snr_gamma} with {self.prediction})"
            )
        if not self.sigma_data > 0:
            raise UnnoiseError(f"sigma-data must be positive, got {self.sigma_data}")
        if not (0 <= self.ema < 1 and 0 <= self.label_dropout < 1):
            raise UnnoiseError("ema and label-dropout must lie in [0, 1)")

    def _check_tokens(self, kind):
        """The token families' settings: images only, no schedule or prediction, a valid scale list."""
        if kind != "images":
            raise UnnoiseError(
                f"the {self.family} family models images (digits, mnist or a folder), "
                f"not the 2D set {self.data!r}; for points use diffusion, flow or edm"
            )
        if self.schedule is not None or self.prediction is not None or self.patch is not None:
            raise UnnoiseError(
                f"--schedule, --prediction and --patch belong to diffusion, flow and edm, not {self.family}"
            )
        if self.coupling != "independent" or self.min_snr_gamma is not None:
            raise UnnoiseError(f"--coupling and --min-snr-gamma belong to the continuous families, not {self.family}")
        from .data.images import default_size
        from .tokenizers.multiscale import latent_side, parse_scales

        self.size = positive_int("size", self.size or default_size(self.data))
        for name in (
            "steps",
            "batch_size",
            "width",
            "depth",
            "checkpoint_every",
            "heads",
            "codebook",
            "latent_channels",
        ):
            setattr(self, name, positive_int(name.replace("_", "-"), getattr(self, name)))
        if self.family in ("ar", "var") and self.width % self.heads:
            raise UnnoiseError(f"--width {self.width} must be a multiple of the {self.heads} heads")
        if self.family == "vq":
            side = latent_side(self.size)
            self.scales = ",".join(map(str, parse_scales(self.scales or DEFAULT_SCALES.get(side, side), side)))
        elif self.scales is not None:
            raise UnnoiseError(
                "--scales belongs to the tokenizer (--family vq); ar and var take the scales of "
                "their tokenizer (--tokens RUN, or auto)"
            )
        if self.family == "var" and self.tokens is None:
            self.tokens = "auto"
        if self.family == "ar" and self.tokens is None:
            self.levels = positive_int("levels", self.levels or (17 if self.data == "digits" else 16))
            if self.levels < 2 or self.levels > 256:
                raise UnnoiseError(f"--levels must lie in 2..256, got {self.levels}")
        elif self.levels is not None:
            raise UnnoiseError("--levels is for raster AR over pixels (--family ar without --tokens)")
        if not self.lr > 0:
            raise UnnoiseError(f"lr must be positive, got {self.lr}")
        if not (0 <= self.ema < 1 and 0 <= self.label_dropout < 1):
            raise UnnoiseError("ema and label-dropout must lie in [0, 1)")

    @property
    def discrete(self):
        return self.family in TOKEN_FAMILIES

    def to_dict(self):
        return asdict(self)

    @classmethod
    def from_dict(cls, values):
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise UnnoiseError(f"config.json has unknown training settings {unknown}")
        if values.get("size") is not None and values.get("family") not in TOKEN_FAMILIES:
            values = {"patch": 1, **values}  # an image run saved before patches existed had none
        if values.get("family") not in TOKEN_FAMILIES:
            values = {"time_density": "uniform", **values}  # nor a run saved before time densities
        return cls(**values)
