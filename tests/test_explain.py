"""`unnoise explain`: one self-contained page from the runs, every section filled or saying what fills it."""

import json
import re

import numpy as np
import pytest
import torch

import unnoise
from unnoise import claims as claim_set
from unnoise import recipes
from unnoise.cli import main
from unnoise.web import encode, explain, sections
from unnoise.web import page as web_page
from unnoise.web.encode import decode


def bundle_of(html):
    """The bundle inlined in a page."""
    text = re.search(r'<script type="application/json" id="bundle">(.*?)</script>', html, re.S).group(1)
    return json.loads(text.replace("<\\/", "</"))


def test_encoding_round_trips_within_its_quantization_step():
    x = torch.randn(5, 7, 2, generator=torch.Generator().manual_seed(0)) * 3
    item = encode.points(x)
    step = (item["hi"] - item["lo"]) / 65535
    assert item["shape"] == [5, 7, 2] and np.abs(decode(item) - x.numpy()).max() <= step / 2 + 1e-6
    images = torch.rand(3, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    assert np.abs(decode(encode.images(images)) - images.numpy()).max() <= 0.5 / 255 + 1e-6
    assert decode(encode.encode(torch.full((4,), 2.5)))[0] == 2.5  # a constant array keeps its value


@pytest.mark.slow
def test_the_page_is_one_offline_file_under_its_size_budget(explained):
    path, _ = explained
    html = path.read_text()
    assert path.stat().st_size < web_page.SIZE_BUDGET
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)  # nothing fetched from anywhere
    assert "<script src" not in html and 'type="module"' not in html and "Worker(" not in html
    assert "@import" not in html and "url(" not in html  # no fonts or CSS to fetch
    assert html.count("<script") == 3  # the bundle, the words and page.js
    assert '<meta name="viewport"' in html and 'lang="en"' in html


def test_every_section_has_its_template_and_its_drawing_function():
    """A section is one object: its key names its HTML fragment and page.js's function that draws it."""
    table = re.search(r"const SECTIONS = \{(.*?)\};", web_page.asset("page.js"), re.S).group(1)
    assert [entry.split(":")[0].strip() for entry in table.split(",")] == [s.key for s in sections.SECTIONS]
    for section in sections.SECTIONS:
        html = web_page.section_html(section, web_page.words())
        assert html.startswith(f'<section id="{section.key}">') and f'id="{section.key}-missing"' in html
        assert "{{" not in html and "}}" not in html


def test_the_page_words_are_in_one_file_and_each_one_is_used():
    """templates/words.json holds the titles and every sentence page.js writes: each key the script asks for is
    there, each key there is asked for, each {name} it fills is one the script gives, and the script's own string
    literals hold no sentence."""
    words, js = web_page.words(), web_page.asset("page.js")
    code = "\n".join(re.sub(r"\s//\s.*$", "", line) for line in js.splitlines() if not line.strip().startswith("//"))
    literals = [a or b for a, b in re.findall(r'"((?:[^"\\\n]|\\.)*)"|`((?:[^`\\]|\\.)*)`', code)]
    asked = {v for v in literals if v in words}
    asked |= {f"title.{s.key}" for s in sections.SECTIONS} | {"page.how_live", "page.how_file"}
    asked |= {f"missing.need_{need}" for need in re.findall(r'need="(\w+)"', web_page.asset("sections.py"))}
    assert set(re.findall(r'\bt\("([\w.]+)"', code)) <= set(words)
    assert set(words) == asked, f"unused: {set(words) - asked}"
    sentences = [v for v in literals if re.search(r"[A-Za-z]{2,} [a-z]{2,}", v) and v not in words]
    assert sentences == ["use strict", "no words for ${key} in templates/words.json", "11px system-ui, sans-serif",
                         "page.js draws no section ${el.id}", "thead th", "tbody tr"]  # fmt: skip
    for key, text in words.items():  # a {name} left unfilled would show as is
        for name in re.findall(r"\{(\w+)\}", text):
            assert key.startswith(("page.", "claims.later")) or f"{name}:" in code, f"{key} needs {name}"


@pytest.mark.slow
def test_every_section_is_filled_from_the_runs(explained):
    path, root = explained
    b = bundle_of(path.read_text())
    s = b["sections"]
    assert b["live"] is False and set(b["roles"]) == {
        "points-diffusion",
        "points-flow",
        "points-shortcut",
        "images-diffusion",
        "images-ar",
        "images-latent",
    }
    noise = s["noise"]["points"]
    x0, eps = decode(noise["x0"]), decode(noise["eps"])
    assert x0.shape == eps.shape == (sections.POINTS, 2) and abs(np.std(eps) - 1) < 0.1
    sched = noise["schedule"]
    assert np.allclose(np.square(sched["alpha"]) + np.square(sched["sigma"]), 1, atol=1e-6)  # a VP path
    assert sched["logsnr"] == sorted(sched["logsnr"], reverse=True)  # noisier with t
    denoise = s["denoise"]["image"]
    xt, x0hat, F = decode(denoise["xt"]), decode(denoise["x0"]), len(denoise["t"])  # F: the fixture's NFE (8)
    assert xt.shape == (F + 1, 10, 1, 8, 8) and x0hat.shape == (F, 10, 1, 8, 8) and F == 8
    run = unnoise.Run.load(root / "id")  # the last state is what run.sample draws
    final = run.sample(10, "ddim", F, seed=0, label="each").numpy()
    assert np.abs(xt[-1] - final).max() <= 0.5 / 255 + 1e-5
    field = s["field"]
    assert [t["name"] for t in field["trajectories"]] == [
        "reverse SDE (DDPM)",
        "probability-flow ODE (DDIM)",
        "flow matching",
    ]
    assert "points-ot" in field["missing_methods"]["roles"] and field["w2"]["floor"] > 0
    starts = [decode(t["xt"])[0] for t in field["trajectories"]]  # the same starting noise for all
    assert all(np.abs(a - starts[0]).max() < 1e-3 * np.ptp(starts[0]) for a in starts)
    curve = s["guidance"]["curve"]
    assert [r["w"] for r in curve] == [1.0, 3.0] and all(0 <= r["accuracy"] <= 1 and r["floor"] > 0 for r in curve)
    from unnoise.metrics.level import level  # the digits' level ships: each row quotes real data's level too

    assert all(r["level"] == pytest.approx(r["floor"] * level("digits")["ratio"]) for r in curve)
    debate = s["debate"]
    assert [p["name"] for p in debate["panels"]] == ["raster AR", "diffusion"]
    assert "images-var" in debate["missing"]["roles"]
    frames = decode(debate["panels"][0]["frames"])  # (classes, F, 1, 8, 8)
    assert frames.shape[0] == 10 and frames.shape[1] >= 2
    assert [r["nfe"] for r in debate["table"]] == [64, F]
    rows = {r["name"]: r for r in s["claims"]["rows"]}  # no claims folder: the page measures the quick ones
    assert set(rows) == set(claim_set.CLAIMS)
    assert rows["perpendicular"]["ours"] and rows["one-idea"]["ours"] and not rows["perpendicular"].get("later")
    assert rows["audio"]["later"] and "--only audio" in rows["audio"]["verdict"] and not rows["audio"]["ours"]
    few = s["few"]
    assert [p["name"] for p in few["panels"]] == ["flow matching", "shortcut model"] and few["nfe"] == [1, 2, 4, 30]
    assert all(decode(p["samples"]).shape == (4, sections.POINTS, 2) for p in few["panels"])
    shortcut = few["w2"]["curves"][1]
    assert shortcut["nfe"] == [1, 2, 4, 30] and shortcut["w2"][0] < few["w2"]["curves"][0]["w2"][0]  # 1 call
    assert [c["name"] for c in few["images"]] == ["diffusion", "raster AR"] and few["images"][1]["nfe"] == [64]
    assert "points-meanflow" in few["missing_methods"]["roles"]
    learn = s["learn"]["panels"]  # the flow and the digits run at 1, 5, 20 and 100 % of training
    assert [p["role"] for p in learn] == ["points-flow", "images-diffusion"]
    assert [m["fraction"] for m in learn[0]["marks"]] == [0.01, 0.05, 0.2, 1.0]
    assert [m["step"] for m in learn[0]["marks"]] == [2, 10, 40, 200] and [m["step"] for m in learn[1]["marks"]][
        -1
    ] == 60
    assert decode(learn[0]["samples"]).shape == (4, sections.POINTS, 2)
    assert decode(learn[1]["samples"]).shape == (4, 10, 1, 8, 8)
    assert learn[0]["marks"][0]["ratio"] > 2 * learn[0]["marks"][-1]["ratio"]  # 2 steps in: far from the moons
    assert learn[1]["marks"][-1]["value"] == curve[0]["fid"]  # the end is section 5's w = 1
    assert len(learn[0]["loss"]["step"]) == 200 and learn[0]["loss"]["loss"][0] > learn[0]["loss"]["loss"][-1]
    latent = s["latent"]  # a digit, its 2x2x4 latent, the same noise levels in pixels and in the latent
    image, pixel = decode(latent["image"]), decode(latent["pixel"])
    assert image.shape == (1, 8, 8) and decode(latent["latent"]).shape == (4, 1, 2, 2)
    assert pixel.shape == decode(latent["noised_latent"]).shape == (sections.LATENT_LEVELS, 1, 8, 8)
    assert np.abs(pixel[0] - image).max() <= 1 / 255 and latent["t"][0] == 0  # level 0: the image itself
    assert latent["pixel_values"] == 64 and latent["latent_values"] == 16 and latent["latent_ms"] > 0


@pytest.mark.slow
def test_every_run_carries_its_stamp(explained):
    path, root = explained
    stamps = bundle_of(path.read_text())["runs"]
    for _role, stamp in stamps.items():
        assert stamp["steps"] > 0 and stamp["train_seconds"] > 0 and stamp["cpu"]
        assert stamp["command"].startswith("unnoise train --data") and stamp["run"] in stamp["command"]
        assert stamp["metric"] and "floor" in stamp["metric"]
    assert "--conditional" in stamps["images-diffusion"]["command"]
    assert "--family ar" in stamps["images-ar"]["command"]


@pytest.mark.slow
def test_roles_follow_the_kind_of_run(explained):
    _, root = explained
    roles = recipes.assign([root / "pf", root / "ia"])
    assert set(roles) == {"points-flow", "images-ar"}


def one_line(capsys, argv, *words):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("unnoise: error:") and all(w in err for w in words), err


@pytest.mark.slow
def test_bad_input_is_one_line_and_exit_2(explained, tmp_path, capsys):
    _, root = explained
    one_line(capsys, ["explain", "--budget", "huge", "--out", str(tmp_path / "p")], "budget", "quick", "full")
    one_line(capsys, ["explain", "--runs", str(tmp_path / "nothing"), "--out", str(tmp_path / "p")], "does not exist")
    one_line(
        capsys,
        ["explain", "--runs", str(root / "pd"), str(root / "pd"), "--out", str(tmp_path / "p")],
        "both play points-diffusion",
    )
    tok = unnoise.train(
        unnoise.TrainConfig(data="digits", family="vq", steps=2, warmup=1), tmp_path / "tok", progress=False
    )
    one_line(capsys, ["explain", "--runs", str(tok.folder), "--out", str(tmp_path / "p")], "tokenizer", "diffusion")
    one_line(capsys, ["serve", "--page", str(tmp_path / "empty")], "unnoise explain --out")
    assert not (tmp_path / "p").exists()


@pytest.mark.slow
def test_serving_reads_the_written_page(explained):
    path, root = explained
    runs, html = explain.for_serving(None, path.parent)
    assert set(runs) == set(bundle_of(path.read_text())["roles"]) and bundle_of(html)["live"] is True


@pytest.mark.parametrize("budget", sorted(recipes.BUDGETS))
def test_budgets_name_known_roles(budget):
    assert set(recipes.BUDGETS[budget]) <= set(recipes.ROLES) and all(s > 0 for s in recipes.BUDGETS[budget].values())


@pytest.mark.parametrize("budget", sorted(recipes.RECIPES))
def test_budget_recipes_set_known_settings_of_their_roles(budget):
    fields = set(unnoise.TrainConfig.__dataclass_fields__)
    for role, recipe in recipes.RECIPES[budget].items():
        assert role in recipes.BUDGETS[budget] and set(recipe) <= fields
        unnoise.TrainConfig(**{**recipes.ROLES[role], **recipe})  # a valid config


def test_a_budget_recipe_changes_what_its_role_trains(tmp_path, monkeypatch):
    monkeypatch.setitem(recipes.BUDGETS, "tiny", {"points-flow": 1})
    monkeypatch.setitem(recipes.RECIPES, "tiny", {"points-flow": {"width": 16, "depth": 1}})
    run = recipes.train_budget("tiny", tmp_path)["points-flow"]
    assert (run.cfg.width, run.cfg.depth, run.cfg.family) == (16, 1, "flow")
    assert "--width 16 --depth 1" in explain.train_command(run)


@pytest.mark.slow
def test_a_budget_trains_its_roles_once_then_reuses_them(tmp_path, monkeypatch, capsys):
    """OT-CFM and reflow (which starts from the flow) as the full budget trains them, in seconds."""
    monkeypatch.setitem(recipes.BUDGETS, "tiny", {"points-flow": 2, "points-ot": 2, "points-reflow": 2})
    monkeypatch.setattr(recipes, "REFLOW", {"pairs": 500, "min_steps": 20})
    runs = recipes.train_budget("tiny", tmp_path)
    assert runs["points-ot"].cfg.coupling == "ot" and runs["points-reflow"].cfg.coupling == "reflow"
    assert recipes.role_of(runs["points-reflow"]) == "points-reflow"
    again = recipes.train_budget("tiny", tmp_path)
    assert f"reusing {tmp_path / 'runs' / 'points-reflow'} " in capsys.readouterr().out
    assert {r: run.step for r, run in again.items()} == {r: run.step for r, run in runs.items()}
    assert (runs["points-reflow"].folder / "pairs.safetensors").exists()


@pytest.mark.slow
def test_a_budget_times_a_stage_and_the_run_it_feeds_takes_it(tmp_path, monkeypatch):
    """The quick budget's autoencoder is a role of its own: trained for its seconds, copied into the latent run
    (hash pinned), left out of the page's roles, and its command comes first in the run's stamp."""
    monkeypatch.setitem(recipes.BUDGETS, "tiny", {"images-ae": 1, "images-latent": 1})
    small = {"data": "digits", "size": None, "width": 16}
    monkeypatch.setitem(recipes.RECIPES, "tiny", {"images-ae": small, "images-latent": small})
    runs = recipes.train_budget("tiny", tmp_path)
    assert set(runs) == {"images-latent"}
    stage, run = tmp_path / "runs" / "images-ae", runs["images-latent"]
    copy = json.loads((run.folder / "autoencoder" / "config.json").read_text())
    assert run.cfg.latent == str(stage) and run.cfg.autoencoder_hash and copy["step"] == unnoise.Run.load(stage).step
    command = explain.train_command(run)
    assert command.startswith("unnoise train --data digits --family ae") and f"--latent {stage}" in command
