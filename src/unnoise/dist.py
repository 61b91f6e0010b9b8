"""Several processes, in one place: torchrun's environment, rank and world, shared decisions, sharding.

unnoise runs as one process unless torchrun (or anything that sets the same env:// variables: accelerate,
Lightning, SLURM wrappers) starts it. Then `init` joins the process group (gloo on CPU, NCCL on CUDA) and
the one training loop (train.py) asks this module, never torch.distributed directly, who it is, what the
others decided, and which rows are its own. A library user who has initialised torch.distributed
themselves gets the same behaviour: every helper reads the live process group.
"""

import datetime
import os
from contextlib import contextmanager

import torch
import torch.distributed as tdist

from .errors import UnnoiseError

TIMEOUT = 300  # seconds any collective waits for the other processes (--dist-timeout)
ENV = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")
DEVICES = ("auto", "cpu", "cuda")
PRECISIONS = ("fp32", "tf32", "bf16")
DistError = getattr(tdist, "DistError", RuntimeError)


def active():
    """Whether a process group of more than one process is live."""
    return tdist.is_available() and tdist.is_initialized() and tdist.get_world_size() > 1


def rank():
    return tdist.get_rank() if active() else 0


def world():
    return tdist.get_world_size() if active() else 1


def is_main():
    return rank() == 0


def launched():
    """Whether torchrun (or another env:// launcher) started this process: RANK and WORLD_SIZE are set."""
    return "RANK" in os.environ or "WORLD_SIZE" in os.environ


def read_env():
    """(rank, world, local rank) from torchrun's variables, checked; an inconsistent set is one line, exit 2."""
    env = os.environ
    missing = [name for name in ENV if name not in env]
    if missing:
        raise UnnoiseError(
            f"torchrun variables are incomplete: {', '.join(missing)} missing (set all of "
            f"{', '.join(ENV)}, or launch with torchrun --nproc-per-node N -m unnoise ...)"
        )
    try:
        r, w, local = (int(env[name]) for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"))
        port = int(env["MASTER_PORT"])
    except ValueError:
        raise UnnoiseError(
            "torchrun variables RANK, WORLD_SIZE, LOCAL_RANK and MASTER_PORT must be whole numbers, got "
            + ", ".join(f"{n}={env[n]!r}" for n in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_PORT"))
        ) from None
    if not (w >= 1 and 0 <= r < w and 0 <= local <= r and 0 <= port < 65536):
        raise UnnoiseError(
            f"torchrun variables are inconsistent: RANK={r}, WORLD_SIZE={w}, LOCAL_RANK={local}, "
            f"MASTER_PORT={port} (need 0 <= LOCAL_RANK <= RANK < WORLD_SIZE and a port below 65536)"
        )
    return r, w, local


def pick_device(name="auto", local_rank=0):
    """torch.device for --device: auto is CUDA when present; cuda without a GPU is one line, exit 2."""
    if name not in DEVICES:
        raise UnnoiseError(f"unknown device {name!r}; choose one of {', '.join(DEVICES)}")
    if name == "cpu" or (name == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise UnnoiseError(
            "--device cuda: no CUDA device is visible to this PyTorch build "
            f"(torch {torch.__version__}); use --device cpu or auto"
        )
    count = torch.cuda.device_count()
    if local_rank >= count:
        raise UnnoiseError(
            f"process with LOCAL_RANK {local_rank} has no GPU of its own: this machine shows {count}; "
            f"start at most {count} processes per node"
        )
    return torch.device("cuda", local_rank)


def check_precision(precision, device):
    """fp32 (TF32 off, as EDM trains), tf32 (CUDA matmuls and convolutions in TF32: compute capability 8+), or
    bf16 autocast (any CPU; a CUDA GPU that computes bfloat16). Sets the TF32 switches for CUDA."""
    if precision not in PRECISIONS:
        raise UnnoiseError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
    if precision == "tf32" and device.type != "cuda":
        raise UnnoiseError(
            "--precision tf32 is a mode of CUDA GPUs (compute capability 8 or more); on the CPU use fp32 or bf16"
        )
    if precision == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise UnnoiseError(
            f"--precision bf16: {torch.cuda.get_device_name(device)} cannot compute bfloat16; use --precision fp32"
        )
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = precision == "tf32"
    return precision


def init(device_name="auto", timeout=TIMEOUT):
    """Join torchrun's process group (gloo on CPU, NCCL on CUDA); returns this process's device."""
    r, w, local = read_env()
    device = pick_device(device_name, local)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if w > 1 and not tdist.is_initialized():
        options = {"device_id": device} if device.type == "cuda" else {}
        tdist.init_process_group(
            "nccl" if device.type == "cuda" else "gloo", timeout=datetime.timedelta(seconds=timeout), **options
        )
        barrier()  # every process has joined before anyone can fail on its own
    return device


def close():
    """Leave the process group (after a barrier, so no process leaves while another still talks)."""
    if active():
        barrier()
    if tdist.is_available() and tdist.is_initialized():
        tdist.destroy_process_group()


LOST = ("Connection closed", "Connection reset", "timed out", "Timed out", "timeout", "NCCL", "gloo")


def is_lost(err):
    """Whether an error is a collective that failed: torch's DistError, or gloo's RuntimeError about a peer."""
    return isinstance(err, DistError) or (isinstance(err, RuntimeError) and any(w in str(err) for w in LOST))


def lost_message(err):
    """One line naming this process, for a collective that failed."""
    first = (str(err).strip().splitlines() or [type(err).__name__])[0]
    first = first.split("] ", 1)[-1]  # drop gloo's [file:line] prefix
    return (
        f"rank {rank()} of {world()}: lost contact with the other processes ({first[:160]}); another "
        "process failed or stalled longer than --dist-timeout"
    )


@contextmanager
def lost_contact():
    """Turn a collective that failed (another process died, or the timeout passed) into one line naming the rank."""
    try:
        yield
    except RuntimeError as err:
        if not is_lost(err):
            raise
        raise UnnoiseError(lost_message(err)) from None


def _wire(t):
    """t on the device the backend sends from: CUDA for NCCL, the CPU for gloo."""
    if tdist.get_backend() == "nccl":
        return t.to(torch.device("cuda", torch.cuda.current_device()))
    return t


def barrier():
    if active():
        with lost_contact():
            tdist.barrier()


def total(values):
    """Every process's values added up, in float64 (a small list of floats) -> list of floats."""
    if not active():
        return [float(v) for v in values]
    t = _wire(torch.tensor([float(v) for v in values], dtype=torch.float64))
    with lost_contact():
        tdist.all_reduce(t)
    return t.tolist()


def from_main(value):
    """Rank 0's float, on every process: one clock decides for all (a --seconds budget)."""
    return total([value if is_main() else 0.0])[0]


def block(n, r=None, w=None):
    """Rows [lo, hi) of n that process r owns: contiguous blocks of ceil(n / w), in rank order."""
    r, w = rank() if r is None else r, world() if w is None else w
    size = -(-n // w)
    lo = min(n, r * size)
    return lo, min(n, lo + size)


def gather_rows(part, n):
    """Every process's block of rows, joined in rank order: the whole (n, ...) tensor on every process."""
    if not active():
        return part
    sizes = [block(n, r)[1] - block(n, r)[0] for r in range(world())]
    padded = torch.zeros((max(sizes),) + tuple(part.shape[1:]), dtype=part.dtype)
    padded[: len(part)] = part
    padded = _wire(padded)
    pieces = [torch.empty_like(padded) for _ in sizes]
    with lost_contact():
        tdist.all_gather(pieces, padded)
    return torch.cat([p[:s] for p, s in zip(pieces, sizes)]).to(part.device)


def sample(run, n, progress=False, **options):
    """run.sample's n samples, each process drawing its own block [lo, hi) and every process getting all n in
    order: sample i depends only on (seed, i), so the result is the same for any number of processes."""
    if not active():
        return run.sample(n, progress=progress, **options)
    lo, hi = block(n)
    part = run.sample(max(1, hi - lo), first=lo, progress=progress and is_main(), **options)[: hi - lo]
    return gather_rows(part, n)  # an empty block still samples one row: every process checks
