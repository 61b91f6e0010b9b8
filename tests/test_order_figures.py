"""Generation-order figures: raster AR token by token, VAR scale by scale, flow by its x0 estimate."""

import pytest
import torch
from PIL import Image

import unnoise
from unnoise.cli import main
from unnoise.viz.order import FILL, order_frames


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Tiny class-conditional digits runs: raster AR over pixels and over VQ tokens, VAR, a flow; two tokenizers."""
    torch.set_num_threads(1)
    tmp = tmp_path_factory.mktemp("order")
    small = dict(data="digits", steps=5, conditional=True)
    unnoise.train(unnoise.TrainConfig(family="ar", width=16, depth=1, heads=2, **small), tmp / "ar", progress=False)
    unnoise.train(
        unnoise.TrainConfig(data="digits", family="vq", steps=5, width=8, codebook=16), tmp / "tok", progress=False
    )
    unnoise.train(
        unnoise.TrainConfig(family="var", tokens=str(tmp / "tok"), width=16, depth=1, heads=2, **small),
        tmp / "var",
        progress=False,
    )
    unnoise.train(unnoise.TrainConfig(family="flow", width=8, **small), tmp / "flow", progress=False)
    unnoise.train(
        unnoise.TrainConfig(data="digits", family="vq", steps=5, width=8, codebook=16, scales="8"),
        tmp / "tok1",
        progress=False,
    )
    unnoise.train(
        unnoise.TrainConfig(family="ar", tokens=str(tmp / "tok1"), width=16, depth=1, heads=2, **small),
        tmp / "arvq",
        progress=False,
    )
    return {name: tmp / name for name in ("ar", "tok", "var", "flow", "arvq")}


def raster(image):
    """(C, H, W) -> the AR's raster order (row, column, channel), flat."""
    return image.permute(1, 2, 0).flatten()


def test_raster_ar_reveals_one_pixel_per_frame(runs):
    run = unnoise.Run.load(runs["ar"])
    frames, captions = order_frames(run, 0)
    final = raster(run.sample(1, seed=0, label=0)[0])
    assert len(frames) == 64 and captions[11] == "token 12/64" and captions[-1] == "token 64/64"
    for k in (0, 11, 40, 63):  # frame k holds tokens 0..k
        flat = raster(frames[k])
        assert torch.equal(flat[: k + 1], final[: k + 1])
        assert (flat[k + 1 :] == FILL).all()
    capped, captions = order_frames(run, 0, frames=8)
    assert len(capped) == 8 and captions[0] == "token 1/64" and captions[-1] == "token 64/64"
    assert torch.equal(capped[-1], frames[-1])


def test_raster_ar_over_vq_tokens_grays_the_latent_cells_not_drawn(runs):
    run = unnoise.Run.load(runs["arvq"])  # digits 8x8: an 8x8 latent, one cell per pixel
    frames, captions = order_frames(run, 0)
    assert len(frames) == 64 and captions[-1] == "token 64/64"
    assert torch.allclose(frames[-1], run.sample(1, seed=0, label=0)[0], atol=1e-6)
    for k in (0, 20, 62):
        assert (raster(frames[k])[k + 1 :] == FILL).all()


def test_var_frames_are_the_decoded_prefixes_of_scales(runs):
    run = unnoise.Run.load(runs["var"])
    seen = []
    final = run.sample(1, seed=0, label=0, callback=lambda k, ids: seen.append(ids.clone()))[0]
    frames, captions = order_frames(run, 0)
    assert len(frames) == 6 and captions[2] == "scale 3/6 (3x3)"
    assert torch.allclose(frames[-1], final, atol=1e-6)
    tok, L = run.net.tokenizer, sum(run.net.tokenizer.lengths)
    for k, ids in enumerate(seen):  # from the partial ids the sampler held after scale k, zero-padded
        padded = torch.cat([ids, ids.new_zeros(1, L - ids.shape[1])], dim=1)
        assert torch.allclose(frames[k], run.to_data(tok.decode_prefixes(padded, upto=k + 1)[-1])[0], atol=1e-6)


def test_flow_frames_follow_the_x0_estimate(runs):
    run = unnoise.Run.load(runs["flow"])
    frames, captions = order_frames(run, 0)
    assert len(frames) == 20 and captions[0] == "step 1/20, t=1.00" and captions[-1].startswith("step 20/20")
    assert all(f.shape == (1, 8, 8) and 0 <= f.min() and f.max() <= 1 for f in frames)


@pytest.mark.slow
def test_figures_of_a_tokenizer_and_three_runs_side_by_side(runs, tmp_path, capsys):
    out = tmp_path / "figs"
    args = [str(runs[name]) for name in ("tok", "ar", "var", "flow")]
    assert main(["figures", *args, "--out", str(out)]) == 0
    assert "reconstruction.png, order.png, order.gif" in capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == ["order.gif", "order.png", "reconstruction.png"]
    with Image.open(out / "reconstruction.png") as png:
        assert png.height > png.width / 2  # 7 rows: the held-out images and 6 prefixes of scales
    with Image.open(out / "order.gif") as gif:
        assert gif.n_frames == 64  # the longest run's frames, the AR's 64 tokens
        assert gif.info["loop"] == 0
    with Image.open(out / "order.png") as png:
        assert png.format == "PNG" and png.width > 2 * png.height  # 3 rows of 8


@pytest.mark.slow
def test_figures_of_one_var_run(runs, tmp_path):
    out = tmp_path / "var"
    assert main(["figures", str(runs["var"]), "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["guidance.png", "order.gif", "order.png", "samples.png"]
    with Image.open(out / "order.gif") as gif:
        assert gif.n_frames == 6  # one per scale
        gif.seek(5)
        assert gif.info["duration"] == 1000  # the last frame held
