"""The configuration of a training run, checked once up front.

Each setting is defined once, as a field with its metadata (help, bound, kind): `unnoise train`'s arguments, the
size limits a stranger's config.json is held to, and the command that rebuilds a run are made from it. A family's
own defaults and checks live with the family (families/); what a setting left at None becomes is resolved in
one place, __post_init__, which remembers which of those settings were given.
"""

import math
from dataclasses import asdict, dataclass, field, fields

from . import data, families
from .errors import UnnoiseError, positive_int
from .families.continuous import Continuous

# what a setting left at None becomes, for 2D points (MLP) and for images (U-Net); a family's own (families/) override
DEFAULTS = {
    "points": {"steps": 2000, "batch_size": 512, "lr": 4e-3, "width": 64, "ema": 0.999, "depth": 3, "warmup": 200},
    "images": {"steps": 6000, "batch_size": 32, "lr": 3e-3, "width": 32, "ema": 0.995, "depth": 3, "warmup": 200},
    "text": {},  # the text families carry their own (families/text.py)
}
LATENT_DEFAULT = {"emoji": "auto"}  # data where `unnoise train` picks a latent: it measures best there (docs/latent.md)


def setting(default=None, help="", kind="text", bound=None, cli=True, **argparse):
    """A TrainConfig field: help (with {points} / {images} for the data kinds' defaults), kind (int, float, text,
    flag), bound (the largest value a real run would use: a config.json beyond it is refused before anything is
    allocated; a width of 10^9 would ask for exabytes), cli (an `unnoise train` argument), argparse (choices,
    metavar)."""
    meta = {"help": help, "kind": kind, "bound": bound, "cli": cli, "argparse": argparse}
    return field(default=default, metadata=meta)


@dataclass
class TrainConfig:
    """Everything that decides a training run; saved in the run's config.json."""

    data: str = setting(
        "moons",
        "data set: {data}, your own points (a .npy (N, D) array or a .csv / .txt table, any "
        "D), a folder of PNG/JPEG images, one subfolder per class or none, or your own text (a .txt "
        "file of prose, or a folder of them) (default moons)",
        metavar="NAME",
    )
    family: str = setting("diffusion", "{families}; default diffusion", choices="families")
    prediction: str | None = setting(
        None, "network target (default: v for diffusion, velocity for flow)", choices="predictions"
    )
    schedule: str | None = setting(
        None,
        "noise schedule (default: vp-cosine for diffusion, rectified for flow; a "
        "diffusers export needs a beta schedule: linear, scaled_linear, cosine)",
        choices="schedules",
    )
    steps: int | None = setting(None, "default {points[steps]} for 2D data, {images[steps]} for images", "int", 10**9)
    batch_size: int | None = setting(
        None, "default {points[batch_size]} for 2D data, {images[batch_size]} for images", "int", 2**16
    )
    lr: float | None = setting(None, "default {points[lr]:g} for 2D data, {images[lr]:g} for images", "float")
    warmup: int | None = setting(
        None,
        "learning-rate warm-up steps (default 200; vq: 100, also its autoencoder warm-up)",
        "int",
        10**9,
        cli=False,
    )
    ema: float | None = setting(None, "EMA decay", "float", cli=False)
    grad_clip: float = setting(1.0, "gradient clipping norm", "float", cli=False)
    width: int | None = setting(
        None,
        "default {points[width]} for 2D data, {images[width]} for images (MLP units or U-Net base channels)",
        "int",
        4096,
    )
    depth: int | None = setting(
        None, "MLP blocks (2D data, default 3) or transformer blocks (ar, var: default {transformer_depth})", "int", 64
    )
    conditional: bool = setting(False, "condition on the data set's class labels", "flag")
    label_dropout: float = setting(
        0.1, "classifier-free guidance: share of labels replaced by 'no class'", "float", cli=False
    )
    coupling: str = setting(
        "independent",
        "noise-data pairing in each batch: independent, exact minibatch OT (OT-CFM), or Sinkhorn",
        choices="couplings",
    )  # reflow: pairs.safetensors (pipeline.py)
    seed: int = setting(0, "", "int", 2**63 - 1)
    checkpoint_every: int = setting(1000, "write a checkpoint every K steps (default 1000)", "int", 10**9)
    min_snr_gamma: float | None = setting(None, "Min-SNR-gamma loss weighting (Hang et al. 2023), e.g. 5", "float")
    sigma_data: float = setting(1.0, "edm family: data std (default 1)", "float")  # model units: unit variance
    size: int | None = setting(
        None,
        "images: side in pixels, a multiple of 2 (default 8 for digits, 16 for mnist (28 native), 32 for emoji (64 rendered) and a folder)",
        "int",
        1024,
    )
    channels: int | None = setting(None, "images: 1 grayscale or 3 RGB (default: as stored)", "int", choices=(1, 3))
    patch: int | None = setting(
        None,
        "images, diffusion / flow / edm: the U-Net folds p x p pixel patches into "
        "channels first (default 2 from 24 px, so 28x28 MNIST runs at 14x14; else 1)",
        "int",
        64,
    )
    heads: int = setting(4, "ar, var: attention heads (default 4)", "int", 64)
    levels: int | None = setting(
        None, "ar over pixels: intensity levels K, 2..256 (default 17 for digits, which have 17; 16 otherwise)", "int"
    )  # its own check: 2..256
    tokens: str | None = setting(
        None,
        "ar: model the tokens of a single-scale tokenizer run (or 'auto': train one "
        "into the run folder first); var: its multi-scale tokenizer (default auto)",
        metavar="RUN",
    )
    scales: str | None = setting(
        None,
        "vq: VAR's scale sides, rising to the latent side (default 1,2,3,4,6,8 for an "
        "8x8 latent; one side, e.g. 8, gives a single-scale tokenizer)",
    )
    codebook: int = setting(64, "vq: codes in the shared codebook (default 64)", "int", 2**16)
    latent_channels: int | None = setting(
        None, "ae: channels of the latent (default 4); vq: of the latent and of each code (default 16)", "int", 1024
    )
    latent: str | None = setting(
        None,
        "diffusion, flow, edm and the few-step families: train and sample in the latent of this autoencoder "
        "run (--family ae), or 'auto': train one into the run folder first (latent diffusion, Rombach et al. 2022); "
        "'none': pixels. Default: pixels, except emoji, where `unnoise train` picks auto (it measures 3x better)",
        metavar="RUN",
    )
    autoencoder_hash: str | None = setting(None, "latent runs: sha256 of the autoencoder's weights", cli=False)
    latent_shift: float | None = setting(
        None, "latent runs: the latents' mean on the training split", "float", cli=False
    )
    latent_scale: float | None = setting(
        None, "latent runs: the latents' std on the training split", "float", cli=False
    )
    net: str | None = setting(
        None,
        "images, diffusion / flow / edm and the few-step families: the denoiser, unet or transformer (DiT: "
        "patches, adaLN-Zero; default unet)",
        choices=("unet", "transformer"),
    )
    tokenizer_hash: str | None = setting(None, "ar, var: sha256 of the tokenizer's weights", cli=False)
    fold_guidance: float | None = setting(
        None,
        "meanflow, --conditional: classifier-free guidance weight folded into the training target, so one "
        "network call samples guided (Geng et al. 2025, eq. 19; default 1: none)",
        "float",
    )
    teacher: str | None = setting(
        None,
        "consistency: distil this diffusion or flow run of the same data (copied into the run folder); "
        "without it, consistency training from scratch",
        metavar="RUN",
    )
    teacher_hash: str | None = setting(None, "consistency: sha256 of the teacher's weights", cli=False)
    dim: int | None = setting(None, "points: numbers per point (set by training)", "int", 4096, cli=False)
    context: int | None = setting(
        None, "text: characters per training window, the longest sample (default 256)", "int", 4096
    )
    alphabet: str | None = setting(None, "text: the characters of the data (set by training)", cli=False)
    subset: int | None = setting(
        None,
        "train on N rows of the training split only (a fixed seeded order), e.g. to see memorization at small N",
        "int",
        10**8,
    )
    subset_part: int = setting(0, "which part of that order: parts of one size never overlap (default 0)", "int", 10**8)
    source: str = setting(
        "gaussian",
        "flow: where the path starts: gaussian (default), a built-in set (8gaussians: "
        "Tong et al. 2023's 8 gaussians -> moons) or a point file of the data's dimension "
        "(docs/flow.md)",
        metavar="NAME",
    )
    time_density: str | None = setting(
        None,
        "diffusion / flow: how training times are drawn, uniform or logit-normal "
        "(SD3; default logit-normal for images on the vp-cosine and rectified paths, "
        "else uniform)",
    )

    def __post_init__(self):
        check_bounds(self)
        family = families.get(self.family)
        # the settings given, of those whose default depends on the data and family (a time budget reads "steps")
        self.given = frozenset(f.name for f in fields(self) if f.default is None and getattr(self, f.name) is not None)
        if self.subset is not None:
            self.subset = positive_int("subset", self.subset)
        if not (isinstance(self.subset_part, int) and self.subset_part >= 0):
            raise UnnoiseError(f"subset-part must be a whole number >= 0, got {self.subset_part!r}")
        if self.subset_part and self.subset is None:
            raise UnnoiseError("--subset-part picks one part of --subset N rows; give --subset too")
        # a saved text run knows its kind from its alphabet, whatever its data path holds now
        kind = "text" if self.alphabet is not None else data.kind(self.data)
        if kind != "text" and self.context is not None:
            raise UnnoiseError(f"--context is for text data, not {self.data!r}")
        family = family.on(kind)
        if kind == "text" and kind not in family.kinds:
            raise UnnoiseError(
                f"{self.data} is text, and the {family.name} family models {' and '.join(family.kinds)}; "
                "for text use ar, mdlm or duo"
            )
        for name, value in {**DEFAULTS[kind], **family.defaults}.items():
            if getattr(self, name) is None:
                setattr(self, name, value)
        family.check(self, kind)
        if not self.lr > 0:
            raise UnnoiseError(f"lr must be positive, got {self.lr}")
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
        family = families.FAMILIES.get(values.get("family", cls.family))
        if "latent" not in values and values.get("family") != "vq":  # saved before latents: 16 meant nothing there
            values = {k: v for k, v in values.items() if k != "latent_channels"}
        return cls(**(values if family is None else family.upgrade(values)))


SETTINGS = {f.name: f for f in fields(TrainConfig)}


def check_bounds(cfg):
    """Types and sizes of every setting, before any is used: one line naming the setting and its limit."""
    for name, f in SETTINGS.items():
        value, kind, bound = getattr(cfg, name), f.metadata["kind"], f.metadata["bound"]
        if value is None:
            continue
        if kind == "int" and bound is not None:
            if isinstance(value, bool) or not isinstance(value, (int, float, str)):
                raise UnnoiseError(f"{name} must be a whole number, got {value!r}")
            if isinstance(value, (int, float)) and abs(value) > bound:
                raise UnnoiseError(f"{name} = {value} is beyond what a run can use (at most {bound})")
        elif kind == "float":
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise UnnoiseError(f"{name} must be a finite number, got {value!r}")
        elif kind == "text" and not (isinstance(value, str) and len(value) <= 4096):
            raise UnnoiseError(f"{name} must be a short text, got {str(value)[:60]!r}")
        elif kind == "flag" and not isinstance(value, bool):
            raise UnnoiseError(f"{name} must be true or false, got {value!r}")


def train_arguments(cfg, trained_on, skip=("data", "family", "tokens", "steps")):
    """The `unnoise train` arguments in which cfg differs from its data's and family's defaults, in field order
    (what a command that rebuilds the run says beside --data, --family, --tokens and its length)."""
    default = TrainConfig(data=trained_on, family=cfg.family)
    words = []
    for name, f in SETTINGS.items():
        value = getattr(cfg, name)
        if not f.metadata["cli"] or name in skip or value is None or value == getattr(default, name):
            continue
        flag = "--" + name.replace("_", "-")
        words.append(flag if f.metadata["kind"] == "flag" else f"{flag} {value}")
    if trained_on in LATENT_DEFAULT and cfg.latent is None and isinstance(families.get(cfg.family), Continuous):
        words.append("--latent none")  # the command line would otherwise pick the latent for this data
    return words
