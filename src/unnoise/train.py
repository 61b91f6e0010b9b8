"""The one training loop: AdamW, warm-up then cosine decay, EMA, gradient clipping, atomic checkpoints, resume."""

import contextlib
import copy
import dataclasses
import math
import time

import torch
from tqdm import tqdm

from . import dist, families
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
from .errors import UnnoiseError, positive_int
from .safety import StopSignals, hold_lock
from .store import run_config

WARMUP_SHARE = 0.1  # a timed run's warm-up ends after cfg.warmup steps or this share of its budget, if sooner


def learning_rate(cfg, step, progress=None):
    """Linear warm-up over cfg.warmup steps, then cosine decay to zero at cfg.steps.

    progress: the share of a time budget already spent; the cosine then follows it instead of the steps,
    and the warm-up ends by WARMUP_SHARE of the budget at the latest (docs/performance.md, digits, "Third
    round").
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
    """The tensors update_ema walks, listed once per run (listing them walks every module; docs/performance.md,
    "Sixth round")."""
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


def layout(batch_size, accumulate, processes):
    """Rows per micro-batch when the global batch is split over processes x accumulate micro-batches."""
    accumulate = positive_int("accumulate", accumulate)
    if batch_size % (processes * accumulate):
        raise UnnoiseError(
            f"the global batch {batch_size} does not divide by {processes} processes x {accumulate} "
            f"micro-batches; choose a --batch-size that is a multiple of {processes * accumulate}"
        )
    return batch_size // (processes * accumulate)


def draw_batch(family, cfg, rows_all, y_all, num_classes, generator, parts=None):
    """The global batch from the one generator: row indices, label dropout, then the family's draws (t, noise)."""
    idx = torch.randint(0, len(y_all), (cfg.batch_size,), generator=generator)  # (B,)
    y = None
    if cfg.conditional:
        drop = torch.rand(cfg.batch_size, generator=generator) < cfg.label_dropout
        y = torch.where(drop, num_classes, y_all[idx])
    rows = family.draw(cfg, {name: r[idx] for name, r in rows_all.items()}, generator, parts)
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
    folder,
    dataset,
    parts=None,
    resume=False,
    progress=True,
    init=None,
    seconds=None,
    accumulate=1,
    device="cpu",
    precision="fp32",
    callback=None,
    channels_last=False,
    compile=False,
    hooks=(),
    data_name=None,
):
    """Train one stage: cfg's network on dataset (the training split, rows as the family prepares them) into the
    run folder (continuing it when resume); parts: what the family requires, ready (pipeline.py provides them).

    init: a state dict to start net and EMA from (reflow starts from the trained flow).
    seconds: a wall-clock budget: training stops when it is spent (cfg.steps only caps the steps), the
    learning rate decays over the time, and config.json records the steps reached.
    accumulate, device, precision: micro-batches per process (without syncing all but the last), where to
    compute (cpu, cuda, auto) and fp32, tf32 (CUDA) or bf16 autocast (fp32 weights, optimizer and EMA);
    channels_last, compile: image nets in NHWC memory order, the forward through torch.compile.
    callback(step, loss, net, ema): after every step, with the global batch's mean loss (on every process).
    hooks: objects with start(cfg, folder, num_classes, data_name), step(step, loss, lr, grad_norm, ema) and
    finish(step, ema), called on rank 0 (logs.TensorBoard); data_name: where the rows were read (cfg.data's name, or
    the run's own copy of a point file).
    Under torchrun (dist.py) cfg.batch_size is the global batch: every process draws it from the one
    generator and computes its own rows, so a step equals one process's step on the same batch.
    """
    parts = parts or {}
    device = device if isinstance(device, torch.device) else dist.pick_device(device)
    dist.check_precision(precision, device)
    family = families.of(cfg)
    shards = 1 if family.whole_batch else dist.world()
    size = layout(cfg.batch_size, accumulate, shards)
    rows_all, y_all = family.prepare(cfg, dataset, parts)  # {name: (N, ...)}, (N,)
    torch.manual_seed(cfg.seed)
    net = family.build(cfg, dataset.num_classes, parts).to(device)
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

    hooks = list(hooks) if dist.is_main() else []
    with StopSignals() as signals, hold_lock(folder):
        for hook in hooks:
            hook.start(cfg, folder, dataset.num_classes, data_name or cfg.data)
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
            rows, y = draw_batch(family, cfg, rows_all, y_all, dataset.num_classes, generator, parts)
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
            for hook in hooks:
                hook.step(done, loss, optimizer.param_groups[0]["lr"], grad_norm, ema)
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
        for hook in hooks:
            hook.finish(done, ema)
