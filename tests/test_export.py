"""`unnoise export --format diffusers`: diffusers' schedulers load the run's schedule, and DDIMScheduler driven
by the run's own network reproduces `unnoise sample --sampler ddim --spacing trailing`."""

import json

import diffusers
import pytest
import torch

import unnoise
from unnoise.cli import main
from unnoise.samplers import PerSampleNoise

SCHEDULERS = ("DDIMScheduler", "DDPMScheduler", "EulerDiscreteScheduler", "DPMSolverMultistepScheduler")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("export")
    small = dict(steps=150, width=64, depth=2, batch_size=256, progress=False)
    return {
        name: unnoise.train(
            unnoise.TrainConfig(
                data="moons",
                schedule=schedule,
                prediction=prediction,
                **{k: v for k, v in small.items() if k != "progress"},
            ),
            root / name,
            progress=False,
        )
        for name, schedule, prediction in (("eps", "linear", "eps"), ("v", "cosine", "v"))
    }


def diffusers_ddim(run, folder, n, steps, seed):
    """DDIM as a diffusers user writes it, with the run's network: the samples in model units."""
    scheduler = diffusers.DDIMScheduler.from_pretrained(folder)
    scheduler.set_timesteps(steps)
    x = run.initial(PerSampleNoise.for_range(seed, 0, n))
    with torch.no_grad():
        for t in scheduler.timesteps:
            out = run.net(x, run.path.net_time(torch.full((n,), float(t))), None)
            x = scheduler.step(out, t, x, use_clipped_model_output=True).prev_sample
    return x


@pytest.mark.slow
@pytest.mark.parametrize("name", ["eps", "v"])
def test_diffusers_ddim_with_the_runs_network_reproduces_unnoise_sample(runs, tmp_path, capsys, name):
    run = runs[name]
    assert main(["export", str(run.folder), "--format", "diffusers", "--out", str(tmp_path / "sched")]) == 0
    assert "DDIMScheduler.from_pretrained" in capsys.readouterr().out
    config = json.loads((tmp_path / "sched" / "scheduler_config.json").read_text())
    for cls in SCHEDULERS:  # every one of them loads the run's betas
        scheduler = getattr(diffusers, cls).from_pretrained(tmp_path / "sched")
        assert torch.allclose(scheduler.alphas_cumprod, run.path.alphas_cumprod, atol=1e-7), cls
    theirs = run.to_data(diffusers_ddim(run, tmp_path / "sched", 64, 25, seed=4))
    ours = run.sample(64, sampler="ddim", nfe=25, spacing="trailing", seed=4, clip=False)
    scale = max(1.0, float(ours.abs().max()))
    assert (theirs - ours).abs().max() <= 1e-5 * scale, float((theirs - ours).abs().max())
    assert config["prediction_type"] == {"eps": "epsilon", "v": "v_prediction"}[name]


def test_runs_without_a_diffusers_schedule_are_one_line(tmp_path, capsys):
    flow = unnoise.train(
        unnoise.TrainConfig(data="moons", family="flow", steps=2, width=16), tmp_path / "flow", progress=False
    )
    assert main(["export", str(flow.folder), "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert "flow run on the rectified schedule" in err and "linear, scaled_linear, cosine" in err
    assert err.count("\n") == 1 and not (tmp_path / "x").exists()
    assert main(["export", str(flow.folder), "--format", "onnx", "--out", str(tmp_path / "x")]) == 2
    assert "invalid choice: 'onnx'" in capsys.readouterr().err
