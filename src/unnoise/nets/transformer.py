"""One small transformer for every family: raster autoregressive, VAR next-scale, the text diffusions and, as DiT, the
continuous families' denoiser.

A sequence of L positions is split into levels (raster AR: one position per level; VAR: one scale per
level). Position i may attend to position j when level(j) <= level(i): causal across levels,
bidirectional inside one (Tian et al. 2024, VAR, Sec. 3.2). Position i predicts token i from what the
levels before its own hold. The class enters twice, as in VAR: the first input is the class embedding
plus a learned start vector, and every block is modulated by it through AdaLN (DiT's adaLN-Zero,
Peebles & Xie 2023). The class table has one extra row, the null class, for classifier-free guidance.

Sampling runs level by level with a KV cache: a level's queries see every cached key and each other,
which is exactly the training mask restricted to that level's rows, so no mask is needed there.

aligned: the denoiser form the masked and uniform diffusion families use (MDLM, Sahoo et al. 2024; Duo,
Sahoo et al. 2025): position i reads its own (noisy) token and attends to every position, with no start
vector, and queries and keys carry rotary position embeddings (RoPE), as MDLM's DiT (why: docs/performance.md,
"Text"). timed adds a sinusoidal embedding of the diffusion time t to the class, as DiT does.
"""

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import UnnoiseError
from .embed import Conditioning, sinusoidal


def level_mask(levels):
    """(L, L) boolean: True where query i may attend to key j, i.e. level(j) <= level(i)."""
    return levels[None, :] <= levels[:, None]


def modulate(x, shift, scale):
    """AdaLN: x * (1 + scale) + shift, per sample."""
    return x * (1 + scale[:, None]) + shift[:, None]


def rotate(x):
    """Rotary position embedding (RoPE, Su et al. 2021) of queries or keys x (B, h, T, c) at positions 0..T-1."""
    T, half = x.shape[2], x.shape[3] // 2
    freqs = 10000.0 ** (-torch.arange(half, dtype=torch.float32, device=x.device) / half)
    angles = torch.arange(T, dtype=torch.float32, device=x.device)[:, None] * freqs  # (T, half)
    cos, sin = angles.cos().to(x.dtype), angles.sin().to(x.dtype)
    x1, x2 = x[..., :half], x[..., half:]
    return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)


class Attention(nn.Module):
    """Multi-head self-attention with an optional KV cache (a list [k, v] grown per level); rotary: RoPE on
    queries and keys (the aligned denoisers, as MDLM's DiT)."""

    def __init__(self, width, heads, rotary=False):
        super().__init__()
        self.heads, self.rotary = heads, rotary
        self.qkv, self.proj = nn.Linear(width, 3 * width), nn.Linear(width, width)

    def forward(self, x, mask=None, cache=None):
        B, T, C = x.shape
        q, k, v = self.qkv(x).view(B, T, 3, self.heads, C // self.heads).permute(2, 0, 3, 1, 4)  # (B, h, T, c)
        if self.rotary:
            q, k = rotate(q), rotate(k)
        if cache is not None:
            if cache:
                k, v = torch.cat([cache[0], k], dim=2), torch.cat([cache[1], v], dim=2)  # (B, h, T_all, c)
            cache[:] = [k, v]
        h = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)  # (B, h, T, c)
        return self.proj(h.transpose(1, 2).reshape(B, T, C))  # (B, T, C)


class Block(nn.Module):
    """x + g1 attn(AdaLN(x)) then x + g2 mlp(AdaLN(x)), with shifts, scales and gates from the class."""

    def __init__(self, width, heads, rotary=False):
        super().__init__()
        self.norm1 = nn.LayerNorm(width, elementwise_affine=False)
        self.norm2 = nn.LayerNorm(width, elementwise_affine=False)
        self.attn = Attention(width, heads, rotary)
        self.mlp = nn.Sequential(nn.Linear(width, 4 * width), nn.GELU(approximate="tanh"), nn.Linear(4 * width, width))
        self.ada = nn.Sequential(nn.SiLU(), nn.Linear(width, 6 * width))
        nn.init.zeros_(self.ada[1].weight), nn.init.zeros_(self.ada[1].bias)  # adaLN-Zero: blocks start as identity

    def forward(self, x, cond, mask=None, cache=None):
        shift1, scale1, gate1, shift2, scale2, gate2 = self.ada(cond).chunk(6, dim=1)  # (B, C) each
        x = x + gate1[:, None] * self.attn(modulate(self.norm1(x), shift1, scale1), mask, cache)
        return x + gate2[:, None] * self.mlp(modulate(self.norm2(x), shift2, scale2))  # (B, T, C)


class Transformer(nn.Module):
    """Inputs of levels 1.. (token ids or feature vectors) and classes -> logits (B, L, vocab) for all levels.

    levels: the level of each of the L positions, non-decreasing; level 0 is predicted from the class alone.
    in_features: None when inputs are token ids (raster AR: the previous token), else their dimension
    (VAR: the accumulated tokenizer features, downsampled to the next scale).
    """

    def __init__(
        self,
        vocab,
        levels,
        width=128,
        depth=4,
        heads=4,
        num_classes=0,
        in_features=None,
        in_vocab=None,
        aligned=False,
        timed=False,
    ):
        super().__init__()
        levels = torch.as_tensor(levels, dtype=torch.long)
        self.vocab, self.num_classes, self.length, self.aligned = vocab, num_classes, len(levels), aligned
        self.register_buffer("levels", levels, persistent=False)
        self.first = 0 if aligned else int((levels == 0).sum())  # positions of level 0, read from the class alone
        self.embed = nn.Embedding(in_vocab or vocab, width) if in_features is None else nn.Linear(in_features, width)
        self.classes = nn.Embedding(num_classes + 1, width)  # last row: the null class
        self.start = None if aligned else nn.Parameter(torch.randn(self.first, width) * 0.02)  # (first, C)
        self.pos = nn.Parameter(torch.randn(self.length, width) * 0.02)  # (L, C)
        self.time = nn.Sequential(nn.Linear(width, width), nn.SiLU(), nn.Linear(width, width)) if timed else None
        distinct = int(levels.max()) + 1
        self.level = nn.Embedding(distinct, width) if 1 < distinct < self.length else None
        self.blocks = nn.ModuleList(Block(width, heads, rotary=aligned) for _ in range(depth))
        self.norm = nn.LayerNorm(width, elementwise_affine=False)
        self.ada = nn.Sequential(nn.SiLU(), nn.Linear(width, 2 * width))
        self.head = nn.Linear(width, vocab)
        nn.init.zeros_(self.ada[1].weight), nn.init.zeros_(self.ada[1].bias)
        self.head.weight.data.mul_(0.02)
        if aligned and in_features is None:  # GPT-2's N(0, 0.02), the positions' scale
            nn.init.normal_(self.embed.weight, std=0.02)
        for block in self.blocks:  # GPT-2's residual scaling
            for proj in (block.attn.proj, block.mlp[2]):
                proj.weight.data.div_(math.sqrt(2 * depth))

    def null(self, batch, device=None):
        """The null class label, for unconditional runs and the unconditional half of guidance."""
        return torch.full((batch,), self.num_classes, dtype=torch.long, device=device)

    def _inputs(self, inputs, y, start, t=None):
        """Embedded inputs for positions start..start+T-1, with position and level embeddings: (B, T, C)."""
        cond = self.classes(y)  # (B, C)
        if self.time is not None:
            cond = cond + self.time(sinusoidal(t, cond.shape[1]).to(cond.dtype))
        parts = []
        if start == 0 and not self.aligned:
            parts.append(cond[:, None] + self.start[None])  # (B, first, C)
        if inputs is not None and inputs.shape[1] > 0:
            parts.append(self.embed(inputs))  # (B, T', C)
        h = torch.cat(parts, dim=1)
        stop = start + h.shape[1]
        h = h + self.pos[start:stop]
        if self.level is not None:
            h = h + self.level(self.levels[start:stop])
        return h, cond

    def _head(self, h, cond):
        shift, scale = self.ada(cond).chunk(2, dim=1)  # (B, C) each
        return self.head(modulate(self.norm(h), shift, scale))  # (B, T, vocab)

    def forward(self, inputs, y=None, t=None):
        """Teacher forcing: inputs of positions first.. (B, L - first) ids or (B, L - first, F) -> (B, L, vocab).
        Aligned: the tokens of all L positions (B, L) and, when timed, their time t (B,) -> (B, L, vocab)."""
        B = inputs.shape[0]
        y = self.null(B, inputs.device) if y is None else y
        h, cond = self._inputs(inputs, y, 0, t)  # (B, L, C)
        mask = None if self.aligned else level_mask(self.levels[: h.shape[1]])
        for block in self.blocks:
            h = block(h, cond, mask)
        return self._head(h, cond)

    def step(self, inputs, y, cache, start):
        """One level with the KV cache: inputs for positions start..start+T-1 (None at start 0) -> (B, T, vocab).

        cache: a list with one [k, v] list per block, empty lists before the first call.
        """
        h, cond = self._inputs(inputs, y, start)
        for block, kv in zip(self.blocks, cache):
            h = block(h, cond, None, kv)
        return self._head(h, cond)

    def new_cache(self):
        return [[] for _ in self.blocks]


def grid_positions(side, width):
    """DiT's fixed 2D sin-cos position embedding of a side x side grid of patches: (side^2, width)."""
    quarter = width // 4
    freqs = 10000.0 ** (-torch.arange(quarter, dtype=torch.float32) / quarter)  # (width / 4,)
    rows, cols = torch.meshgrid(torch.arange(side), torch.arange(side), indexing="ij")
    angles = [pos.flatten().float()[:, None] * freqs for pos in (rows, cols)]  # (side^2, width / 4) each
    return torch.cat([f(a) for a in angles for f in (torch.sin, torch.cos)], dim=1)  # (side^2, width)


class DiT(nn.Module):
    """The transformer denoiser (DiT, Peebles & Xie 2023): (B, C, H, W) images, t, y -> (B, C, H, W).

    p x p patches become tokens (pixel_unshuffle, then a linear map), with fixed sin-cos positions; the blocks are
    the ones raster AR and VAR use, bidirectional, each modulated by the time and class through adaLN-Zero; the
    last layer, zero at the start, maps each token back to its patch."""

    def __init__(self, channels=1, size=8, width=128, depth=4, heads=4, num_classes=0, patch=1):
        super().__init__()
        check_patch(size, patch)
        self.patch, self.side = patch, size // patch
        self.cond = Conditioning(width, num_classes)  # .cond: the step families wrap it (families/steps.py)
        self.embed = nn.Linear(channels * patch**2, width)
        self.register_buffer("pos", grid_positions(self.side, width), persistent=False)  # (T, C)
        self.blocks = nn.ModuleList(Block(width, heads) for _ in range(depth))
        self.norm = nn.LayerNorm(width, elementwise_affine=False)
        self.ada = nn.Sequential(nn.SiLU(), nn.Linear(width, 2 * width))
        self.out = nn.Linear(width, channels * patch**2)
        for layer in (self.ada[1], self.out):  # DiT's zero-initialized final layer: a fresh net predicts 0
            nn.init.zeros_(layer.weight), nn.init.zeros_(layer.bias)

    def forward(self, x, t, y=None):
        B, C, H, W = x.shape
        cond = self.cond(t, y)  # (B, width)
        tokens = F.pixel_unshuffle(x, self.patch).flatten(2).transpose(1, 2)  # (B, T, C p^2)
        h = self.embed(tokens) + self.pos.to(tokens.dtype)  # (B, T, width)
        for block in self.blocks:
            h = block(h, cond)
        shift, scale = self.ada(cond).chunk(2, dim=1)
        out = self.out(modulate(self.norm(h), shift, scale))  # (B, T, C p^2)
        return F.pixel_shuffle(out.transpose(1, 2).reshape(B, -1, self.side, self.side), self.patch)  # (B, C, H, W)


def default_patch(size, tokens=64):
    """The smallest patch side that divides the image and leaves at most `tokens` patches (28 -> 4: 7x7)."""
    return next(p for p in range(1, size + 1) if size % p == 0 and (size // p) ** 2 <= tokens)


def check_patch(size, patch):
    """size, or one line saying which patch sides divide it."""
    if size % patch:
        fits = ", ".join(str(p) for p in range(1, size + 1) if size % p == 0)
        raise UnnoiseError(f"--patch {patch} does not divide the {size}x{size} image the transformer sees; try {fits}")
    return size
