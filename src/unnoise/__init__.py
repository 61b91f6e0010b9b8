"""unnoise: understand, train, sample and measure diffusion and flow models."""

from . import data
from .config import TrainConfig
from .errors import UnnoiseError
from .paths import make_path
from .pipeline import train
from .run import Run

__all__ = ["data", "TrainConfig", "UnnoiseError", "make_path", "Run", "train"]
__version__ = "0.1.0"
