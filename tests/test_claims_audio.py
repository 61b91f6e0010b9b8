"""Claim "audio": mnist1d made by code, the judge, AR's and diffusion's sequential calls, and the command end to end."""

import json

import pytest
import torch

from unnoise.claims import audio
from unnoise.cli import main
from unnoise.data import signals1d
from unnoise.errors import UnnoiseError
from unnoise.nets.conv1d import Denoiser1d, WaveNet
from unnoise.paths import make_path

pytestmark = pytest.mark.slow


def test_mnist1d_is_made_by_code_deterministic_with_the_stated_shapes_and_classes():
    x, y = signals1d.mnist1d("train")
    xt, yt = signals1d.mnist1d("test")
    assert x.shape == (4000, 1, 40) and xt.shape == (1000, 1, 40) and x.dtype == torch.float32
    assert torch.equal(x, signals1d.mnist1d("train")[0]) and torch.equal(y, signals1d.mnist1d("train")[1])
    assert torch.equal(torch.cat([y, yt]).bincount(), torch.full((10,), 500))  # 500 per class in all
    both = torch.cat([x, xt]).double()
    assert abs(both.mean()) < 1e-5 and abs(both.std() - 1) < 1e-3  # standardized as a whole
    assert not torch.equal(x, signals1d.mnist1d("train", seed=7)[0])
    assert len({tuple(t.round(decimals=3).tolist()) for t in torch.tensor(signals1d.templates())}) == 10
    with pytest.raises(UnnoiseError, match="train, test"):
        signals1d.mnist1d("validation")


def test_waveforms_are_deterministic_and_below_their_peak():
    w = signals1d.waves(50, 300, seed=3)
    assert w.shape == (50, 1, 300) and torch.equal(w, signals1d.waves(50, 300, seed=3))
    assert w.abs().max() < 1.1 and not torch.equal(w, signals1d.waves(50, 300, seed=4))


def test_the_judge_beats_chance_by_a_wide_margin_on_real_heldout_mnist1d():
    x, y = signals1d.mnist1d("train")
    xt, yt = signals1d.mnist1d("test")
    torch.manual_seed(0)
    judge = audio.Judge1d()
    audio.train_judge(judge, x, y, steps=400)
    assert audio.accuracy(judge.eval(), xt, yt) > 0.6  # chance is 0.1


def test_mu_law_round_trips_every_level_and_spectral_distance_is_exact():
    levels = torch.arange(256)
    assert torch.equal(audio.mu_law(audio.inverse_mu_law(levels)), levels)
    assert audio.mu_law(torch.tensor([-1.0, 1.0])).tolist() == [0, 255]
    p = torch.rand(21, dtype=torch.float64) + 0.1
    assert audio.log_spectral_distance(10 * p, p) == pytest.approx(10.0)  # a factor of 10 is 10 dB
    white = torch.randn(4000, 1, 64, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(audio.power_spectrum(white)[1:-1], torch.ones(31, dtype=torch.float64), atol=0.1)


def test_ar_makes_l_sequential_calls_and_diffusion_makes_nfe_at_any_length():
    torch.manual_seed(0)
    ar, diffusion, path = WaveNet(width=8, dilations=(1, 2, 4)), Denoiser1d(width=8), make_path("vp-cosine")
    tokens = torch.randint(0, 256, (2, 30))
    later = tokens.clone()
    later[:, 20] = (later[:, 20] + 1) % 256
    assert torch.allclose(ar(tokens)[:, :, :20], ar(later)[:, :, :20], atol=1e-6)  # causal: no look ahead
    window = ar(tokens[:, -ar.receptive :])[:, :, -1]  # another length may take another conv kernel: float32 rounding
    assert torch.allclose(ar(tokens)[:, :, -1], window, atol=1e-6)  # the window suffices
    for length in (5, 40, 100):
        with audio.counting(ar) as calls:
            assert audio.sample_ar(ar, 3, length).shape == (3, length)
        assert len(calls) == length
        with audio.counting(diffusion) as calls:
            assert audio.sample_diffusion(diffusion, path, 3, length, nfe=6).shape == (3, 1, length)
        assert len(calls) == 6


def test_claims_only_audio_quick_end_to_end(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(
        audio.SETTINGS, "quick", dict(seconds=1, judge_steps=60, n=20, nfe=4, lengths=(40, 128), batch=2)
    )
    out = tmp_path / "claims"
    assert main(["claims", "--only", "audio", "--quick", "--out", str(out)]) == 0
    saved = json.loads((out / "claims.json").read_text())
    (row,) = saved["rows"]
    assert row["name"] == "audio" and row["verdict"].startswith("False as stated") and "L = 128" in row["ours"]
    assert (out / row["figure"]).stat().st_size > 10_000 and "audio" in capsys.readouterr().out
    result = saved["results"]["audio"]
    assert [(r["ar_calls"], r["diffusion_calls"]) for r in result["waves"]["timing"]] == [(40, 4), (128, 4)]
    assert 0 <= result["mnist1d"]["judge"]["ar"] <= 1 and result["mnist1d"]["spectra"]["floor"] >= 0
    ar, diffusion = (result["mnist1d"]["parameters"][f] for f in ("ar", "diffusion"))
    assert abs(ar - diffusion) < 0.1 * ar  # about equal sizes
    assert main(["claims", "--only", "audio", "--quick", "--out", str(out)]) == 0  # reuses its trained nets
    again = json.loads((out / "claims.json").read_text())["results"]["audio"]
    assert again["mnist1d"]["steps"] == result["mnist1d"]["steps"]
    assert sorted(p.name for p in (out / "runs" / "audio").iterdir()) == [
        "judge.safetensors",
        "mnist1d-ar.safetensors",
        "mnist1d-diffusion.safetensors",
        "waves-ar.safetensors",
        "waves-diffusion.safetensors",
    ]
