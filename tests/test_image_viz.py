"""Image figures: pixels land where they should, files are whole PNGs and GIFs."""

import torch
from PIL import Image

from unnoise.viz.images import denoising_gif, denoising_strip, guidance_grid, sample_grid, save, save_image, tile


def test_tile_places_each_image_in_its_cell():
    images = torch.stack([torch.full((1, 2, 3), v) for v in (0.1, 0.2, 0.3, 0.4, 0.5)])  # 5 images 2x3
    grid = tile(images, ncol=2, pad=1, fill=1.0)
    assert grid.shape == (1, 3 * 3 - 1, 2 * 4 - 1)
    assert grid[0, 0, 0] == 0.1 and grid[0, 0, 4] == 0.2 and grid[0, 3, 0] == 0.3 and grid[0, 6, 4] == 1.0
    assert grid[0, 2, 0] == 1.0  # padding row


def test_save_image_writes_an_upscaled_png(tmp_path):
    images = torch.rand(12, 3, 4, 4)
    save_image(images, tmp_path / "grid.png", ncol=6, upscale=3)
    with Image.open(tmp_path / "grid.png") as png:
        assert png.size == (3 * (6 * 5 - 1), 3 * (2 * 5 - 1)) and png.mode == "RGB"
        assert png.getpixel((0, 0)) == tuple(round(float(v) * 255) for v in images[0, :, 0, 0])


def test_sample_grid_has_one_row_per_class(tmp_path):
    labels = torch.tensor([2, 0, 1, 0, 2, 1, 0])
    fig = sample_grid(torch.rand(7, 1, 8, 8), labels, class_names=["zero", "one", "two"], per_row=3)
    rows = [ax.get_ylabel() for ax in fig.axes if ax.get_ylabel()]
    assert rows == ["zero", "one", "two"] and len(fig.axes) == 9
    save(fig, tmp_path / "samples.png")
    assert Image.open(tmp_path / "samples.png").format == "PNG"


def test_guidance_grid_and_denoising_strip_are_labelled(tmp_path):
    fig = guidance_grid(torch.rand(3, 4, 1, 8, 8), [0, 1, 3.5])
    assert [ax.get_ylabel() for ax in fig.axes if ax.get_ylabel()] == ["w=0", "w=1", "w=3.5"]
    ts = [1.0, 0.5, 0.0]
    fig = denoising_strip([torch.rand(4, 1, 8, 8)] * 3, [torch.rand(4, 1, 8, 8)] * 3, ts)
    assert [ax.get_title() for ax in fig.axes if ax.get_title()] == ["t=1.00", "t=0.50", "t=0.00"]
    save(fig, tmp_path / "strip.png")


def test_denoising_gif_has_one_frame_per_step(tmp_path):
    xts = [torch.rand(1, 8, 8) for _ in range(4)]
    denoising_gif(xts, xts, [1.0, 0.6, 0.3, 0.0], tmp_path / "denoise.gif")
    with Image.open(tmp_path / "denoise.gif") as gif:
        assert gif.n_frames == 4
    assert [p.name for p in tmp_path.iterdir()] == ["denoise.gif"]  # no temporary file left behind
