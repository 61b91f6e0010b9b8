"""The autoencoder of latent diffusion (Rombach et al. 2022, LDM's KL-regularised "AutoencoderKL"), at laptop size.

The encoder halves the image twice (factor 4), a residual block after each halving, and gives the mean and log-variance of a
diagonal Gaussian over a C-channel latent; the decoder mirrors it. An image whose side is not a multiple of 8 is
first padded (edge pixels repeated) up to one, so the latent's side is even and the U-Net can halve it once more:
28x28 MNIST gives an 8x8 latent, 32x32 emoji too. No attention, no GAN or perceptual loss at this size.
"""

import torch
import torch.nn.functional as F
from torch import nn

from .unet import _norm

FACTOR = 4  # the encoder halves the image twice


def latent_side(size):
    """The latent's side for images of side size: padded up to a multiple of 8, then divided by 4 (28 -> 8)."""
    return -(-size // (2 * FACTOR)) * 2


class Residual(nn.Module):
    """x + conv(silu(norm(conv(silu(norm(x)))))): the U-Net's residual block without a time embedding."""

    def __init__(self, cin, cout):
        super().__init__()
        self.body = nn.Sequential(
            _norm(cin),
            nn.SiLU(),
            nn.Conv2d(cin, cout, 3, padding=1),
            _norm(cout),
            nn.SiLU(),
            nn.Conv2d(cout, cout, 3, padding=1),
        )
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x):
        return self.skip(x) + self.body(x)


class Up(nn.Module):
    """Nearest-neighbour doubling, then a 3x3 convolution from cin to cout channels (LDM's Upsample)."""

    def __init__(self, cin, cout):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, padding=1)

    def forward(self, x):
        return self.conv(F.interpolate(x, scale_factor=2, mode="nearest"))


def encoder(cin, cout, width):
    """(B, cin, 4s, 4s) -> (B, cout, s, s): stride-2 convolutions to widths w and 2w, a residual block after each."""
    w, w2 = width, 2 * width
    return nn.Sequential(
        nn.Conv2d(cin, w, 3, padding=1),
        nn.Conv2d(w, w, 3, stride=2, padding=1),  # (B, w, 2s, 2s)
        Residual(w, w),
        nn.Conv2d(w, w2, 3, stride=2, padding=1),  # (B, 2w, s, s)
        Residual(w2, w2),
        _norm(w2),
        nn.SiLU(),
        nn.Conv2d(w2, cout, 3, padding=1),
    )


def decoder(cin, cout, width):
    """(B, cin, s, s) -> (B, cout, 4s, 4s): the encoder's mirror, doubling by Up."""
    w, w2 = width, 2 * width
    return nn.Sequential(
        nn.Conv2d(cin, w2, 3, padding=1),
        Residual(w2, w2),
        Up(w2, w),  # (B, w, 2s, 2s)
        Residual(w, w),
        Up(w, w // 2),  # (B, w / 2, 4s, 4s)
        _norm(w // 2),
        nn.SiLU(),
        nn.Conv2d(w // 2, cout, 3, padding=1),
    )


class Autoencoder(nn.Module):
    """(B, C, H, W) images in [-1, 1] <-> (B, latent_channels, s, s) latents, s = latent_side(H)."""

    def __init__(self, channels=1, size=28, latent_channels=4, width=32):
        super().__init__()
        self.channels, self.size, self.latent_channels = channels, size, latent_channels
        self.latent_size = latent_side(size)
        self.pad = self.latent_size * FACTOR - size
        self.encoder = encoder(channels, 2 * latent_channels, width)
        self.decoder = decoder(latent_channels, channels, width)

    def encode(self, x):
        """(mean, log-variance) of the posterior q(z | x), each (B, latent_channels, s, s)."""
        lo = self.pad // 2
        x = F.pad(x, (lo, self.pad - lo, lo, self.pad - lo), mode="replicate")  # (B, C, 4 s, 4 s)
        mean, logvar = self.encoder(x).chunk(2, dim=1)
        return mean, logvar.clamp(-30.0, 20.0)

    def decode(self, z):
        """Images (B, C, H, W) in model units from latents z."""
        lo = self.pad // 2
        x = self.decoder(z)  # (B, C, 4 s, 4 s)
        return x[..., lo : lo + self.size, lo : lo + self.size]

    def forward(self, x, generator=None):
        """(reconstruction from a posterior draw, the KL divergence to N(0, I) per latent value (B,))."""
        mean, logvar = self.encode(x)
        z = mean + (0.5 * logvar).exp() * torch.randn(mean.shape, generator=generator).to(mean)
        kl = 0.5 * (mean**2 + logvar.exp() - 1 - logvar).flatten(1).mean(1)
        return self.decode(z), kl
