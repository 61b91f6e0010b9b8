"""Time and class embeddings shared by every network."""

import math

import torch
from torch import nn


def sinusoidal(t, dim, max_period=10000.0):
    """Transformer-style sinusoidal features of 1000 t (Vaswani et al. 2017; Ho et al. 2020): (B,) -> (B, dim)."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    angles = 1000.0 * t.float()[:, None] * freqs[None]  # (B, half)
    return torch.cat([torch.cos(angles), torch.sin(angles)], dim=1)  # (B, dim)


class Conditioning(nn.Module):
    """Embed time, plus an optional class whose last index (num_classes) means 'no class' (for guidance)."""

    def __init__(self, dim, num_classes=0):
        super().__init__()
        self.dim, self.num_classes = dim, num_classes
        self.time = nn.Sequential(nn.Linear(dim, dim), nn.SiLU(), nn.Linear(dim, dim))
        self.label = nn.Embedding(num_classes + 1, dim) if num_classes else None

    def forward(self, t, y=None):
        emb = self.time(sinusoidal(t, self.dim).to(self.time[0].weight.dtype))  # (B, dim), in the net's dtype
        if self.label is not None:
            if y is None:
                y = torch.full((t.shape[0],), self.num_classes, dtype=torch.long, device=t.device)
            emb = emb + self.label(y)
        return emb
