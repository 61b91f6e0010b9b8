"""Image data (digits, MNIST, folders) and the U-Net: real behaviour, not just shapes."""

import dataclasses
import warnings

import numpy as np
import pytest
import torch
from PIL import Image

import unnoise
from unnoise.data.images import UnreadableImagesWarning, image_dataset, load_images, split_mask
from unnoise.errors import UnnoiseError
from unnoise.nets.unet import UNet, num_params

# ---- bundled data sets ------------------------------------------------------------------------


def test_digits_shapes_range_and_classes():
    x, y, names = load_images("digits", "train")
    assert x.shape == (1438, 1, 8, 8) and x.dtype == torch.float32 and y.dtype == torch.int64
    assert x.min() == 0 and x.max() == 1
    assert names == [str(i) for i in range(10)] and set(y.tolist()) == set(range(10))


def test_digits_split_is_disjoint_stratified_and_pinned():
    from sklearn.datasets import load_digits

    y = torch.tensor(load_digits().target)
    train, heldout = split_mask(y)
    assert not (train & heldout).any() and (train | heldout).all()
    for c in range(10):  # 20% of each class, rounded
        assert heldout[y == c].sum() == round(0.2 * (y == c).sum().item())
    idx = torch.nonzero(heldout).flatten()  # pinned: the split must never move
    assert len(idx) == 359 and idx[:5].tolist() == [3, 7, 13, 19, 36] and int(idx.sum()) == 311827
    hx, hy, _ = load_images("digits", "heldout")
    again, _, _ = load_images("digits", "heldout")
    assert hx.shape[0] == 359 and torch.equal(hx, again)


@pytest.mark.slow
def test_mnist_default_size_is_16_and_the_split_holds_100_per_class():
    x, y, _ = load_images("mnist", "heldout")
    assert x.shape == (1000, 1, 16, 16) and torch.bincount(y).tolist() == [100] * 10
    assert 0 <= x.min() and x.max() <= 1 and x.mean() > 0.05  # digits, not a blank
    full, _, _ = load_images("mnist", "train", size=28)
    assert full.shape == (4000, 1, 28, 28)


def test_channels_and_dataset_wrapper():
    rgb, _, _ = load_images("digits", "heldout", channels=3)
    gray, _, _ = load_images("digits", "heldout")
    assert rgb.shape[1] == 3 and torch.equal(rgb[:, 1:2], gray)
    data = image_dataset("digits", "train")
    assert data.kind == "images" and data.num_classes == 10
    z = data.normalize(data.x)
    assert z.min() == -1 and z.max() == 1 and torch.allclose(data.denormalize(z), data.x)


def test_bad_split_and_size():
    with pytest.raises(UnnoiseError, match="split"):
        load_images("digits", "fresh")
    with pytest.raises(UnnoiseError, match="size"):
        load_images("digits", "train", size=0)


# ---- folders ----------------------------------------------------------------------------------


def _png(path, array):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(array, dtype=np.uint8)).save(path)


def _class_folder(root):
    """cats: bright squares at two sizes; dogs: dark images, one wide with a bright centre; one corrupt file."""
    _png(root / "cats" / "a.png", np.full((12, 12), 255))
    _png(root / "cats" / "b.png", np.full((30, 30), 255))
    _png(root / "cats" / "sub" / "c.png", np.full((16, 16), 250))  # nested folders count for the class
    for i in range(3):
        _png(root / "dogs" / f"d{i}.png", np.full((9, 9), 10 * i))
    wide = np.zeros((20, 40))
    wide[:, 10:30] = 255  # the centre square survives the crop
    _png(root / "dogs" / "wide.png", wide)
    (root / "dogs" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    (root / "dogs" / "notes.txt").write_text("ignored: not an image")


def test_folder_with_classes_mixed_sizes_and_a_corrupt_file(tmp_path):
    _class_folder(tmp_path)
    with pytest.warns(UnreadableImagesWarning, match=r"skipped 1 unreadable .*broken\.png"):
        x, y, names = load_images(str(tmp_path), "train", size=8)
    hx, hy, _ = load_images(str(tmp_path), "heldout", size=8)
    assert names == ["cats", "dogs"] and x.shape[1:] == (1, 8, 8)  # gray files stay one channel
    assert len(x) + len(hx) == 7 and sorted(torch.cat([y, hy]).tolist()) == [0, 0, 0, 1, 1, 1, 1]
    everything = torch.cat([x, hx])
    labels = torch.cat([y, hy])
    assert (everything[labels == 0] > 0.97).all()  # white squares, resized, still white
    wide = everything[(labels == 1) & (everything.mean((1, 2, 3)) > 0.9)]
    assert len(wide) == 1  # center crop kept the bright middle


def test_folder_without_classes_and_rgb(tmp_path):
    for i in range(6):
        _png(tmp_path / f"{i}.jpg", np.stack([np.full((10, 14), 200), np.zeros((10, 14)), np.full((10, 14), 50)], -1))
    x, y, names = load_images(str(tmp_path), "train", size=4)
    assert names == [] and x.shape[1:] == (3, 4, 4) and (y == 0).all()
    assert torch.allclose(x[0, :, 0, 0], torch.tensor([200, 0, 50]) / 255, atol=0.03)
    assert image_dataset(str(tmp_path)).num_classes == 0


def test_folder_errors(tmp_path):
    with pytest.raises(UnnoiseError, match="does not exist"):
        load_images(str(tmp_path / "nowhere"))
    with pytest.raises(UnnoiseError, match="no PNG or JPEG"):
        load_images(str(tmp_path))
    (tmp_path / "bad.png").write_bytes(b"garbage")
    with pytest.raises(UnnoiseError, match="no readable images"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        load_images(str(tmp_path))
    (tmp_path / "file.png").write_text("x")
    with pytest.raises(UnnoiseError, match="not a folder"):
        load_images(str(tmp_path / "file.png"))


def test_folder_change_is_seen(tmp_path):
    for i in range(5):
        _png(tmp_path / f"{i}.png", np.full((8, 8), 100))
    before = load_images(str(tmp_path), "train", size=8)[0]
    for i in range(5, 10):
        _png(tmp_path / f"{i}.png", np.full((8, 8), 100))
    assert len(load_images(str(tmp_path), "train", size=8)[0]) == 2 * len(before)


# ---- U-Net ------------------------------------------------------------------------------------


def test_unet_shapes_params_and_sizes():
    net = UNet(1, num_classes=10, size=8)
    assert 100_000 <= num_params(net) <= 450_000
    for size in (8, 16, 28):
        x = torch.randn(2, 1, size, size)
        assert net(x, torch.rand(2), torch.tensor([0, 3])).shape == x.shape
    rgb = UNet(3, width=16, mults=(1, 2, 2))
    assert rgb(torch.randn(2, 3, 12, 12), torch.rand(2)).shape == (2, 3, 12, 12)


def test_patches_fold_pixels_into_channels_and_back():
    """patch 2: the network runs at half the side, and pixel (i, j) of the output depends on the patch it is in."""
    net = UNet(1, width=16, size=28, patch=2)
    assert net.inp.in_channels == 4 and net.out[-1].out_channels == 4 and net.factor == 4
    x = torch.randn(2, 1, 28, 28)
    assert net(x, torch.rand(2)).shape == x.shape
    torch.nn.init.normal_(net.out[-1].weight)  # the output conv starts at zero
    x = torch.zeros(1, 1, 28, 28, requires_grad=True)
    net(x, torch.rand(1))[0, 0, 27, 27].backward()
    assert x.grad[0, 0, 26:, 26:].abs().min() > 0  # its own 2x2 patch reaches it
    cfg = unnoise.TrainConfig(data="mnist", size=28)
    assert (cfg.patch, unnoise.TrainConfig(data="mnist").patch, unnoise.TrainConfig(data="digits").patch) == (2, 1, 1)
    old = {k: v for k, v in dataclasses.asdict(cfg).items() if k != "patch"}
    assert unnoise.TrainConfig.from_dict(old).patch == 1  # a run saved before patches existed
    with pytest.raises(UnnoiseError, match=r"--size 26 .* multiple of 4 \(try 24 or 28\)"):
        unnoise.TrainConfig(data="mnist", size=26)
    with pytest.raises(UnnoiseError, match="--patch belong to diffusion, flow and edm"):
        unnoise.TrainConfig(data="digits", family="vq", patch=2)
    with pytest.raises(UnnoiseError, match="--patch, --net and --latent are for image data"):
        unnoise.TrainConfig(data="moons", patch=2)


def test_unet_rejects_sizes_it_cannot_take():
    with pytest.raises(UnnoiseError, match=r"--size 15 .* multiple of 2 \(try 14 or 16\)"):
        UNet(1, size=15)
    with pytest.raises(UnnoiseError, match=r"multiple of 4 \(try 12 or 16\)"):
        UNet(1, size=14, mults=(1, 2, 2))
    with pytest.raises(UnnoiseError, match="--size 9"):
        UNet(1)(torch.randn(1, 1, 9, 9), torch.rand(1))


@pytest.mark.slow
def test_unet_learns_to_use_class_and_time():
    """Trained briefly to draw class c's pattern scaled by t, it must tell classes and times apart."""
    torch.manual_seed(0)
    net = UNet(1, width=16, num_classes=2)
    pattern = torch.zeros(2, 1, 8, 8)
    pattern[0, :, :4], pattern[1, :, 4:] = 1.0, 1.0  # top half vs bottom half
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    for _ in range(150):
        y, t = torch.randint(0, 2, (32,)), torch.rand(32)
        target = pattern[y] * t[:, None, None, None]
        loss = (net(torch.randn(32, 1, 8, 8), t, y) - target).square().mean()
        opt.zero_grad(), loss.backward(), opt.step()
    with torch.no_grad():
        noise, t = torch.randn(2, 1, 8, 8), torch.tensor([0.9, 0.9])
        out = net(noise, t, torch.tensor([0, 1]))
        low = net(noise, torch.tensor([0.1, 0.1]), torch.tensor([0, 1]))
    assert (out - 0.9 * pattern).square().mean() < 0.02
    assert (low - 0.1 * pattern).square().mean() < 0.02
