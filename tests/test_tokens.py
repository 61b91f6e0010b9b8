"""The token families: one transformer (masks, KV cache, null class), sampling, exact bits, tokenizers."""

import importlib
import json
import math

import pytest
import torch

import unnoise
from unnoise.cli import main
from unnoise.families import autoregressive
from unnoise.families import tokens as token_sampling
from unnoise.nets.transformer import Transformer, level_mask
from unnoise.tokenizers.multiscale import MultiScaleVQ, reconstruction_report

VAR_LEVELS = torch.cat([torch.full((p * p,), k) for k, p in enumerate((1, 2, 3))])  # L = 14


def tiny(levels, in_features=None, classes=3):
    torch.manual_seed(0)
    net = Transformer(7, levels, width=16, depth=2, heads=2, num_classes=classes, in_features=in_features).eval()
    for p in net.parameters():  # adaLN-Zero starts blocks as identity: make them do something
        p.data.add_(0.1 * torch.randn_like(p))
    return net


def inputs_for(net, batch=4):
    gen = torch.Generator().manual_seed(1)
    if isinstance(net.embed, torch.nn.Embedding):
        return torch.randint(0, 7, (batch, net.length - net.first), generator=gen)
    return torch.randn(batch, net.length - net.first, net.embed.in_features, generator=gen)


def test_level_mask_is_block_causal():
    mask = level_mask(VAR_LEVELS)
    for i in range(14):
        for j in range(14):
            assert bool(mask[i, j]) == bool(VAR_LEVELS[j] <= VAR_LEVELS[i])


@pytest.mark.parametrize("kind", ["raster", "var"])
def test_no_position_sees_its_future(kind):
    """Perturbing the inputs of later levels leaves the logits of earlier levels unchanged."""
    levels = torch.arange(10) if kind == "raster" else VAR_LEVELS
    net = tiny(levels, None if kind == "raster" else 5)
    x, y = inputs_for(net), torch.tensor([0, 1, 2, 3])
    base = net(x, y)
    for cut in range(1, net.length - net.first):  # inputs index cut feeds position cut + first
        changed = x.clone()
        changed[:, cut:] = (changed[:, cut:] + 1) % 7 if kind == "raster" else changed[:, cut:] + 1.0
        out = net(changed, y)
        level = int(levels[cut + net.first])
        earlier = levels < level
        assert torch.equal(out[:, earlier], base[:, earlier])
        assert not torch.allclose(out[:, levels == level], base[:, levels == level])


def test_tokens_inside_one_var_scale_see_each_other():
    """The last input of scale 2 changes the logits of the first position of scale 2 (bidirectional inside)."""
    net = tiny(VAR_LEVELS, 5)
    x, y = inputs_for(net), torch.tensor([0, 1, 2, 3])
    changed = x.clone()
    changed[:, 4 - net.first] += 1.0  # position 4, the last of scale 1 (2x2: positions 1..4)
    out, base = net(changed, y), net(x, y)
    assert not torch.allclose(out[:, 1], base[:, 1])
    assert torch.equal(out[:, 0], base[:, 0])


@pytest.mark.parametrize("kind", ["raster", "var"])
def test_kv_cached_steps_equal_the_full_forward_pass(kind):
    """Level by level with the cache (as sampling runs, CFG-doubled batch) gives the teacher-forced logits."""
    levels = torch.arange(10) if kind == "raster" else VAR_LEVELS
    net = tiny(levels, None if kind == "raster" else 5)
    x = inputs_for(net, 3)
    x = torch.cat([x, x])
    y = torch.cat([torch.tensor([0, 1, 2]), net.null(3)])  # cond half, null half
    full = net(x, y)
    cache, pos, stepped = net.new_cache(), 0, []
    lengths = torch.bincount(levels).tolist()
    for k, length in enumerate(lengths):
        chunk = None if k == 0 else x[:, pos - net.first : pos - net.first + length]
        stepped.append(net.step(chunk, y, cache, pos))
        pos += length
    assert torch.allclose(torch.cat(stepped, dim=1), full, atol=1e-5)


def test_filters_keep_the_likeliest_tokens():
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]]))
    assert torch.isinf(token_sampling.filter_logits(logits, top_k=2)[0, 2:]).all()
    kept = ~torch.isinf(token_sampling.filter_logits(logits, top_p=0.8)[0])
    assert kept.tolist() == [True, True, False, False]  # 0.5 + 0.3 reaches 0.8
    kept = ~torch.isinf(token_sampling.filter_logits(logits, top_p=0.81)[0])
    assert kept.tolist() == [True, True, True, False]
    assert torch.allclose(token_sampling.filter_logits(logits, 2.0).softmax(-1), (logits / 2).softmax(-1))


def test_inverse_cdf_draws_follow_the_probabilities():
    probs = torch.tensor([0.1, 0.6, 0.3])
    u = torch.rand(200000, generator=torch.Generator().manual_seed(0))
    ids = token_sampling.draw(probs.log().expand(len(u), 3), u)
    assert torch.allclose(torch.bincount(ids, minlength=3) / len(u), probs, atol=0.005)


@pytest.mark.slow
def test_bits_of_a_known_discrete_distribution_match_its_entropy():
    """A raster AR fitted to 4-pixel images: pixel 0 ~ Bernoulli(0.3) over {0, 3}, pixel 1 copies it, the rest 1.

    Entropy H(0.3) = 0.881 bits per image whatever the order, so the held-out code length must approach it.
    """
    torch.manual_seed(0)
    net = Transformer(4, torch.arange(4), width=32, depth=2, heads=2)
    cfg = unnoise.TrainConfig(data="digits", family="ar", width=32, depth=2, heads=2, levels=4)
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    gen = torch.Generator().manual_seed(0)

    def draw_images(n):
        first = (torch.rand(n, generator=gen) < 0.3).long() * 3
        return torch.stack([first, first, torch.ones_like(first), torch.ones_like(first)], dim=1)

    for _ in range(300):
        loss = autoregressive.AR.loss(net, cfg, {"tokens": draw_images(256)}, None, gen)
        opt.zero_grad()
        loss.backward()
        opt.step()
    held = draw_images(4000)
    run = type("R", (), {"net": net.eval()})()
    per_image, per_level = token_sampling.nll_bits(run, held, held[:, :-1])
    entropy = -(0.3 * math.log2(0.3) + 0.7 * math.log2(0.7))
    assert abs(float(per_image.mean()) - entropy) < 0.03
    assert float(per_level[0]) == pytest.approx(entropy, abs=0.03)  # all the uncertainty is in pixel 0
    assert float(per_level[1:].sum()) < 0.02


@torch.no_grad()
def test_quantizer_round_trip_is_exact():
    """Indices -> f_hat reproduces the quantizer's f_hat, and the teacher inputs are f_hat's prefixes downsampled."""
    torch.manual_seed(0)
    tok = MultiScaleVQ(1, 8, (1, 2, 4, 8), codebook=16, latent=4, width=8).eval()
    x = torch.rand(5, 1, 8, 8) * 2 - 1
    indices, f_hat, _ = tok.quantize(tok.encoder(x))
    ids = tok.tokens(x)
    assert all(torch.equal(a, b) for a, b in zip(tok.split(ids), indices))
    rebuilt = sum(tok.embed_scale(idx, k) for k, idx in enumerate(indices))
    assert torch.allclose(rebuilt, f_hat, atol=1e-6)
    first_two = tok.embed_scale(indices[0], 0) + tok.embed_scale(indices[1], 1)
    inputs = tok.teacher_inputs(ids)  # (5, L - 1, C)
    assert torch.allclose(inputs[:, 4:20], tok.next_input(first_two, 1), atol=1e-6)  # scale 3 (4x4) after 1 + 4
    assert torch.allclose(tok.decode(ids), tok.decoder(f_hat), atol=1e-5)


@pytest.fixture(scope="module")
def token_runs(tmp_path_factory):
    """A multi-scale tokenizer, a VAR on it and a pixel AR, trained briefly on digits."""
    root = tmp_path_factory.mktemp("tokens")
    common = dict(data="digits", conditional=True, width=32, depth=2, heads=2, batch_size=64)
    tok = unnoise.train(
        unnoise.TrainConfig(data="digits", family="vq", steps=300, width=16, codebook=32, batch_size=64),
        root / "tok",
        progress=False,
    )
    var = unnoise.train(
        unnoise.TrainConfig(family="var", tokens=str(root / "tok"), steps=150, **common), root / "var", progress=False
    )
    ar = unnoise.train(unnoise.TrainConfig(family="ar", steps=150, **common), root / "ar", progress=False)
    return {"root": root, "tok": tok, "var": var, "ar": ar}


@pytest.mark.slow
def test_multiscale_tokenizer_improves_with_every_prefix_and_uses_its_codes(token_runs):
    tok = token_runs["tok"]
    heldout = tok.dataset.normalize(tok.dataset.x)
    report = reconstruction_report(tok.net, heldout)
    rmse = report["rmse_per_prefix"]
    assert all(b < a for a, b in zip(rmse, rmse[1:])), rmse
    assert rmse[-1] < 0.5 * rmse[0]
    config = json.loads((token_runs["root"] / "tok" / "config.json").read_text())
    used = config["codes"]["codes_used_per_scale"]
    assert len(used) == 6 and min(used) >= 2, used  # k-means init and restarts: no collapse
    assert used[-1] >= 16


@pytest.mark.slow
@pytest.mark.parametrize("family", ["ar", "var"])
def test_a_sample_does_not_depend_on_its_batch(token_runs, family):
    run = token_runs[family]
    one = run.sample(7, seed=3, label="each", guidance=1.5, batch_size=7)
    split = run.sample(7, seed=3, label="each", guidance=1.5, batch_size=3)
    assert torch.equal(one, split)
    assert not torch.equal(one, run.sample(7, seed=4, label="each", guidance=1.5))


@pytest.mark.slow
@pytest.mark.parametrize("family", ["ar", "var"])
def test_guidance_one_is_the_conditional_model_and_zero_the_unconditional(token_runs, family):
    run = token_runs[family]
    logits = []
    run.net.step = (lambda step: lambda *a: logits.append(step(*a)) or logits[-1])(run.net.step)
    try:
        cond = run.sample(4, seed=1, label=2)
        assert logits and all(out.shape[0] == 4 for out in logits)  # no null-class half is run at w = 1
        assert torch.equal(run.sample(4, seed=1, label=2, guidance=1.0), cond)
        logits.clear()
        run.sample(4, seed=1, label=2, guidance=1.5)
        assert all(out.shape[0] == 8 for out in logits)  # w != 1: the null half rides along
        assert torch.equal(run.sample(4, seed=1, label=2, guidance=0.0), run.sample(4, seed=1))  # null class
    finally:
        del run.net.step


@pytest.mark.slow
def test_pixel_ar_bits_are_exact_and_below_uniform(token_runs):
    run = token_runs["ar"]
    bits = run.family.bits(run, run.dataset.x)
    assert bits["bpd"] == pytest.approx(bits["bits_per_image"] / 64)
    assert bits["bpd"] < math.log2(17) - 0.5  # learnt something beyond the uniform 4.09 bits


@pytest.mark.slow
def test_samples_follow_what_the_model_learnt(token_runs, capsys, classifier_cache):
    """150 steps of pixel AR on digits: `evaluate` counts 64 forward passes, the exact bits fall well below
    uniform, and the samples' share of black pixels (49% of real digit pixels) matches the data's."""
    assert main(["evaluate", str(token_runs["root"] / "ar"), "--n", "200", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["nfe"] == 64 and result["bpd"] < 3.6 and result["grid"] == "17 levels"
    real = token_runs["ar"].dataset.x
    samples = token_runs["ar"].sample(300, seed=0, label="each")
    assert abs(float((samples == 0).float().mean()) - float((real == 0).float().mean())) < 0.1
    assert torch.equal(samples, (samples * 16).round() / 16)  # on the 17-level grid


@pytest.mark.slow
def test_a_prior_refuses_a_tokenizer_it_was_not_trained_on(token_runs, tmp_path):
    import shutil

    folder = tmp_path / "var"
    shutil.copytree(token_runs["root"] / "var", folder)
    weights = folder / "tokenizer" / "model.safetensors"
    tensors = unnoise.checkpoint.load_tensors(weights)
    tensors["codebook"] = tensors["codebook"] + 0.01
    unnoise.checkpoint.save_tensors(weights, tensors)
    with pytest.raises(unnoise.UnnoiseError, match="not the tokenizer"):
        unnoise.Run.load(folder)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["train", "--data", "digits", "--family", "vq", "--scales", "1,3,2,8"], "rise strictly"),
        (["train", "--data", "digits", "--family", "vq", "--scales", "1,2,4"], "end at the latent side 8"),
        (["train", "--data", "digits", "--family", "vq", "--scales", "1,x"], "whole numbers"),
        (["train", "--data", "moons", "--family", "var"], "models images"),
        (["train", "--data", "digits", "--family", "ar", "--schedule", "cosine"], "belong to diffusion"),
        (["train", "--data", "digits", "--family", "ar", "--levels", "300"], "2..256"),
    ],
)
def test_bad_training_input(argv, message, tmp_path, capsys):
    assert main(argv + ["--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "x").exists()


@pytest.mark.slow
def test_tokens_must_name_a_fitting_tokenizer(token_runs, tmp_path, capsys):
    root = token_runs["root"]
    cases = [
        (["--family", "var", "--tokens", str(root / "ar")], "not a tokenizer"),
        (["--family", "var", "--tokens", str(tmp_path)], "no config.json"),
        (["--family", "ar", "--tokens", str(root / "tok")], "single-scale"),
        (["--family", "var", "--tokens", str(root / "tok"), "--size", "16"], "at 8x8"),
    ]
    for extra, message in cases:
        assert main(["train", "--data", "digits", *extra, "--out", str(tmp_path / "x")]) == 2
        assert message in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.parametrize(
    "family, extra, message",
    [
        ("var", ["--top-k", "33"], "1..32"),
        ("ar", ["--top-k", "0"], "1..17"),
        ("ar", ["--top-p", "0"], "(0, 1]"),
        ("ar", ["--top-p", "1.5"], "(0, 1]"),
        ("var", ["--temperature", "0"], "> 0"),
        ("var", ["--temperature", "-1"], "> 0"),
        ("ar", ["--sampler", "dpmpp_2m"], "belongs to diffusion"),
        ("var", ["--eta", "0.5"], "belongs to diffusion"),
        ("ar", ["--nfe", "10"], "belongs to diffusion"),
    ],
)
def test_bad_sampling_input(token_runs, family, extra, message, tmp_path, capsys):
    assert main(["sample", str(token_runs["root"] / family), "--n", "4", *extra, "--out", str(tmp_path / "s.npy")]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


@pytest.mark.slow
def test_token_options_on_a_diffusion_run_and_guidance_on_an_unconditional_run(token_runs, tmp_path, capsys):
    flow = unnoise.train(
        unnoise.TrainConfig(data="digits", family="flow", steps=2, width=8), tmp_path / "flow", progress=False
    )
    assert main(["sample", str(flow.folder), "--n", "4", "--top-k", "5", "--out", str(tmp_path / "s.npy")]) == 2
    assert "for token runs" in capsys.readouterr().err
    ar = unnoise.train(
        unnoise.TrainConfig(data="digits", family="ar", steps=2, width=16, depth=1, heads=2),
        tmp_path / "ar",
        progress=False,
    )
    assert main(["sample", str(ar.folder), "--n", "4", "--guidance", "2", "--out", str(tmp_path / "s.npy")]) == 2
    assert "not a conditional model" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.parametrize("family", ["vq", "var"])
def test_a_resumed_token_run_equals_an_uninterrupted_one(family, tmp_path, monkeypatch):
    """Killed after step 30 of 60 and resumed: through the tokenizer's k-means (step 11) and code restart
    (step 50), and a VAR prior over such a tokenizer."""
    train_module = importlib.import_module("unnoise.train")
    settings = dict(family="vq", width=8, codebook=16, warmup=10)
    if family == "var":
        unnoise.train(unnoise.TrainConfig(data="digits", steps=20, **settings), tmp_path / "tok", progress=False)
        settings = dict(family="var", tokens=str(tmp_path / "tok"), width=16, depth=1, heads=2, conditional=True)
    cfg = unnoise.TrainConfig(data="digits", steps=60, batch_size=16, checkpoint_every=30, **settings)
    straight = unnoise.train(cfg, tmp_path / "a", progress=False)
    real_save = train_module.save_checkpoint

    def save_then_die(folder, *args):
        real_save(folder, *args)
        raise KeyboardInterrupt

    monkeypatch.setattr(train_module, "save_checkpoint", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        unnoise.train(cfg, tmp_path / "b", progress=False)
    monkeypatch.setattr(train_module, "save_checkpoint", real_save)
    resumed = unnoise.train(None, tmp_path / "b", resume=True, progress=False)
    one, two = straight.net.state_dict(), resumed.net.state_dict()
    assert resumed.step == 60 and one.keys() == two.keys() and all(torch.equal(one[k], two[k]) for k in one)
