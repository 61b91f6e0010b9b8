"""Checkpoints: safetensors for tensors, JSON for everything else; never pickles, always atomic writes.

A run folder holds
    config.json          what was trained and how (and the step of the last checkpoint)
    model.safetensors    the EMA weights, the ones sampling uses
    state.safetensors    raw weights, optimizer moments and the random state, for --resume
"""

import json
import os
import tempfile
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from .errors import UnnoiseError


def cache_dir():
    """The user cache folder (the image judges, the emoji render): $UNNOISE_CACHE, else $XDG_CACHE_HOME/unnoise,
    else ~/.cache/unnoise."""
    if os.environ.get("UNNOISE_CACHE"):
        return Path(os.environ["UNNOISE_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "unnoise"


def atomic_write(path, write):
    """Call write(tmp_path) then rename over path, so a killed process never leaves half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the usual file mode
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def atomic_group(writes):
    """Write every (path, write) to a temporary file first and only then rename them all, in order: a write that
    fails (a full disk) leaves every old file as it was."""
    staged = []
    umask = os.umask(0)
    os.umask(umask)
    try:
        for path, write in writes:
            path = Path(path)
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
            os.close(fd)
            staged.append((tmp, path))
            write(tmp)
            os.chmod(tmp, 0o666 & ~umask)
        for tmp, path in staged:
            os.replace(tmp, path)
    finally:
        for tmp, _ in staged:
            if os.path.exists(tmp):
                os.remove(tmp)


def json_writer(obj):
    def write(tmp):
        with open(tmp, "w") as f:
            json.dump(obj, f, indent=2)
            f.write("\n")

    return write


def tensor_writer(tensors, metadata=None):
    tensors = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
    return lambda tmp: save_file(tensors, tmp, metadata=metadata)


def save_json(path, obj):
    atomic_write(path, json_writer(obj))


def save_tensors(path, tensors, metadata=None):
    atomic_write(path, tensor_writer(tensors, metadata))


MAX_JSON = 1 << 20  # a config.json is a few kB; a bigger one is not read into memory


def load_json(path):
    try:
        if os.path.getsize(path) > MAX_JSON:
            raise UnnoiseError(
                f"{path} is {os.path.getsize(path):,} bytes; a run's JSON is a few kB, so it is not read"
            )
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        raise UnnoiseError(f"{path} is missing") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise UnnoiseError(f"{path} is not valid JSON ({err})") from None


def load_tensors(path, with_metadata=False):
    """Tensors (and the string metadata) from a safetensors file, with a one-line error if it is broken."""
    try:
        tensors = load_file(path)
        if not with_metadata:
            return tensors
        from safetensors import safe_open

        with safe_open(path, "pt") as f:
            return tensors, f.metadata() or {}
    except FileNotFoundError:
        raise UnnoiseError(f"{path} is missing") from None
    except (SafetensorError, OSError, ValueError) as err:
        raise UnnoiseError(f"{path} is truncated or corrupted ({str(err).splitlines()[0]})") from None


DTYPES = {
    "F64": torch.float64,
    "F32": torch.float32,
    "F16": torch.float16,
    "BF16": torch.bfloat16,
    "I64": torch.int64,
    "I32": torch.int32,
    "I16": torch.int16,
    "I8": torch.int8,
    "U8": torch.uint8,
    "BOOL": torch.bool,
}


def header(path):
    """{name: (shape, dtype)} from a safetensors header alone, before a byte of tensor data is read."""
    from safetensors import safe_open

    try:
        with safe_open(path, "pt") as f:
            return {k: (tuple(f.get_slice(k).get_shape()), DTYPES.get(f.get_slice(k).get_dtype())) for k in f.keys()}
    except FileNotFoundError:
        raise UnnoiseError(f"{path} is missing") from None
    except (SafetensorError, OSError, ValueError) as err:
        raise UnnoiseError(f"{path} is truncated or corrupted ({str(err).splitlines()[0]})") from None


def check_header(path, expected, what="the model in config.json"):
    """Refuse a file whose names, shapes or dtypes differ from expected {name: tensor}: nothing is read before."""
    found = header(path)
    missing, unknown = sorted(set(expected) - set(found)), sorted(set(found) - set(expected))
    if missing or unknown:
        raise UnnoiseError(f"{path} does not fit {what} (missing {missing[:2]}, unexpected {unknown[:2]})")
    for name, (shape, dtype) in found.items():
        if shape != tuple(expected[name].shape) or dtype != expected[name].dtype:
            raise UnnoiseError(
                f"{path} does not fit {what}: {name} is {dtype} {shape}, expected "
                f"{expected[name].dtype} {tuple(expected[name].shape)}"
            )


def load_weights(module, path):
    """Load a state dict into module, once its header's names, shapes and dtypes fit (naming the first that does not)."""
    check_header(path, module.state_dict())
    module.load_state_dict(load_tensors(path))


def optimizer_tensors(optimizer):
    """Flatten an optimizer's state into named tensors plus JSON metadata."""
    state = optimizer.state_dict()
    tensors = {f"opt.{i}.{k}": torch.as_tensor(v) for i, s in state["state"].items() for k, v in s.items()}
    return tensors, json.dumps(state["param_groups"])


def restore_optimizer(optimizer, tensors, groups_json):
    """Inverse of optimizer_tensors."""
    state = {}
    for name, value in tensors.items():
        if name.startswith("opt."):
            _, i, key = name.split(".", 2)
            state.setdefault(int(i), {})[key] = value
    optimizer.load_state_dict({"state": state, "param_groups": json.loads(groups_json)})
