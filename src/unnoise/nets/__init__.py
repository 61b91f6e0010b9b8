"""Networks. Every one is called as net(x, t, y=None): x (B, ...), t (B,) in [0, 1], y (B,) class or None."""

from .mlp import MLP

__all__ = ["MLP"]
