"""The one training loop: AdamW, warm-up then cosine decay, EMA, gradient clipping, atomic checkpoints, resume."""

import contextlib
import copy
import dataclasses
import math
import time
from pathlib import Path

import torch
from tqdm import tqdm

from . import data, dist, families, logs
from .checkpoint import (
    atomic_group,
    check_header,
    json_writer,
    load_json,
    load_tensors,
    load_weights,
    optimizer_tensors,
    restore_optimizer,
    tensor_writer,
)
from .config import TrainConfig
from .errors import UnnoiseError, positive_int
from .run import Run, check_format, run_config
from .safety import StopSignals, hold_lock

UNCAPPED = 10**9  # the step cap of a run trained for a time budget with no step count of its own
WARMUP_SHARE = 0.1  # a timed run's warm-up ends after cfg.warmup steps or this share of its budget, if sooner


def learning_rate(cfg, step, progress=None):
    """Linear warm-up over cfg.warmup steps, then cosine decay to zero at cfg.steps.

    progress: the share of a time budget already spent; the cosine then follows it instead of the steps,
    and the warm-up ends by WARMUP_SHARE of the budget at the latest. (Before, a 60 s digits run that made
    243 steps spent 200 of them warming up, and the cosine, already at 82 % of the clock, then cut the
    rate to 8 % of its peak: the run never trained at its learning rate.)
    """
    warm = (step + 1) / cfg.warmup if step < cfg.warmup else 1.0
    if progress is not None:
        warm = max(warm, progress / WARMUP_SHARE)
    if warm < 1:
        return cfg.lr * warm
    if progress is None:
        progress = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
    return cfg.lr * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def ema_pairs(ema, net):
    """The tensors update_ema walks, listed once per run: listing them walks every module (cProfile, digits at
    batch 8: 69,000 module walks in 300 steps; docs/performance.md, "Sixth round")."""
    return (list(ema.parameters()), list(net.parameters())), (list(ema.buffers()), list(net.buffers()))


@torch.no_grad()
def update_ema(pairs, decay):
    """ema <- decay ema + (1 - decay) net, as one fused call over all tensors; buffers (code use) are copied."""
    (averaged, trained), (buffers, sources) = pairs
    torch._foreach_lerp_(averaged, trained, 1 - decay)
    for mine, theirs in zip(buffers, sources):
        mine.copy_(theirs)


def save_checkpoint(folder, cfg, dataset, step, net, ema, optimizer, generator, seconds=None, timed=False):
    """Write state, EMA weights and config.json (the commit point) to temporary files, then rename them: a full
    disk leaves the previous checkpoint whole.

    seconds: the training wall time so far (over every resume), kept in config.json for the page's stamps;
    timed: whether it trained against a --seconds budget (config.json's "timed")."""
    tensors, groups = optimizer_tensors(optimizer)
    tensors.update({f"net.{k}": v for k, v in net.state_dict().items()})
    tensors["rng"] = generator.get_state()
    try:
        atomic_group(
            [
                (folder / "state.safetensors", tensor_writer(tensors, {"step": str(step), "param_groups": groups})),
                (folder / "model.safetensors", tensor_writer(ema.state_dict())),
                (folder / "config.json", json_writer(run_config(cfg, dataset, step, ema, seconds, timed))),
            ]
        )
    except OSError as err:
        before = load_json(folder / "config.json")["step"] if (folder / "config.json").exists() else None
        kept = (
            f"the previous checkpoint (step {before}) is intact"
            if before is not None
            else "no earlier checkpoint exists"
        )
        raise UnnoiseError(
            f"could not write the checkpoint of step {step} in {folder} ({err.strerror or err}); {kept}"
        ) from None


def expected_state(net, generator):
    """The names, shapes and dtypes state.safetensors must hold for this net (AdamW: step, both moments)."""
    expected = {f"net.{k}": v for k, v in net.state_dict().items()}
    for i, p in enumerate(net.parameters()):
        expected.update({f"opt.{i}.step": torch.zeros(()), f"opt.{i}.exp_avg": p, f"opt.{i}.exp_avg_sq": p})
    expected["rng"] = generator.get_state()
    return expected


def restore_checkpoint(folder, net, ema, optimizer, generator):
    """Load what save_checkpoint wrote, once every file's header fits the net; returns the step to continue from."""
    step = int(load_json(folder / "config.json")["step"])
    check_header(folder / "state.safetensors", expected_state(net, generator), "this run's training state")
    tensors, meta = load_tensors(folder / "state.safetensors", with_metadata=True)
    if int(meta.get("step", -1)) != step:
        raise UnnoiseError(f"{folder} holds an incomplete checkpoint (state and config disagree on the step)")
    net.load_state_dict({k[4:]: v for k, v in tensors.items() if k.startswith("net.")})
    load_weights(ema, folder / "model.safetensors")
    restore_optimizer(optimizer, tensors, meta["param_groups"])
    generator.set_state(tensors["rng"])
    return step


def resolve_config(cfg, folder, resume, steps, data_path=None):
    """The config to train with: the saved one when resuming (steps may be raised; a --data given must name the
    data it was trained on), else cfg."""
    exists = (folder / "config.json").exists()
    if resume:
        if not exists:
            raise UnnoiseError(f"nothing to resume: {folder} holds no run (its config.json is missing)")
        config = load_json(folder / "config.json")
        check_format(config, folder / "config.json")
        try:
            cfg = TrainConfig.from_dict(config["train"])
        except (KeyError, TypeError, ValueError) as err:
            raise UnnoiseError(f"{folder / 'config.json'} is not an unnoise run config ({err})") from None
        if steps is not None:
            cfg.steps = steps
        if data_path is not None and data_path != cfg.data:
            raise UnnoiseError(
                f"{folder} was trained on {cfg.data!r}; --resume continues on the same data, not {data_path!r}"
            )
        return cfg
    if exists:
        raise UnnoiseError(f"{folder} already holds a run; pass --resume to continue it, or choose another --out")
    return cfg


def layout(batch_size, accumulate, processes):
    """Rows per micro-batch when the global batch is split over processes x accumulate micro-batches."""
    accumulate = positive_int("accumulate", accumulate)
    if batch_size % (processes * accumulate):
        raise UnnoiseError(
            f"the global batch {batch_size} does not divide by {processes} processes x {accumulate} "
            f"micro-batches; choose a --batch-size that is a multiple of {processes * accumulate}"
        )
    return batch_size // (processes * accumulate)


def draw_batch(family, cfg, rows_all, y_all, num_classes, generator):
    """The global batch from the one generator: row indices, label dropout, then the family's draws (t, noise)."""
    idx = torch.randint(0, len(y_all), (cfg.batch_size,), generator=generator)  # (B,)
    y = None
    if cfg.conditional:
        drop = torch.rand(cfg.batch_size, generator=generator) < cfg.label_dropout
        y = torch.where(drop, num_classes, y_all[idx])
    rows = families.draw(family, cfg, {name: r[idx] for name, r in rows_all.items()}, generator)
    return rows, y


def micro_batches(rows, y, lo, size, count, device, channels_last=False):
    """count micro-batches of `size` rows from row lo of the global batch, on the device (images in NHWC order
    with channels_last)."""

    def place(r):
        r = r.to(device)
        return r.contiguous(memory_format=torch.channels_last) if channels_last and r.dim() == 4 else r

    for k in range(count):
        a, b = lo + k * size, lo + (k + 1) * size
        yield {name: place(r[a:b]) for name, r in rows.items()}, None if y is None else y[a:b].to(device)


def train(
    cfg,
    out,
    resume=False,
    steps=None,
    progress=True,
    init=None,
    seconds=None,
    accumulate=1,
    device="cpu",
    precision="fp32",
    callback=None,
    channels_last=False,
    compile=False,
    data_path=None,
    log=None,
    eval_every=None,
):
    """Train cfg into the run folder `out` (continuing it when resume) and return the Run.

    init: a state dict to start net and EMA from (reflow starts from the trained flow).
    seconds: a wall-clock budget: training stops when it is spent (cfg.steps only caps the steps), the
    learning rate decays over the time, and config.json records the steps reached.
    accumulate, device, precision: micro-batches per process (without syncing all but the last), where to
    compute (cpu, cuda, auto) and fp32, tf32 (CUDA) or bf16 autocast (fp32 weights, optimizer and EMA);
    channels_last, compile: image nets in NHWC memory order, the forward through torch.compile.
    callback(step, loss, net, ema): after every step, with the global batch's mean loss (on every process).
    data_path: where to read cfg.data's rows when that differs from its name (a loaded run's own copy; --data
    for a run folder whose config names a path outside it); config.json keeps cfg.data as named.
    log, eval_every: TensorBoard logs (logs.py).
    Under torchrun (dist.py) cfg.batch_size is the global batch: every process draws it from the one
    generator and computes its own rows, so a step equals one process's step on the same batch.
    """
    folder = Path(out)
    if seconds is not None and (resume or not seconds > 0):
        raise UnnoiseError(
            "a time budget needs a positive number of seconds and a fresh run (not --resume), "
            f"got {seconds}" + (" with --resume" if resume else "")
        )
    device = device if isinstance(device, torch.device) else dist.pick_device(device)
    dist.check_precision(precision, device)
    cfg = resolve_config(cfg, folder, resume, steps, data_path)
    rows_from = data_path or (data.confined(cfg.data, folder) if resume else cfg.data)  # where the rows are read
    dataset = data.load(rows_from, "train", size=cfg.size, channels=cfg.channels)
    if cfg.subset is not None:
        dataset = data.subset(dataset, cfg.subset, cfg.subset_part)
    if cfg.size is not None:
        cfg.channels = dataset.x.shape[1]
    elif not cfg.discrete:
        cfg.dim = dataset.x.shape[1]  # 2 for the built-in sets, D for a point file
    if dist.is_main():
        data.keep_copy(rows_from, folder)  # so the run never needs a path outside its folder
    if cfg.conditional and dataset.num_classes < 2:
        raise UnnoiseError(
            f"{cfg.data} has no classes (put images in one subfolder per class); train it without --conditional"
        )
    family = families.of(cfg)
    shards = 1 if families.whole_batch(family) else dist.world()
    size = layout(cfg.batch_size, accumulate, shards)
    rows_all, y_all = family.prepare(cfg, dataset, folder, progress)  # {name: (N, ...)}, (N,)
    torch.manual_seed(cfg.seed)
    net = family.build(cfg, dataset.num_classes, folder).to(device)
    if init is not None:
        net.load_state_dict(init)
    ema = copy.deepcopy(net).requires_grad_(False)
    optimizer = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=0.0, fused=True)
    generator = torch.Generator().manual_seed(cfg.seed)
    step = restore_checkpoint(folder, net, ema, optimizer, generator) if resume else 0
    if channels_last:
        net.to(memory_format=torch.channels_last)
    ddp = None
    if shards > 1:
        from torch.nn.parallel import DistributedDataParallel

        ddp = DistributedDataParallel(net, device_ids=[device.index] if device.type == "cuda" else None)
    model = net if ddp is None else ddp
    if compile:
        model = torch.compile(model)
    params, pairs = list(net.parameters()), ema_pairs(ema, net)
    lo = (dist.rank() if shards > 1 else 0) * size * accumulate
    last_saved = step if resume else None
    timed, start, done = seconds is not None, time.perf_counter(), step
    before = float(load_json(folder / "config.json").get("train_seconds", 0.0)) if resume else 0.0

    def clock():
        return before + time.perf_counter() - start

    def save(done, timed_steps):
        if dist.is_main():
            save_checkpoint(
                folder,
                dataclasses.replace(cfg, steps=done) if timed_steps else cfg,
                dataset,
                done,
                net,
                ema,
                optimizer,
                generator,
                clock(),
                timed,
            )
        dist.barrier()  # no process reads on before rank 0 has written

    with StopSignals() as signals, hold_lock(folder):
        logger = logs.open_log(log, folder, eval_every, rows_from) if dist.is_main() else None
        bar = tqdm(
            total=seconds if timed else cfg.steps,
            initial=0 if timed else step,
            desc="training",
            disable=not (progress and dist.is_main()),
            bar_format="{l_bar}{bar}| {n:.0f}/{total:.0f} s{postfix}" if timed else None,
        )
        for step in range(done, cfg.steps):
            spent = dist.from_main((time.perf_counter() - start) / seconds) if timed else None  # rank 0's clock
            if timed and spent >= 1 and done > 0:
                break
            rows, y = draw_batch(family, cfg, rows_all, y_all, dataset.num_classes, generator)
            for group in optimizer.param_groups:
                group["lr"] = learning_rate(cfg, step, spent)
            optimizer.zero_grad(set_to_none=True)
            local = 0.0
            for k, (part, part_y) in enumerate(micro_batches(rows, y, lo, size, accumulate, device, channels_last)):
                syncing = ddp is None or k == accumulate - 1
                with contextlib.nullcontext() if syncing else ddp.no_sync():
                    with torch.autocast(device.type, torch.bfloat16, enabled=precision == "bf16"):
                        loss = family.loss(model, cfg, part, part_y, generator) / accumulate
                    loss.backward()
                local += float(loss.detach())
            loss, stops = dist.total([local, signals.caught is not None])  # shared: the mean loss, any signal
            loss /= dist.world()
            if not math.isfinite(loss):
                kept = (
                    f"the last good checkpoint (step {last_saved}) is kept"
                    if last_saved is not None
                    else "no checkpoint had been written"
                )
                raise UnnoiseError(
                    f"training stopped: the loss became {loss} at step {step} (try a smaller --lr); {kept} in {folder}"
                )
            grad_norm = torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip, foreach=True)
            optimizer.step()
            update_ema(pairs, min(cfg.ema, (1 + step) / (10 + step)))
            done = step + 1
            if callback:
                callback(done, loss, net, ema)
            if logger:
                logger.step(done, loss, optimizer.param_groups[0]["lr"], grad_norm, ema, cfg, dataset.num_classes)
            bar.update(min(seconds, time.perf_counter() - start) - bar.n if timed else 1)
            if step % 50 == 0:
                bar.set_postfix(loss=f"{loss:.4f}", step=done)
            if done % cfg.checkpoint_every == 0 or done == cfg.steps or stops:
                save(done, timed)
                last_saved = done
            if stops:  # SIGINT or SIGTERM on any process: all stop here, saved
                bar.close()
                raise signals.stopped(done, folder)
        bar.close()
        if last_saved != done:  # a time budget ran out between checkpoints
            save(done, True)
        if logger:
            logger.finish(done, ema, cfg, dataset.num_classes)
    return Run.load(folder)
