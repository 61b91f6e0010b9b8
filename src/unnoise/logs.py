"""TensorBoard logs of a training run (`--log tensorboard` or `--log DIR`): what a user watches as it trains.

Every EVERY steps: train/loss (the global batch's mean), train/lr, train/grad_norm (before clipping) and
train/steps_per_second. Every `--eval-every K` steps (and at the last step) the EMA model is sampled and
scored beside its real-vs-real floor, as `unnoise evaluate` does with fewer samples: points log
eval/w2, eval/w2_floor and their ratio (exact W2, n = POINTS) and a scatter of samples over held-out data; images log
eval/fid, eval/fid_floor and their ratio (classifier features, n = IMAGES), eval/accuracy for a conditional run, and a
grid of samples. A tokenizer (vq) is not sampled; it logs its training scalars only. The tensorboard
package is an optional extra (`pip install 'unnoise[tensorboard]'`); only rank 0 writes.
"""

import copy
import dataclasses
import time
from pathlib import Path

from . import data, families, guidance
from .errors import UnnoiseError, positive_int
from .metrics.images import report
from .metrics.points import w2, w2_floor
from .run import Run

EVERY = 10  # steps between training scalars
POINTS = 500  # samples per evaluation of a point run
IMAGES = 100  # samples per evaluation of an image run
NFE = 20  # network evaluations per sample at each evaluation (continuous families)
SUBFOLDER = "logs"  # `--log tensorboard` writes here, inside the run folder


def writer_class():
    """torch's SummaryWriter, or one line saying how to install what it needs."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise UnnoiseError(
            "--log needs the tensorboard package: pip install 'unnoise[tensorboard]' (or pip install tensorboard)"
        ) from None
    return SummaryWriter


def folder_for(log, run_folder):
    """Where the event files go: RUN/logs for 'tensorboard', else the folder given."""
    return Path(run_folder) / SUBFOLDER if log == "tensorboard" else Path(log)


class TensorBoard:
    """A training hook (train.train's hooks): start() as training starts, step() after every step, finish() at the
    end. The writer opens at start, so a run that is refused leaves no log behind."""

    def __init__(self, log, run_folder, eval_every=None):
        if not isinstance(log, str) or not log.strip():
            raise UnnoiseError("--log takes 'tensorboard' (event files in RUN/logs) or a folder")
        writer_class()  # refuse at once where tensorboard is missing
        self.log, self.run_folder = log, Path(run_folder)
        self.eval_every = eval_every and positive_int("eval-every", eval_every)
        self.clock, self.last_step, self.floor, self.evaluated = time.perf_counter(), None, None, None

    def start(self, cfg, folder, num_classes, data_name):
        """Open the writer; data_name: where the run's rows are read (its own copy of a point file)."""
        self.cfg, self.num_classes = dataclasses.replace(cfg, data=data_name), num_classes
        self.evaluates = self.eval_every and families.of(cfg).generates  # a tokenizer logs its scalars only
        folder = folder_for(self.log, self.run_folder)
        try:
            self.writer = writer_class()(str(folder))
        except OSError as err:
            raise UnnoiseError(
                f"--log {self.log}: cannot write event files in {folder} ({err.strerror or err})"
            ) from None

    def step(self, step, loss, lr, grad_norm, ema):
        """Log the scalars every EVERY steps and evaluate every eval_every steps."""
        if step % EVERY == 0:
            now = time.perf_counter()
            if self.last_step is not None:
                self.writer.add_scalar("train/steps_per_second", (step - self.last_step) / (now - self.clock), step)
            self.clock, self.last_step = now, step
            for name, value in (("loss", loss), ("lr", lr), ("grad_norm", grad_norm)):
                self.writer.add_scalar(f"train/{name}", float(value), step)
        if self.evaluates and step % self.eval_every == 0:
            self.evaluate(step, ema)
        self.writer.flush()

    def evaluate(self, step, ema):
        """Sample the EMA model and log its main metric beside the floor, with a picture."""
        net = ema if next(ema.parameters()).device.type == "cpu" else copy.deepcopy(ema).cpu()  # samplers: CPU
        run = Run(self.run_folder, self.cfg, net, step, self.num_classes)
        options = run.family.sampler_options(nfe=NFE)
        self.evaluated = step
        if run.text:
            self.evaluate_text(step, run)
        elif run.images:
            self.evaluate_images(step, run, options)
        else:
            self.evaluate_points(step, run, options)

    def evaluate_points(self, step, run, options):
        from .viz.figures2d import pairs  # matplotlib: imported when a run is scored, not at every command's start

        held = data.load(run.cfg.data, "heldout", POINTS).x
        if self.floor is None:
            self.floor = w2_floor(run.cfg.data, held)  # the mean of 4 fresh real draws
        x = run.sample(POINTS, **options)
        score = w2(x, held)
        self.writer.add_scalar("eval/w2", score, step)
        self.writer.add_scalar("eval/w2_floor", self.floor, step)
        self.writer.add_scalar("eval/w2_ratio", score / self.floor, step)
        self.writer.add_figure("eval/samples", pairs(x, held, f"step {step}: model (red) over held-out data"), step)

    def evaluate_text(self, step, run):
        from .families.text import decode

        result = run.family.report(run, 0, 0)
        self.writer.add_scalar("eval/bits_per_char", result["bits_per_char"], step)
        if "bits_per_char_floor" in result:
            self.writer.add_scalar("eval/bits_per_char_floor", result["bits_per_char_floor"], step)
        self.writer.add_text("eval/sample", decode(run, run.sample(1)[0]), step)

    def evaluate_images(self, step, run, options):
        label = guidance.EACH if run.cfg.conditional else None
        x = run.sample(IMAGES, label=label, **options)  # (n, C, H, W) in [0, 1]
        labels = guidance.labels(run, label, 0, IMAGES) if label is not None else None
        result = report(x, labels, run.cfg.data, run.cfg.size, run.cfg.channels, verbose=False)
        self.writer.add_scalar("eval/fid", result["fid"], step)
        self.writer.add_scalar("eval/fid_floor", result["fid_floor"], step)
        self.writer.add_scalar("eval/fid_ratio", result["fid"] / max(result["fid_floor"], 1e-12), step)
        if result.get("class_accuracy") is not None:
            self.writer.add_scalar("eval/accuracy", result["class_accuracy"], step)
        side = int(len(x) ** 0.5)
        grid = x[: side * side].reshape(side, side, *x.shape[1:]).permute(2, 0, 3, 1, 4)  # (C, rows, H, cols, W)
        self.writer.add_image("eval/samples", grid.reshape(x.shape[1], side * x.shape[2], side * x.shape[3]), step)

    def finish(self, step, ema):
        """At the end (a --seconds budget too): the last evaluation, where the last step had none; then close."""
        if self.evaluates and self.evaluated != step:
            self.evaluate(step, ema)
        self.writer.close()


def hooks(log, run_folder, eval_every=None):
    """[a TensorBoard hook], or [] without --log; --eval-every without --log is refused."""
    if log is None:
        if eval_every is not None:
            raise UnnoiseError(
                "--eval-every K evaluates into the TensorBoard log; give --log tensorboard (or --log DIR)"
            )
        return []
    return [TensorBoard(log, run_folder, eval_every)]
