"""Arrays for the page, quantized and base64'd: the one format the offline page and the server share.

An encoded array is {"shape": [...], "bits": 8 or 16, "lo": a, "hi": b, "b64": "..."}; element k is
lo + (hi - lo) * q[k] / (2**bits - 1), with q little-endian unsigned integers in row-major order.
Images in [0, 1] take 8 bits (exact for 8-bit pixels); points take 16 bits over their own range
(an error below 1e-4 of it), a quarter of float64 JSON's size before base64.
"""

import base64

import numpy as np
import torch


def encode(x, bits=8, lo=None, hi=None):
    """A tensor or array -> the encoded dict; lo / hi default to its own range (images: pass 0 and 1)."""
    x = np.asarray(torch.as_tensor(x).detach().cpu().double())
    lo = float(x.min()) if lo is None else float(lo)
    hi = float(x.max()) if hi is None else float(hi)
    top = 2**bits - 1
    scale = top / (hi - lo) if hi > lo else 0.0
    q = np.clip(np.rint((x - lo) * scale), 0, top).astype("<u1" if bits == 8 else "<u2")
    return {
        "shape": list(x.shape),
        "bits": bits,
        "lo": round(lo, 6),
        "hi": round(hi, 6),
        "b64": base64.b64encode(q.tobytes()).decode("ascii"),
    }


def decode(item):
    """The encoded dict -> a float64 numpy array (for tests and for reading a page back)."""
    q = np.frombuffer(base64.b64decode(item["b64"]), dtype="<u1" if item["bits"] == 8 else "<u2")
    top = 2 ** item["bits"] - 1
    return (item["lo"] + (item["hi"] - item["lo"]) * q / top).reshape(item["shape"])


def images(x):
    """Images (..., C, H, W) in [0, 1] -> 8 bits over [0, 1]."""
    return encode(torch.as_tensor(x).clamp(0, 1), 8, 0.0, 1.0)


def points(x):
    """Points (..., 2) in data units -> 16 bits over their own range."""
    return encode(x, 16)
