"""Several processes (torchrun / DDP on gloo): a step on 2 processes equals one process's step on the same
global batch, resume across world sizes, shared stop decisions, rank 0 alone writes, sharded sampling.

One spawned group of 2 processes (a FileStore, no ports; one thread each; a timeout on every collective)
runs every check, so start-up is paid once; the parent computes the one-process references and compares.
"""

import datetime
import importlib
import json
import os
import subprocess
import sys
import time
from types import SimpleNamespace

import pytest
import torch
import torch.distributed as tdist
import torch.multiprocessing as mp
from safetensors.torch import load_file, save_file

import unnoise
from unnoise import dist
from unnoise.cli import main
from unnoise.errors import UnnoiseError
from unnoise.run import Run

POINTS = dict(data="moons", width=32, depth=1, batch_size=8, warmup=2, checkpoint_every=2)
PIXELS = dict(
    data="digits", family="ar", width=32, depth=1, heads=2, batch_size=8, conditional=True, checkpoint_every=2
)
STEPS = 3


def cfg(**kw):
    return unnoise.TrainConfig(**{**POINTS, "steps": STEPS, **kw})


def record(out, name, losses, net, ema, folder):
    """What a check compares: the losses, the in-memory net and EMA, and the saved optimizer state."""
    tensors = {f"net.{k}": v.detach().clone() for k, v in net.state_dict().items()}
    tensors.update({f"ema.{k}": v.detach().clone() for k, v in ema.state_dict().items()})
    tensors.update({k: v for k, v in load_file(folder / "state.safetensors").items() if k.startswith("opt.")})
    tensors["losses"] = torch.tensor(losses, dtype=torch.float64)
    save_file(tensors, out / f"{name}.safetensors")


def trained(config, folder, out=None, name=None, **kw):
    """Train, keeping the losses and the final in-memory weights; record them when out is given."""
    losses, last = [], {}

    def keep(step, loss, net, ema):
        losses.append(loss)
        last.update(net=net, ema=ema)

    unnoise.train(config, folder, progress=False, callback=keep, **kw)
    if out is not None:
        record(out, name, losses, last["net"], last["ema"], folder)
    return losses, last


def compare(a, b, tol=1e-6):
    a, b = load_file(a), load_file(b)
    assert a.keys() == b.keys()
    worst = max(float((a[k].double() - b[k].double()).abs().max()) for k in a if a[k].numel())
    assert worst <= tol, worst


EQUAL = {
    "eq": cfg,
    "eq-ot": lambda: cfg(family="flow", coupling="ot"),
    "eq-edm": lambda: cfg(family="edm"),
    "eq-ar": lambda: unnoise.TrainConfig(**{**PIXELS, "steps": STEPS}),
    "eq-meanflow": lambda: cfg(family="meanflow"),  # its JVP target must not skip DDP's gradient all-reduce
    "eq-shortcut": lambda: cfg(family="shortcut"),
    "eq-consistency": lambda: cfg(family="consistency"),
}


def check_equal_steps(tmp, out):
    for name, config in EQUAL.items():
        trained(config(), tmp / name, out, name)
    trained(cfg(), tmp / "eq-micro", out, "eq-micro", accumulate=2)


class Killed(Exception):
    pass


def check_resume_source(tmp, out):
    def kill(step, *_):
        if step == 5:  # both processes die after step 5; step 4 is on disk
            raise Killed

    with pytest.raises(Killed):
        unnoise.train(cfg(steps=8), tmp / "resume", progress=False, callback=kill)


def check_nan(tmp, out):
    continuous = importlib.import_module("unnoise.families.continuous")
    real, calls = continuous.training_loss, []

    def diverges_on_rank_1(*args, **kwargs):
        calls.append(1)
        value = real(*args, **kwargs)
        return value * float("nan") if dist.rank() == 1 and len(calls) == 3 else value

    continuous.training_loss = diverges_on_rank_1
    try:
        trained(cfg(steps=6), tmp / "nan")
    except UnnoiseError as err:
        (out / "nan.txt").write_text(str(err))
    finally:
        continuous.training_loss = real


def check_budget(tmp, out):
    train_module = importlib.import_module("unnoise.train")
    real = train_module.time
    if dist.rank() == 1:  # rank 1's clock says the budget is long spent: rank 0's must decide
        train_module.time = SimpleNamespace(perf_counter=lambda: real.perf_counter() * 1000)
    try:
        run = unnoise.train(cfg(steps=10**6), tmp / "budget", progress=False, seconds=1.0)
    finally:
        train_module.time = real
    (out / "budget.json").write_text(json.dumps({"step": run.step}))


def check_writes(tmp, out):
    train_module = importlib.import_module("unnoise.train")
    real, writes = train_module.atomic_group, []

    def counted(group):
        writes.extend(str(path) for path, _ in group)
        return real(group)

    train_module.atomic_group = counted
    try:
        _, last = trained(cfg(), tmp / "writes")
    finally:
        train_module.atomic_group = real
    flat = torch.cat([p.detach().flatten() for p in (*last["net"].parameters(), *last["ema"].parameters())])
    everyone = [torch.empty_like(flat) for _ in range(dist.world())]
    tdist.all_gather(everyone, flat)
    same = all(torch.equal(everyone[0], other) for other in everyone)
    (out / "writes.json").write_text(json.dumps({"writes": len(writes), "same_weights": same}))


def check_sampling(tmp, out):
    points = dist.sample(Run.load(tmp / "ref-eq"), 7, sampler="ddim", nfe=5, seed=3)
    tokens = dist.sample(Run.load(tmp / "ref-eq-ar"), 5, seed=3)
    save_file({"points": points, "tokens": tokens}, out / "sampling.safetensors")


def check_layout(tmp, out):
    with pytest.raises(UnnoiseError, match="global batch 15 does not divide by 2 processes x 1 micro-batches"):
        unnoise.train(cfg(batch_size=15), tmp / "layout", progress=False)
    (out / "layout.txt").write_text("refused")


CHECKS = (check_layout, check_equal_steps, check_resume_source, check_nan, check_budget, check_writes, check_sampling)


def worker(rank, world, store, tmp):
    torch.set_num_threads(1)
    tdist.init_process_group(
        "gloo",
        store=tdist.FileStore(str(store), world),
        rank=rank,
        world_size=world,
        timeout=datetime.timedelta(seconds=120),
    )
    out = tmp / f"rank{rank}"
    out.mkdir()
    try:
        for check in CHECKS:
            check(tmp / "shared", out)
            tdist.barrier()
    finally:
        tdist.destroy_process_group()
    lost_peer(rank, world, tmp, out)


def lost_peer(rank, world, tmp, out):
    """Rank 1 leaves without a word; rank 0's next collective must end, within the timeout, in one line naming it."""
    tdist.init_process_group(
        "gloo",
        store=tdist.FileStore(str(tmp / "store-lost"), world),
        rank=rank,
        world_size=world,
        timeout=datetime.timedelta(seconds=5),
    )
    tdist.barrier()
    if rank == 1:
        return  # the process ends here: no destroy, no goodbye
    start = time.perf_counter()
    try:
        dist.total([1.0])
    except UnnoiseError as err:
        (out / "lost.json").write_text(json.dumps({"message": str(err), "seconds": time.perf_counter() - start}))
    finally:
        tdist.destroy_process_group()


@pytest.fixture(scope="module")
def spawned(tmp_path_factory):
    """The one-process references, then the 2-process group running every check."""
    tmp = tmp_path_factory.mktemp("dist")
    (tmp / "shared").mkdir()
    ref = tmp / "ref"
    ref.mkdir()
    for name, config in EQUAL.items():
        trained(config(), tmp / "shared" / f"ref-{name}", ref, name)
    trained(cfg(steps=8), tmp / "ref-8", ref, "eight")
    mp.spawn(worker, args=(2, tmp / "store", tmp), nprocs=2, join=True)
    return tmp


@pytest.mark.slow
@pytest.mark.parametrize("name", EQUAL)  # diffusion, flow with OT-CFM pairing, EDM, raster AR, the few-step families
def test_two_processes_take_the_one_process_step(spawned, name):
    for rank in (0, 1):
        compare(spawned / "ref" / f"{name}.safetensors", spawned / f"rank{rank}" / f"{name}.safetensors")


@pytest.mark.slow
def test_micro_batches_take_the_same_step(spawned):
    compare(spawned / "ref" / "eq.safetensors", spawned / "rank0" / "eq-micro.safetensors")


@pytest.mark.slow
def test_a_run_trained_on_2_processes_resumes_on_1(spawned, tmp_path):
    assert Run.load(spawned / "shared" / "resume").step == 4
    losses, last = trained(None, spawned / "shared" / "resume", tmp_path, "resumed", resume=True)
    assert len(losses) == 4
    reference = load_file(spawned / "ref" / "eight.safetensors")
    resumed = load_file(tmp_path / "resumed.safetensors")
    reference["losses"] = reference["losses"][4:]
    assert max(float((reference[k] - resumed[k]).abs().max()) for k in reference) <= 1e-6


@pytest.mark.slow
def test_a_nan_on_one_rank_stops_both_with_the_message(spawned):
    for rank in (0, 1):
        text = (spawned / f"rank{rank}" / "nan.txt").read_text()
        assert "loss became nan at step 2" in text and "checkpoint (step 2) is kept" in text
    assert Run.load(spawned / "shared" / "nan").step == 2


@pytest.mark.slow
def test_a_time_budget_stops_both_at_the_same_step(spawned):
    steps = [json.loads((spawned / f"rank{r}" / "budget.json").read_text())["step"] for r in (0, 1)]
    assert steps[0] == steps[1] > 1


@pytest.mark.slow
def test_only_rank_0_writes_and_all_hold_the_same_weights(spawned):
    rank0, rank1 = (json.loads((spawned / f"rank{r}" / "writes.json").read_text()) for r in (0, 1))
    assert rank0["writes"] > 0 and rank1["writes"] == 0
    assert rank0["same_weights"] and rank1["same_weights"]


@pytest.mark.slow
def test_sampling_sharded_over_2_processes_equals_1(spawned):
    one = (Run.load(spawned / "shared" / "ref-eq"), Run.load(spawned / "shared" / "ref-eq-ar"))
    expected = {"points": one[0].sample(7, sampler="ddim", nfe=5, seed=3), "tokens": one[1].sample(5, seed=3)}
    for rank in (0, 1):
        got = load_file(spawned / f"rank{rank}" / "sampling.safetensors")
        assert torch.allclose(got["points"], expected["points"], atol=1e-6)
        assert torch.equal(got["tokens"], expected["tokens"])


@pytest.mark.slow
def test_a_process_that_dies_does_not_hang_the_others(spawned):
    lost = json.loads((spawned / "rank0" / "lost.json").read_text())
    assert lost["message"].startswith("rank 0 of 2: lost contact with the other processes")
    assert "--dist-timeout" in lost["message"] and "\n" not in lost["message"] and lost["seconds"] < 30


@pytest.mark.slow
def test_a_batch_that_does_not_divide_is_refused_on_every_rank(spawned):
    assert all((spawned / f"rank{r}" / "layout.txt").exists() for r in (0, 1))
    assert not (spawned / "shared" / "layout").exists()


def test_bad_layouts_devices_and_torchrun_variables_are_one_line(tmp_path, monkeypatch, capsys):
    base = ["train", "--data", "moons", "--steps", "2", "--out", str(tmp_path / "r")]
    assert main(base + ["--batch-size", "10", "--accumulate", "4"]) == 2
    assert "does not divide by 1 processes x 4 micro-batches" in capsys.readouterr().err
    if not torch.cuda.is_available():
        assert main(base + ["--device", "cuda"]) == 2
        assert "no CUDA device" in capsys.readouterr().err
    for env, words in (
        ({"RANK": "3", "WORLD_SIZE": "2", "LOCAL_RANK": "0"}, "inconsistent"),
        ({"RANK": "0", "WORLD_SIZE": "two", "LOCAL_RANK": "0"}, "whole numbers"),
        ({"RANK": "0"}, "incomplete"),
    ):
        for name in dist.ENV:
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
        monkeypatch.setenv("MASTER_PORT", "29500")
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        if env == {"RANK": "0"}:
            monkeypatch.delenv("MASTER_PORT")
        assert main(base) == 2
        err = capsys.readouterr().err
        assert words in err and err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "r").exists()


def test_precisions_a_device_cannot_compute_are_refused(monkeypatch):
    with pytest.raises(UnnoiseError, match="tf32 is a mode of CUDA GPUs"):
        dist.check_precision("tf32", torch.device("cpu"))
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *a: "Tesla V100-SXM2-16GB")
    with pytest.raises(UnnoiseError, match="V100-SXM2-16GB cannot compute bfloat16; use --precision fp32"):
        dist.check_precision("bf16", torch.device("cuda", 0))
    assert dist.check_precision("bf16", torch.device("cpu")) == "bf16"


def torchrun(*argv, cwd):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "GLOO_SOCKET_IFNAME": "lo"}
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc-per-node",
            "2",
            "-m",
            "unnoise",
            *argv,
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd,
        env=env,
    )


@pytest.mark.slow
def test_the_command_line_under_torchrun(tmp_path):
    done = torchrun(
        "train",
        "--data",
        "moons",
        "--steps",
        "4",
        "--batch-size",
        "16",
        "--width",
        "32",
        "--out",
        str(tmp_path / "run"),
        "--dist-timeout",
        "60",
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.count("trained diffusion") == 1 and Run.load(tmp_path / "run").step == 4
    assert "unnoise: error" not in done.stderr and "Traceback" not in done.stderr
    # bad input on every rank: the spawned check_layout above (a torchrun start costs 10 s on 2 cores)
