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
        raise KeyboardInterrupt                      # killed right after the step-20 checkpoint
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
    ticks = iter(range(10**6))                       # a fake clock: every reading is one second later
    monkeypatch.setattr(train_module, "time", SimpleNamespace(perf_counter=lambda: float(next(ticks))))
    rates = []
    monkeypatch.setattr(train_module, "learning_rate", lambda c, s, p=None: rates.append(p) or 1e-3)
    run = unnoise.train(cfg, tmp_path / "timed", progress=False, seconds=20)
    assert run.step == 10 and run.cfg.steps == 10     # two readings per step: 20 s hold 10 steps
    assert rates == [pytest.approx((1 + 2 * k) / 20) for k in range(10)]   # the clock read before each step
    assert unnoise.train(None, tmp_path / "timed", resume=True, steps=12, progress=False).step == 12
    with pytest.raises(UnnoiseError, match="fresh run"):
        unnoise.train(None, tmp_path / "timed", resume=True, progress=False, seconds=5)


def test_bf16_autocast_keeps_fp32_weights_and_tracks_the_fp32_losses(tmp_path):
    losses = {}
    for precision in ("fp32", "bf16"):
        losses[precision] = []
        run = unnoise.train(unnoise.TrainConfig(steps=30, **SMALL), tmp_path / precision, progress=False,
                            precision=precision, callback=lambda s, loss, n, e: losses[precision].append(loss))
        assert {p.dtype for p in run.net.parameters()} == {torch.float32}
    fp32, bf16 = torch.tensor(losses["fp32"]), torch.tensor(losses["bf16"])
    assert not torch.equal(fp32, bf16)                                   # the autocast took effect
    assert ((bf16 - fp32).abs() / fp32).max() < 0.01                    # and stayed on the fp32 trajectory
    with pytest.raises(UnnoiseError, match="unknown precision 'fp16'; choose one of fp32, tf32, bf16"):
        unnoise.train(unnoise.TrainConfig(steps=2, **SMALL), tmp_path / "fp16", progress=False, precision="fp16")
