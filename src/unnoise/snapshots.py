"""A run's EMA network kept at a few fixed shares of its training, and its loss curve: what the page's "watch it
learn" replays (`unnoise train --snapshots`; the explainer page's runs keep them always).

RUN/snapshots/ holds one safetensors file per kept share (the EMA weights then, as model.safetensors holds them at
the end) and snapshots.json: each share's step and seconds, and the training loss averaged into at most LOSS_POINTS
bins. A timed run keeps its shares of the time budget, a run of fixed steps its shares of the steps.
"""

import copy
import math
import time
from pathlib import Path

from .checkpoint import load_json, load_weights, save_json, save_tensors
from .errors import UnnoiseError

SUBFOLDER = "snapshots"
INDEX = "snapshots.json"
FRACTIONS = (0.01, 0.05, 0.2)  # shares of training at which the EMA is kept; the run itself is the 100 %
LOSS_POINTS = 200  # bins of the loss curve kept beside them


class Snapshots:
    """A training hook (train.train's hooks): start() as training starts, step() after every step, finish() at the
    end. seconds: the run's time budget, when it has one."""

    def __init__(self, run_folder, seconds=None, fractions=FRACTIONS):
        self.folder, self.seconds, self.fractions = Path(run_folder) / SUBFOLDER, seconds, tuple(sorted(fractions))

    def start(self, cfg, folder, num_classes, data_name):
        self.steps, self.clock, self.kept, self.losses = cfg.steps, time.perf_counter(), [], []

    def share(self, step, seconds):
        """How much of the training is done: of the time budget, else of the steps."""
        return seconds / self.seconds if self.seconds else step / self.steps

    def step(self, step, loss, lr, grad_norm, ema):
        seconds = time.perf_counter() - self.clock
        self.losses.append(loss)
        while len(self.kept) < len(self.fractions) and self.share(step, seconds) >= self.fractions[len(self.kept)]:
            name = f"{len(self.kept)}.safetensors"
            save_tensors(self.folder / name, ema.state_dict())
            share = self.fractions[len(self.kept)]
            self.kept.append({"fraction": share, "step": step, "seconds": round(seconds, 2), "file": name})

    def finish(self, step, ema):
        width = max(1, math.ceil(len(self.losses) / LOSS_POINTS))
        bins = [self.losses[i : i + width] for i in range(0, len(self.losses), width)]
        loss = {"step": [min(i + width, len(self.losses)) for i in range(0, len(self.losses), width)]}
        loss["loss"] = [sum(b) / len(b) for b in bins]
        save_json(self.folder / INDEX, {"kept": self.kept, "loss": loss, "steps": step})


def kept(run):
    """The run's snapshots.json ({kept, loss, steps}), or None when it kept none; one that does not hold what
    Snapshots writes is refused in one line."""
    path = run.folder / SUBFOLDER / INDEX
    if not path.exists():
        return None
    index = load_json(path)
    try:
        entries = [(float(e["fraction"]), int(e["step"]), str(e["file"])) for e in index["kept"]]
        loss = index["loss"]
        if len(loss["step"]) != len(loss["loss"]) or not all(isinstance(v, int | float) for v in loss["loss"]):
            raise ValueError("the loss curve's steps and values differ")
    except (KeyError, TypeError, ValueError) as err:
        raise UnnoiseError(f"{path} is not a snapshot index ({err!r}); delete {path.parent} or retrain") from None
    index["kept"] = [{"fraction": f, "step": s, "file": name} for f, s, name in entries]
    return index


def at(run, entry):
    """The run as it was at one kept snapshot: the same Run, its network's weights from that file."""
    name = Path(str(entry.get("file", ""))).name
    if name != entry.get("file") or not name.endswith(".safetensors"):
        raise UnnoiseError(f"{run.folder / SUBFOLDER / INDEX}: a snapshot names the file {entry.get('file')!r}")
    earlier = copy.copy(run)
    earlier.net = copy.deepcopy(run.net)
    load_weights(earlier.net, run.folder / SUBFOLDER / name)
    earlier.step = int(entry["step"])
    return earlier
