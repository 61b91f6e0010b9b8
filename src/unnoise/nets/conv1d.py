"""Small 1D convolutional networks: a WaveNet-style causal model, a DiffWave-style denoiser and a judge.

All three take (B, C, L) signals of any length L: nothing in them is sized by L.
"""

import math

import torch
import torch.nn.functional as F
from torch import nn

from .embed import Conditioning

DILATIONS = (1, 2, 4, 8, 16, 32)


def gated(h):
    """WaveNet's gated unit tanh(a) * sigmoid(b) over the two halves of the channels (van den Oord et al. 2016, eq. 2)."""
    a, b = h.chunk(2, 1)
    return torch.tanh(a) * torch.sigmoid(b)


class WaveNet(nn.Module):
    """Causal dilated convolutions over quantized samples, a softmax over the next one (van den Oord et al. 2016).

    Input: the previous tokens with a start token first, (B, T); output: (B, levels, T) logits, where
    position i sees tokens 0..i only. A class, when given, enters every gate (WaveNet's global conditioning).
    """

    def __init__(self, levels=256, width=32, dilations=DILATIONS, num_classes=0):
        super().__init__()
        self.levels, self.dilations = levels, tuple(dilations)
        self.receptive = 1 + sum(self.dilations)  # kernel 2: each layer looks d steps further back
        self.embed = nn.Embedding(levels + 1, width)  # index `levels` is the start token
        self.gates = nn.ModuleList(nn.Conv1d(width, 2 * width, 2, dilation=d) for d in self.dilations)
        self.mixes = nn.ModuleList(nn.Conv1d(width, 2 * width, 1) for _ in self.dilations)
        self.labels = (
            nn.ModuleList(nn.Embedding(num_classes, 2 * width) for _ in self.dilations) if num_classes else None
        )
        self.out = nn.Sequential(nn.ReLU(), nn.Conv1d(width, width, 1), nn.ReLU(), nn.Conv1d(width, levels, 1))

    def forward(self, tokens, y=None):
        h = self.embed(tokens).transpose(1, 2)  # (B, C, T)
        skip = 0
        for i, (gate, mix, d) in enumerate(zip(self.gates, self.mixes, self.dilations)):
            a = gate(F.pad(h, (d, 0)))  # (B, 2C, T), causal: padded on the left only
            if self.labels is not None and y is not None:
                a = a + self.labels[i](y)[:, :, None]
            res, s = mix(gated(a)).chunk(2, 1)  # (B, C, T) each
            h, skip = (h + res) / math.sqrt(2), skip + s
        return self.out(skip)  # (B, levels, T)


class Denoiser1d(nn.Module):
    """A non-causal dilated residual stack with the time (and class) embedding added to each block (DiffWave,
    Kong et al. 2021, Fig. 2): (B, C, L) noisy signals, (B,) times -> (B, C, L) prediction."""

    def __init__(self, channels=1, width=32, dilations=DILATIONS, num_classes=0):
        super().__init__()
        self.cond = Conditioning(width, num_classes)
        self.inp = nn.Conv1d(channels, width, 1)
        self.convs = nn.ModuleList(nn.Conv1d(width, 2 * width, 3, padding=d, dilation=d) for d in dilations)
        self.steps = nn.ModuleList(nn.Linear(width, width) for _ in dilations)
        self.mixes = nn.ModuleList(nn.Conv1d(width, 2 * width, 1) for _ in dilations)
        self.out = nn.Sequential(nn.ReLU(), nn.Conv1d(width, width, 1), nn.ReLU(), nn.Conv1d(width, channels, 1))
        nn.init.zeros_(self.out[-1].weight), nn.init.zeros_(self.out[-1].bias)

    def forward(self, x, t, y=None):
        emb = self.cond(t, y)  # (B, C)
        h = F.relu(self.inp(x))  # (B, C, L)
        skip = 0
        for conv, step, mix in zip(self.convs, self.steps, self.mixes):
            res, s = mix(gated(conv(h + step(emb)[:, :, None]))).chunk(2, 1)
            h, skip = (h + res) / math.sqrt(2), skip + s
        return self.out(skip / math.sqrt(len(self.convs)))  # (B, channels, L)


class Judge1d(nn.Module):
    """A small 1D CNN classifier, mnist1d's kind of judge (Greydanus 2020: a CNN reaches 94 %): (B, 1, L) -> logits."""

    def __init__(self, num_classes=10, width=32):
        super().__init__()
        self.convs = nn.Sequential(
            nn.Conv1d(1, width, 5, padding=2),
            nn.ReLU(),
            nn.Conv1d(width, width, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv1d(width, 2 * width, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.AdaptiveMaxPool1d(4),
        )
        self.head = nn.Linear(8 * width, num_classes)

    def forward(self, x):
        return self.head(self.convs(x).flatten(1))  # (B, classes)


def parameters(net):
    """The number of trainable parameters."""
    return sum(p.numel() for p in net.parameters() if p.requires_grad)
