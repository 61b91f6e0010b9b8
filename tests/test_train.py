"""The training loop: quality with a fixed seed, exact resume, NaN handling, broken checkpoints."""

import importlib
import json

import pytest
import torch

import unnoise
from unnoise.data import load
from unnoise.errors import UnnoiseError
from unnoise.metrics.points import w2
from unnoise.run import Run

train_module = importlib.import_module("unnoise.train")
SMALL = dict(data="8gaussians", width=64, depth=2, batch_size=256)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    folder = tmp_path_factory.mktemp("runs") / "g8"
    return unnoise.train(unnoise.TrainConfig(steps=600, **SMALL), folder, progress=False)


@pytest.mark.slow
def test_short_seeded_training_reaches_the_floor_on_8_gaussians(trained):
    # Measured: W2 / floor = 1.26, 1.18, 1.11 for sample seeds 0, 1, 2 (n = 1000); untrained it is > 10.
    held, fresh = load("8gaussians", "heldout", 1000).x, load("8gaussians", "fresh", 1000).x
    ratios = [w2(trained.sample(1000, "ddpm", 50, seed=s), held) / w2(fresh, held) for s in (0, 1)]
    assert sum(ratios) / 2 < 1.5


def test_samples_do_not_depend_on_the_batch_size(trained):
    whole = trained.sample(12, "ddpm", 20, seed=3, batch_size=12)
    parts = trained.sample(12, "ddpm", 20, seed=3, batch_size=5)
    assert torch.allclose(whole, parts, atol=1e-6)
    assert not torch.allclose(whole, trained.sample(12, "ddpm", 20, seed=4))


def test_resume_after_a_kill_gives_the_uninterrupted_result(tmp_path, monkeypatch):
    cfg = unnoise.TrainConfig(steps=40, checkpoint_every=20, **SMALL)
    straight = unnoise.train(cfg, tmp_path / "straight", progress=False)

    real_save = train_module.save_checkpoint

    def save_then_die(folder, *args):
        real_save(folder, *args)
        raise KeyboardInterrupt  # killed right after the step-20 checkpoint

    monkeypatch.setattr(train_module, "save_checkpoint", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        unnoise.train(cfg, tmp_path / "killed", progress=False)
    monkeypatch.setattr(train_module, "save_checkpoint", real_save)
    assert Run.load(tmp_path / "killed").step == 20
    resumed = unnoise.train(None, tmp_path / "killed", resume=True, progress=False)
    assert resumed.step == 40
    for (name, a), b in zip(straight.net.state_dict().items(), resumed.net.state_dict().values()):
        assert torch.equal(a, b), name


def test_existing_run_is_never_overwritten(tmp_path, trained):
    with pytest.raises(UnnoiseError, match="--resume"):
        unnoise.train(unnoise.TrainConfig(steps=5, **SMALL), trained.folder, progress=False)
    with pytest.raises(UnnoiseError, match="nothing to resume"):
        unnoise.train(None, tmp_path / "empty", resume=True, progress=False)


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    continuous = importlib.import_module("unnoise.families.continuous")
    real_loss = continuous.training_loss
    calls = []

    def loss_that_diverges(*args, **kwargs):
        calls.append(1)
        value = real_loss(*args, **kwargs)
        return value * float("nan") if len(calls) > 25 else value

    monkeypatch.setattr(continuous, "training_loss", loss_that_diverges)
    with pytest.raises(UnnoiseError, match=r"step 25.*checkpoint \(step 20\) is kept"):
        unnoise.train(unnoise.TrainConfig(steps=40, checkpoint_every=10, **SMALL), tmp_path / "nan", progress=False)
    run = Run.load(tmp_path / "nan")
    assert run.step == 20 and all(torch.isfinite(p).all() for p in run.net.parameters())


def test_broken_checkpoints_give_one_line_errors(tmp_path, trained):
    import shutil

    folder = tmp_path / "broken"
    shutil.copytree(trained.folder, folder)
    weights = (folder / "model.safetensors").read_bytes()
    (folder / "model.safetensors").write_bytes(weights[: len(weights) // 2])
    with pytest.raises(UnnoiseError, match="truncated or corrupted"):
        Run.load(folder)
    (folder / "model.safetensors").write_bytes(b"\x00" * 100)
    with pytest.raises(UnnoiseError, match="truncated or corrupted"):
        Run.load(folder)
    (folder / "model.safetensors").write_bytes(weights)
    config = json.loads((folder / "config.json").read_text())
    config["train"]["width"] = 32
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(UnnoiseError, match="does not fit the model"):
        Run.load(folder)
    (folder / "config.json").write_text("{not json")
    with pytest.raises(UnnoiseError, match="not valid JSON"):
        Run.load(folder)


def test_a_time_budget_stops_the_run_and_decays_over_the_clock(tmp_path, monkeypatch):
    from types import SimpleNamespace

    cfg = unnoise.TrainConfig(steps=10**9, warmup=2, **SMALL)
    assert train_module.learning_rate(cfg, 5, progress=0.5) == pytest.approx(cfg.lr / 2)
    assert train_module.learning_rate(cfg, 5, progress=1.0) == 0.0
    slow = unnoise.TrainConfig(steps=10**9, warmup=200, **SMALL)  # a slow machine: few steps in the budget
    assert train_module.learning_rate(slow, 9, progress=0.05) == pytest.approx(slow.lr / 2)  # the clock leads
    assert train_module.learning_rate(slow, 99, progress=0.01) == pytest.approx(slow.lr / 2)  # the steps lead
    assert train_module.learning_rate(slow, 20, progress=0.5) == pytest.approx(slow.lr / 2)  # warm, on the cosine
    assert train_module.learning_rate(slow, 99) == pytest.approx(slow.lr / 2)  # untimed: steps only
    ticks = iter(range(10**6))  # a fake clock: every reading is one second later
    monkeypatch.setattr(train_module, "time", SimpleNamespace(perf_counter=lambda: float(next(ticks))))
    rates = []
    monkeypatch.setattr(train_module, "learning_rate", lambda c, s, p=None: rates.append(p) or 1e-3)
    run = unnoise.train(cfg, tmp_path / "timed", progress=False, seconds=20)
    assert run.step == 10 and run.cfg.steps == 10  # two readings per step: 20 s hold 10 steps
    assert rates == [pytest.approx((1 + 2 * k) / 20) for k in range(10)]  # the clock read before each step
    assert unnoise.train(None, tmp_path / "timed", resume=True, steps=12, progress=False).step == 12
    with pytest.raises(UnnoiseError, match="fresh run"):
        unnoise.train(None, tmp_path / "timed", resume=True, progress=False, seconds=5)


def test_bf16_autocast_keeps_fp32_weights_and_tracks_the_fp32_losses(tmp_path):
    losses = {}
    for precision in ("fp32", "bf16"):
        losses[precision] = []
        run = unnoise.train(
            unnoise.TrainConfig(steps=30, **SMALL),
            tmp_path / precision,
            progress=False,
            precision=precision,
            callback=lambda s, loss, n, e: losses[precision].append(loss),  # noqa: B023 (called before the loop moves on)
        )
        assert {p.dtype for p in run.net.parameters()} == {torch.float32}
    fp32, bf16 = torch.tensor(losses["fp32"]), torch.tensor(losses["bf16"])
    assert not torch.equal(fp32, bf16)  # the autocast took effect
    assert ((bf16 - fp32).abs() / fp32).max() < 0.01  # and stayed on the fp32 trajectory
    with pytest.raises(UnnoiseError, match="unknown precision 'fp16'; choose one of fp32, tf32, bf16"):
        unnoise.train(unnoise.TrainConfig(steps=2, **SMALL), tmp_path / "fp16", progress=False, precision="fp16")


def test_sigterm_writes_a_checkpoint_and_resume_is_bit_identical(tmp_path):
    import os
    import signal

    from unnoise.safety import Stopped

    cfg = unnoise.TrainConfig(steps=30, checkpoint_every=1000, **SMALL)
    straight = unnoise.train(cfg, tmp_path / "straight", progress=False)

    def terminate(step, *_):
        if step == 7:
            os.kill(os.getpid(), signal.SIGTERM)  # as `kill PID` or a cluster's preemption would

    with pytest.raises(Stopped, match="stopped by SIGTERM after step 8.*--resume") as stop:
        unnoise.train(cfg, tmp_path / "stopped", progress=False, callback=terminate)
    assert stop.value.code == 143 and Run.load(tmp_path / "stopped").step == 8
    assert not (tmp_path / "stopped" / ".lock").exists()
    resumed = unnoise.train(None, tmp_path / "stopped", resume=True, progress=False)
    for a, b in zip(straight.net.state_dict().values(), resumed.net.state_dict().values()):
        assert torch.equal(a, b)
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL  # handlers restored


def test_a_second_trainer_is_refused_and_a_stale_lock_is_taken_over(tmp_path):
    import os
    import socket
    import subprocess

    folder = tmp_path / "locked"
    folder.mkdir()
    (folder / ".lock").write_text(f"{os.getppid()} {socket.gethostname()}\n")  # a live process holds it
    with pytest.raises(UnnoiseError, match=rf"is being trained by process {os.getppid()}.*delete .*\.lock"):
        unnoise.train(unnoise.TrainConfig(steps=3, **SMALL), folder, progress=False)
    gone = subprocess.Popen(["true"])
    gone.wait()
    (folder / ".lock").write_text(f"{gone.pid} {socket.gethostname()}\n")  # its process has exited
    assert unnoise.train(unnoise.TrainConfig(steps=3, **SMALL), folder, progress=False).step == 3
    assert not (folder / ".lock").exists()


def test_a_full_disk_during_a_checkpoint_keeps_the_previous_one(tmp_path, monkeypatch):
    import errno

    checkpoint = importlib.import_module("unnoise.checkpoint")
    real, calls = checkpoint.save_file, []

    def fills_up(tensors, path, metadata=None):
        calls.append(path)
        if len(calls) == 4:  # the second checkpoint's model file
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(tensors, path, metadata=metadata)

    monkeypatch.setattr(checkpoint, "save_file", fills_up)
    with pytest.raises(
        UnnoiseError,
        match=r"could not write the checkpoint of step 20.*No space left on device.*"
        r"previous checkpoint \(step 10\) is intact",
    ):
        unnoise.train(unnoise.TrainConfig(steps=30, checkpoint_every=10, **SMALL), tmp_path / "full", progress=False)
    assert Run.load(tmp_path / "full").step == 10
    assert sorted(p.name for p in (tmp_path / "full").iterdir()) == [
        "config.json",
        "model.safetensors",
        "state.safetensors",
    ]
    monkeypatch.setattr(checkpoint, "save_file", real)
    assert unnoise.train(None, tmp_path / "full", resume=True, progress=False).step == 30


@pytest.mark.parametrize(
    "field,value,words",
    [
        ("width", 10**9, "width = 1000000000 is beyond"),
        ("lr", float("nan"), "lr must be a finite number"),
        ("depth", "3; rm -rf", "depth must be a positive integer"),
        ("conditional", "yes", "conditional must be true or false"),
        ("data", ["moons"], "data must be a short text"),
    ],
)
def test_a_strangers_config_is_checked_before_anything_is_built(tmp_path, trained, field, value, words):
    import shutil

    folder = tmp_path / "stranger"
    shutil.copytree(trained.folder, folder)
    config = json.loads((folder / "config.json").read_text())
    config["train"][field] = value
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(UnnoiseError, match=words):
        Run.load(folder)


class Evil:
    """A pickle that would run code when unpickled: nothing may ever unpickle it."""

    def __init__(self, mark):
        self.mark = mark

    def __reduce__(self):
        import os

        return (os.system, (f"touch {self.mark}",))


def corrupt(path, how, mark):
    """Break one file of a run folder in one of the ways a download or a disk can."""
    import pickle
    import struct

    from safetensors.torch import load_file, save_file

    data = path.read_bytes() if path.exists() else b""
    if how == "missing":
        path.unlink()
    elif how == "empty":
        path.write_bytes(b"")
    elif how == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif how == "garbage":
        path.write_bytes(bytes(range(256)) * 8)
    elif how == "pickle":
        path.write_bytes(pickle.dumps(Evil(mark)))
    elif how == "huge header":
        path.write_bytes(struct.pack("<Q", 2**40) + b"{}")
    elif how in ("wrong dtype", "wrong shape"):
        tensors = load_file(path)
        name = next(k for k, v in tensors.items() if v.dim() >= 1 and v.dtype == torch.float32)
        tensors[name] = tensors[name].double() if how == "wrong dtype" else tensors[name][:1]
        save_file(tensors, path)


@pytest.mark.parametrize("name", ["model.safetensors", "state.safetensors"])
@pytest.mark.parametrize(
    "how", ["missing", "empty", "truncated", "garbage", "pickle", "huge header", "wrong dtype", "wrong shape"]
)
def test_every_broken_tensor_file_is_refused_by_name(tmp_path, trained, name, how):
    import shutil

    folder = tmp_path / "run"
    shutil.copytree(trained.folder, folder)
    mark = tmp_path / "code-ran"
    corrupt(folder / name, how, mark)
    with pytest.raises(UnnoiseError, match=name.replace(".", r"\.")) as err:
        if name == "model.safetensors":
            Run.load(folder)
        else:
            unnoise.train(None, folder, resume=True, steps=700, progress=False)
    assert "\n" not in str(err.value) and not mark.exists()


@pytest.mark.parametrize(
    "how,words",
    [
        ("missing", "is missing"),
        ("empty", "not valid JSON"),
        ("garbage", "not valid JSON"),
        ("pickle", "not valid JSON"),
        ("huge", "is not read"),
        ("list", "not an unnoise run's config"),
        ("newer", "written by a newer unnoise (format version 2)"),
        ("older", "format version 0, which this unnoise does not read"),
    ],
)
def test_every_broken_config_is_refused_by_name(tmp_path, trained, capsys, how, words):
    import shutil

    folder = tmp_path / "run"
    shutil.copytree(trained.folder, folder)
    path, config = folder / "config.json", json.loads((trained.folder / "config.json").read_text())
    mark = tmp_path / "code-ran"
    if how in ("missing", "empty", "garbage", "pickle"):
        corrupt(path, how, mark)
    elif how == "huge":
        path.write_text(json.dumps({**config, "padding": "x" * (2 << 20)}))
    elif how == "list":
        path.write_text(json.dumps([config]))
    else:
        path.write_text(json.dumps({**config, "version": 2 if how == "newer" else 0}))
    from unnoise.cli import main

    for argv in (["evaluate", str(folder), "--n", "10"], ["train", "--out", str(folder), "--resume"]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert "config.json" in err and words in err and err.count("\n") == 1 and "Traceback" not in err
    assert not mark.exists()
