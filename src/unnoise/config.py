"""The configuration of a training run, checked once up front."""

from dataclasses import asdict, dataclass, fields

from . import data
from .coupling import COUPLINGS
from .errors import UnnoiseError, choose, positive_int
from .paths import DISCRETE_SCHEDULES

# family -> (default schedule, default prediction, schedules allowed, predictions allowed)
FAMILIES = {
    "diffusion": ("linear", "eps", DISCRETE_SCHEDULES + ("vp-cosine",), ("eps", "x0", "v")),
    "flow": ("rectified", "velocity", ("rectified", "vp-cosine"), ("velocity",)),
    "edm": ("edm", "edm", ("edm",), ("edm",)),      # Karras et al. 2022: preconditioned F, log-normal sigma
}


# what a setting left at None becomes, for 2D points (MLP) and for images (U-Net)
DEFAULTS = {
    "points": {"steps": 3000, "batch_size": 512, "lr": 2e-3, "width": 256, "ema": 0.999},
    "images": {"steps": 3000, "batch_size": 128, "lr": 3e-3, "width": 32, "ema": 0.995},
}


@dataclass
class TrainConfig:
    """Everything that decides a training run; saved in the run's config.json."""

    data: str = "moons"
    family: str = "diffusion"
    prediction: str | None = None     # family default: eps for diffusion, velocity for flow
    schedule: str | None = None       # family default: linear for diffusion, rectified for flow
    steps: int | None = None          # None: the data kind's default (DEFAULTS), written into config.json
    batch_size: int | None = None
    lr: float | None = None
    warmup: int = 200
    ema: float | None = None
    grad_clip: float = 1.0
    width: int | None = None          # MLP units, or the U-Net's base channels
    depth: int = 3                    # MLP residual blocks (2D only)
    conditional: bool = False
    label_dropout: float = 0.1        # classifier-free guidance: share of labels replaced by 'no class'
    coupling: str = "independent"     # noise-data pairing: independent, ot, sinkhorn; reflow (pairs.safetensors)
    seed: int = 0
    checkpoint_every: int = 1000
    min_snr_gamma: float | None = None  # Min-SNR-gamma loss weighting (Hang et al. 2023) for eps, x0 or v
    sigma_data: float = 1.0           # EDM's data std; model units have unit variance (EDM's images: 0.5)
    size: int | None = None           # images: side in pixels (default 8 digits, 16 mnist, 32 folder)
    channels: int | None = None       # images: 1 or 3 (default: as the images are)

    def __post_init__(self):
        choose("family", self.family, tuple(FAMILIES))
        kind = "images" if data.is_images(self.data) else "points"
        for name, value in DEFAULTS[kind].items():
            if getattr(self, name) is None:
                setattr(self, name, value)
        if kind == "images":
            from .data.images import default_size
            from .nets.unet import FACTOR, check_size
            self.size = check_size(positive_int("size", self.size or default_size(self.data)), FACTOR)
            if self.channels not in (None, 1, 3):
                raise UnnoiseError(f"channels must be 1 (grayscale) or 3 (RGB), got {self.channels}")
        elif self.size is not None or self.channels is not None:
            raise UnnoiseError(f"--size and --channels are for image data, not the 2D set {self.data!r}")
        schedule, prediction, schedules, predictions = FAMILIES[self.family]
        self.schedule = choose(f"schedule for {self.family}", self.schedule or schedule, schedules)
        self.prediction = choose(f"prediction for {self.family}", self.prediction or prediction, predictions)
        choose("coupling", self.coupling, COUPLINGS + ("reflow",))
        for name in ("steps", "batch_size", "width", "depth", "checkpoint_every"):
            setattr(self, name, positive_int(name.replace("_", "-"), getattr(self, name)))
        if not self.lr > 0:
            raise UnnoiseError(f"lr must be positive, got {self.lr}")
        if self.min_snr_gamma is not None and not (self.min_snr_gamma > 0 and self.prediction in ("eps", "x0", "v")):
            raise UnnoiseError(f"min-snr-gamma must be positive and applies to eps, x0 or v prediction "
                               f"(got {self.min_snr_gamma} with {self.prediction})")
        if not self.sigma_data > 0:
            raise UnnoiseError(f"sigma-data must be positive, got {self.sigma_data}")
        if not (0 <= self.ema < 1 and 0 <= self.label_dropout < 1):
            raise UnnoiseError("ema and label-dropout must lie in [0, 1)")

    def to_dict(self):
        return asdict(self)

    @classmethod
    def from_dict(cls, values):
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise UnnoiseError(f"config.json has unknown training settings {unknown}")
        return cls(**values)
