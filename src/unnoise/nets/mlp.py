"""A residual MLP denoiser for 2D points, conditioned on time (and optionally class)."""

from torch import nn

from .embed import Conditioning


class Block(nn.Module):
    """x + W2 silu(W1 silu(norm(x)) + emb): a pre-norm residual block with the conditioning added."""

    def __init__(self, width):
        super().__init__()
        self.norm = nn.LayerNorm(width)
        self.fc1, self.fc2 = nn.Linear(width, width), nn.Linear(width, width)
        self.act = nn.SiLU()

    def forward(self, h, emb):
        return h + self.fc2(self.act(self.fc1(self.act(self.norm(h))) + emb))


class MLP(nn.Module):
    """(B, dim) points -> (B, dim) prediction; `depth` residual blocks of `width` units."""

    def __init__(self, dim=2, width=256, depth=3, num_classes=0):
        super().__init__()
        self.cond = Conditioning(width, num_classes)
        self.inp = nn.Linear(dim, width)
        self.blocks = nn.ModuleList(Block(width) for _ in range(depth))
        self.out = nn.Sequential(nn.LayerNorm(width), nn.SiLU(), nn.Linear(width, dim))

    def forward(self, x, t, y=None):
        emb = self.cond(t, y)  # (B, width)
        h = self.inp(x)  # (B, width)
        for block in self.blocks:
            h = block(h, emb)
        return self.out(h)  # (B, dim)
