"""A small U-Net denoiser for images (Ronneberger et al. 2015, as used by Ho et al. 2020 for DDPM).

Residual blocks with GroupNorm take the time (and class) embedding; each level but the last halves
the image (by default once: 8x8 digits become 4x4, 28x28 MNIST 14x14); self-attention runs at the
lowest resolution. One `width` sizes it all: width 32 has about 400k parameters. With patch p > 1 the
image is first folded into p x p patches (pixel_unshuffle: (C, H, W) -> (C p^2, H / p, W / p)) and
unfolded at the end, as DiT's patches do: the network then runs at 1 / p^2 of the pixels.
"""

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import UnnoiseError
from .embed import Conditioning

MULTS = (1, 2)  # channel multiplier per level: one halving by default
FACTOR = 2 ** (len(MULTS) - 1)  # what the default U-Net divides an image side by


def _norm(channels):
    return nn.GroupNorm(math.gcd(8, channels), channels)


class ResBlock(nn.Module):
    """x + conv(silu(norm(conv(silu(norm(x)))) + emb)): a DDPM residual block with the embedding added."""

    def __init__(self, cin, cout, emb_dim, dropout=0.0):
        super().__init__()
        self.norm1, self.conv1 = _norm(cin), nn.Conv2d(cin, cout, 3, padding=1)
        self.emb = nn.Linear(emb_dim, cout)
        self.norm2, self.conv2 = _norm(cout), nn.Conv2d(cout, cout, 3, padding=1)
        self.drop = nn.Dropout(dropout)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x, emb):
        h = self.conv1(F.silu(self.norm1(x)))  # (B, cout, H, W)
        h = h + self.emb(F.silu(emb))[:, :, None, None]
        h = self.conv2(self.drop(F.silu(self.norm2(h))))
        return self.skip(x) + h


class Attention(nn.Module):
    """x + proj(softmax(q k^T / sqrt(d)) v) over the H*W positions (Vaswani et al. 2017), one head."""

    def __init__(self, channels):
        super().__init__()
        self.norm = _norm(channels)
        self.qkv = nn.Conv2d(channels, 3 * channels, 1)
        self.proj = nn.Conv2d(channels, channels, 1)

    def forward(self, x):
        B, C, H, W = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(B, 3, C, H * W).transpose(2, 3).unbind(1)  # (B, HW, C) each
        h = F.scaled_dot_product_attention(q, k, v)  # (B, HW, C)
        return x + self.proj(h.transpose(1, 2).reshape(B, C, H, W))


class UNet(nn.Module):
    """(B, channels, H, W) images -> (B, channels, H, W) prediction; H and W divisible by 2^(len(mults)-1)."""

    def __init__(
        self, channels=1, width=32, num_classes=0, size=None, attention=True, mults=MULTS, dropout=0.0, patch=1
    ):
        super().__init__()
        self.patch = patch
        self.factor = patch * 2 ** (len(mults) - 1)
        if size is not None:
            check_size(size, self.factor)
        emb_dim = 4 * width
        widths = [width * m for m in mults]  # channels at each level
        self.cond = Conditioning(emb_dim, num_classes)
        self.inp = nn.Conv2d(channels * patch**2, width, 3, padding=1)
        self.down, self.downsample = nn.ModuleList(), nn.ModuleList()
        cin = width
        for level, w in enumerate(widths):
            self.down.append(ResBlock(cin, w, emb_dim, dropout))
            last = level == len(widths) - 1
            self.downsample.append(nn.Identity() if last else nn.Conv2d(w, w, 3, stride=2, padding=1))
            cin = w
        self.mid = ResBlock(cin, cin, emb_dim, dropout)
        self.attn = Attention(cin) if attention else nn.Identity()
        self.up = nn.ModuleList()
        for w in reversed(widths):
            self.up.append(ResBlock(cin + w, w, emb_dim, dropout))
            cin = w
        self.out = nn.Sequential(_norm(width), nn.SiLU(), nn.Conv2d(width, channels * patch**2, 3, padding=1))
        nn.init.zeros_(self.out[-1].weight), nn.init.zeros_(self.out[-1].bias)

    def forward(self, x, t, y=None):
        check_size(x.shape[-2], self.factor), check_size(x.shape[-1], self.factor)
        emb = self.cond(t, y)  # (B, 4 width)
        x = F.pixel_unshuffle(x, self.patch)  # (B, C p^2, H / p, W / p)
        h, skips = self.inp(x), []  # (B, width, H / p, W / p)
        for block, down in zip(self.down, self.downsample):
            h = block(h, emb)
            skips.append(h)  # (B, w, H / 2^level, W / 2^level)
            h = down(h)
        h = self.attn(self.mid(h, emb))  # (B, w_last, H / factor, W / factor)
        for block in self.up:
            if h.shape[-1] != skips[-1].shape[-1]:
                h = F.interpolate(h, scale_factor=2, mode="nearest")  # the next conv smooths it
            h = block(torch.cat([h, skips.pop()], dim=1), emb)  # (B, w, H / 2^level, W / 2^level)
        return F.pixel_shuffle(self.out(h), self.patch)  # (B, channels, H, W)


def default_patch(size):
    """The patch side for a size: 2 from 24 px up (28x28 MNIST runs at 14x14 inside), else 1 (8x8, 16x16)."""
    return 2 if size >= 24 else 1


def check_size(size, factor):
    """size, or a one-line error unless the U-Net, which halves an image log2(factor) times, can take it."""
    if size % factor or size < factor:
        below, above = max(factor, size - size % factor), size - size % factor + factor
        halvings = int(math.log2(factor))
        times = "once" if halvings == 1 else f"{halvings} times"
        raise UnnoiseError(
            f"--size {size} does not fit the U-Net: it halves the image {times}, "
            f"so the size must be a multiple of {factor} (try {below} or {above})"
        )
    return size


def num_params(net):
    return sum(p.numel() for p in net.parameters())
