"""The page's sections: each one a Section, computed from trained runs into plain JSON (arrays through encode.py).

A Section is the one place a part of the page is defined. Its key is the id of its <section> element, the name
of its HTML fragment (templates/KEY.html) and the key of its drawing function in page.js's SECTIONS; its roles
are the runs it shows (their stamps appear under it); compute(runs, params, earlier) -> JSON reads {role: Run},
the Params and the sections computed before it, and trains nothing. A run a section needs but does not have is
absent, and the section then carries `missing`: the command that fills it. Points are shown in data units;
images in [0, 1].
"""

import statistics
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm import tqdm

from .. import data, snapshots
from ..checkpoint import load_json
from ..claims import geometry
from ..claims import on_page as page_claims
from ..data import images as image_data
from ..guidance import EACH
from ..metrics import measure
from ..recipes import LEARN_ROLES
from ..samplers import PerSampleNoise, default_spacing, timesteps
from ..viz.frames import figure_sampler
from ..viz.order import order_frames
from . import encode

POINTS = 600  # points drawn in the 2D figures
LEVELS = 41  # noise levels the noise and field sliders step through
TRAJ = 200  # trajectories drawn per method
POINT_ROLES = ("points-diffusion", "points-flow", "points-ot", "points-reflow")
IMAGE_ROLES = ("images-ar", "images-var", "images-diffusion")
FEW_ROLES = (
    "points-flow",
    "points-reflow",
    "points-shortcut",
    "points-meanflow",
    "images-diffusion",
    "images-shortcut",
)
FEW_NFE = (1, 2, 4, 30)  # the network calls section 7 draws the same noise through


@dataclass(frozen=True)
class Params:
    """What the sections measure, and how much (the tests make it small)."""

    nfe: int = measure.NFE  # the figure sampler's network evaluations (DDIM / Euler), and the image sampler's
    guidance: tuple = (0.0, 1.0, 2.0, 4.0)  # the guidance weights of section 5
    quality_n: int | None = None  # samples behind each accuracy / FID figure (None: as many as held-out images)
    w2_n: int = measure.W2_N  # points behind each W2 figure (and its floor)
    claims: str | Path | None = None  # a folder written by `unnoise claims`, for section 11's table
    text_length: int = 160  # characters of the passage section 8 writes
    text_steps: int = 64  # mdlm's and duo's steps for it
    text_samples: int = 16  # samples behind section 8's judge


@dataclass(frozen=True)
class Section:
    """One part of the page: its key (its title is templates/words.json's title.KEY), the roles of the runs it
    shows, and how its data is computed."""

    key: str
    roles: tuple
    compute: Callable  # (runs {role: Run}, Params, earlier {key: JSON}) -> JSON


def missing(roles, budget="full", need=None):
    """What fills a section whose runs are missing: the budget that trains them, the roles, and what else they need
    (a key of templates/words.json's missing.need_*); page.js puts it in words."""
    return {"budget": budget, "roles": list(roles), "need": need}


def grid(path, nfe, k=LEVELS):
    """k times from the cleanest to the noisiest (integers on discrete paths), with alpha, sigma, log SNR, and the
    times the nfe-step figure sampler visits."""
    lo = 0.0 if path.discrete else getattr(path, "t_min", path.t_end)
    ts = torch.linspace(lo, path.t_max, k, dtype=torch.float64)
    ts = ts.round() if path.discrete else ts
    alpha = torch.stack([path.alpha(t) for t in ts]).double()
    sigma = torch.stack([path.sigma(t) for t in ts]).double()
    logsnr = (2 * (alpha.clamp(min=1e-12).log() - sigma.clamp(min=1e-12).log())).clamp(-20, 20)
    return {
        "t": ts.tolist(),
        "alpha": alpha.tolist(),
        "sigma": sigma.tolist(),
        "logsnr": logsnr.tolist(),
        "steps": timesteps(path, nfe, default_spacing(path)).tolist()[:-1],
        "name": getattr(path, "name", ""),
    }


def trace(run, n, nfe, sampler=None, label=None, seed=0):
    """x_t from x_T to the sample (F + 1, n, ...), the x0 estimates (F, n, ...) and t (F,), in data units."""
    xs, x0s, ts = [run.to_data(run.initial(PerSampleNoise.for_range(seed, 0, n)))], [], []

    def record(i, t, x, x0):
        xs.append(run.to_data(x))
        x0s.append(run.to_data(x0))
        ts.append(float(t))

    run.sample(n, sampler or figure_sampler(run), nfe, seed, label=label, callback=record)
    return torch.stack(xs), torch.stack(x0s), ts


def pack(x, run):
    """Encode images at 8 bits, points at 16."""
    return encode.images(x) if run.images else encode.points(x)


# ---- 1. noise ----------------------------------------------------------------------------------------------


def noise(runs, params, earlier, seed=0):
    """Clean data and one fixed noise draw per sample; the page mixes them as alpha x0 + sigma eps."""
    out = {}
    g = torch.Generator().manual_seed(seed)
    for key, run in (("points", runs.get("points-diffusion")), ("image", runs.get("images-diffusion"))):
        if run is None:
            continue
        if run.images:
            x0 = data.load(run.cfg.data, "train", size=run.cfg.size, channels=run.cfg.channels).x[:1]
            x0 = (x0 - image_data.SHIFT) / image_data.SCALE  # (1, C, H, W) model units
            view = {"scale": image_data.SCALE, "shift": image_data.SHIFT}
        else:
            train = data.load(run.cfg.data, "train", POINTS)
            x0, view = train.normalize(train.x), None  # (POINTS, 2) model units
        out[key] = {
            "x0": encode.encode(x0, 16),
            "eps": encode.encode(torch.randn(x0.shape, generator=g), 16),
            "view": view,
            "schedule": grid(run.path, params.nfe),
            "run": str(run.folder),
        }
    return out


# ---- 2. denoise --------------------------------------------------------------------------------------------


def denoise(runs, params, earlier):
    """The deterministic sampler's states x_t and x0 estimates at every step."""
    out = {}
    for key, run, n in (
        ("points", runs.get("points-diffusion"), POINTS),
        ("image", runs.get("images-diffusion"), None),
    ):
        if run is None:
            continue
        label = EACH if run.cfg.conditional else None
        n = n or (run.num_classes if run.cfg.conditional else 8)
        xs, x0s, ts = trace(run, n, params.nfe, label=label)
        out[key] = {
            "xt": pack(xs, run),
            "x0": pack(x0s, run),
            "t": ts,
            "sampler": figure_sampler(run),
            "run": str(run.folder),
        }
    return out


# ---- 3. why it works ---------------------------------------------------------------------------------------


def tangent_share(dataset_name="digits", k=10, d=5, n=200, seed=0):
    """Noise energy inside each held-out digit's local tangent space (top d PCA directions of its k nearest
    training digits), against d / D for a random subspace."""
    train = data.load(dataset_name, "train").x.flatten(1).double()  # (N, D)
    held = data.load(dataset_name, "heldout").x.flatten(1).double()[:n]
    g = torch.Generator().manual_seed(seed)
    shares = []
    for x in held:
        near = train[torch.cdist(x[None], train)[0].topk(k, largest=False).indices]  # (k, D)
        basis = torch.linalg.svd(near - near.mean(0), full_matrices=False).Vh[:d]  # (d, D)
        eps = torch.randn(train.shape[1], generator=g, dtype=torch.float64)
        shares.append(float((basis @ eps).square().sum() / eps.square().sum()))
    D = train.shape[1]
    return {"D": D, "d": d, "k": k, "n": n, "mean": statistics.mean(shares), "expected": d / D}


def why(runs, params, earlier):
    """The share of noise along the data against the dimension, and on the digits' own tangent spaces."""
    img = runs.get("images-diffusion")
    return {
        "geometry": geometry.geometry(dims=(2, 4, 16, 64, 256, 1024), ds=(1,), draws=2000),
        "tangent": tangent_share(img.cfg.data) if img is not None and img.cfg.size <= 16 else None,
    }


# ---- 4. the learned field ----------------------------------------------------------------------------------


def point_methods(runs):
    """[(name, run, sampler)]: the ways from noise to points that section 4 races, for the runs present."""
    pts = runs.get("points-diffusion")
    sde, ode = (pts.family.sde, pts.family.ode) if pts is not None else (None, None)  # edm: its ODE (heun) only
    methods = [
        (name, run, sampler)
        for name, run, sampler in (
            ("reverse SDE (DDPM)", pts, sde),
            ("probability-flow ODE (DDIM)", pts, ode),
            ("flow matching", runs.get("points-flow"), "euler"),
            ("OT-CFM", runs.get("points-ot"), "euler"),
            ("reflow", runs.get("points-reflow"), "euler"),
        )
        if run is not None and sampler is not None
    ]
    return methods


def arrows(run, nfe, side=15):
    """The denoising direction x0_hat - x on a side x side grid over the data, at every level."""
    real = data.load(run.cfg.data, "heldout", POINTS).x
    lo, hi = real.min(0).values, real.max(0).values
    pad = 0.3 * (hi - lo)
    axes = [torch.linspace(float(lo[i] - pad[i]), float(hi[i] + pad[i]), side) for i in range(2)]
    where = torch.stack(torch.meshgrid(*axes, indexing="xy"), -1).reshape(-1, 2)  # (side^2, 2)
    levels = grid(run.path, nfe)["t"][1:]
    model, units = run.model(), run.dataset
    field = [units.denormalize(model(units.normalize(where), t)[0]) - where for t in levels]
    return {
        "where": encode.points(where),
        "arrows": encode.encode(torch.stack(field), 16),
        "t": levels,
        "real": encode.points(real),
        "run": str(run.folder),
    }


def trajectories(methods, seed=1):
    """From the same starting noise, each method's path to its sample, (F + 1, TRAJ, 2) each."""
    out = []
    for name, run, sampler in methods:
        xs, _, _ = trace(run, TRAJ, 40, sampler, seed=seed)
        out.append({"name": name, "sampler": sampler, "xt": encode.points(xs), "run": str(run.folder)})
    return out


def field(runs, params, earlier):
    """Arrows of the field (from the diffusion run, else the first flow), each method's paths, W2 against NFE."""
    methods = point_methods(runs)
    arrows_run = next((run for _, run, _ in methods), None)
    out = (
        {"missing": missing(["points-diffusion"])}
        if arrows_run is None
        else {
            **arrows(arrows_run, params.nfe),
            "trajectories": trajectories(methods),
            "w2": measure.w2_curves(methods, n=params.w2_n),
        }
    )
    gone = [role for role in POINT_ROLES if role not in runs]
    return {**out, "missing_methods": missing(gone) if gone else None}


# ---- 5. guidance -------------------------------------------------------------------------------------------


def warm_judge(run):
    """Load (or, the first time, train) the classifier that judges run's images, saying so: it takes a minute."""
    from ..metrics import classifier

    tqdm.write(f"explain: loading (or, the first time, training) the {run.cfg.data} judge classifier")
    classifier.classifier(run.cfg.data, run.cfg.size, run.cfg.channels, verbose=True)


def guidance(runs, params, earlier):
    """4 samples per class at each w (same noise), and accuracy and FID ratio against w."""
    run = runs.get("images-diffusion")
    if run is not None:  # the judge of the image metrics (sections 5 and 6): trained once, then cached
        warm_judge(run)
    if run is None or not run.cfg.conditional:
        return {"missing": missing(["images-diffusion"], need="conditional")}
    rows, curve = [], []
    for w in params.guidance:
        rows.append(run.sample(4 * run.num_classes, "dpmpp_2m", params.nfe, seed=0, label=EACH, guidance=w))
        quality = measure.image_quality(run, n=params.quality_n, nfe=params.nfe, guidance=w)
        curve.append({"w": w, **quality})
    return {
        "w": list(params.guidance),
        "samples": encode.images(torch.stack(rows)),
        "curve": curve,
        "run": str(run.folder),
    }


# ---- 6. the debate -----------------------------------------------------------------------------------------


def forward_passes(run, nfe):
    """Network evaluations per sample: the token families' levels, or the continuous sampler's NFE."""
    return run.family.forward_passes(run, nfe)


def known_quality(earlier):
    """{run folder: image quality} already measured: section 5's row at w = 1 (the model as trained)."""
    section = earlier.get("guidance") or {}
    ones = [row for row in section.get("curve", []) if row["w"] == 1.0]
    return {section["run"]: {k: v for k, v in ones[0].items() if k != "w"}} if ones else {}


def race(racers, params, quality, frames=24):
    """Each run's generation of one image per class, frame by frame, and its measured cost and quality.

    racers: [(name, role, Run)]; quality: {run folder: image quality} measured already."""
    panels, table = [], []
    for name, role, run in racers:
        per_class = [
            order_frames(run, c, seed=0, frames=frames)
            if run.cfg.conditional  # one per class, or
            else order_frames(run, None, seed=c, frames=frames)
            for c in range(10)
        ]  # ten seeds
        length = min(len(f) for f, _ in per_class)
        stack = torch.stack([torch.stack(f[:length]) for f, _ in per_class])  # (classes, F, C, H, W)
        panels.append(
            {"name": name, "frames": encode.images(stack), "captions": per_class[0][1][:length], "run": str(run.folder)}
        )
        q = quality.get(str(run.folder)) or measure.image_quality(run, n=params.quality_n, nfe=params.nfe)
        table.append(
            {
                "name": name,
                "params": sum(p.numel() for p in run.net.parameters()),
                "nfe": forward_passes(run, params.nfe),
                "ms": measure.ms_per_image(run, nfe=params.nfe),
                **q,
                "run": str(run.folder),
                "role": role,
            }
        )
    return {"panels": panels, "table": table}


def debate(runs, params, earlier):
    """Raster AR, VAR and diffusion side by side: how each builds an image, and what it costs."""
    racers = [
        (name, role, runs[role])
        for name, role in (("raster AR", "images-ar"), ("VAR", "images-var"), ("diffusion", "images-diffusion"))
        if runs.get(role) is not None
    ]
    out = race(racers, params, known_quality(earlier)) if racers else {"panels": [], "table": []}
    gone = [role for role in IMAGE_ROLES if role not in runs]
    return {**out, "missing": missing(gone) if gone else None}


# ---- 7. how few steps? -------------------------------------------------------------------------------------


def few_points(runs, params):
    """Each point method's samples from one noise draw at every FEW_NFE, and W2 against NFE beside the floor."""
    methods = [
        (name, runs[role], "euler")
        for name, role in (
            ("flow matching", "points-flow"),
            ("reflow", "points-reflow"),
            ("shortcut model", "points-shortcut"),
            ("MeanFlow", "points-meanflow"),
        )
        if runs.get(role) is not None
    ]
    panels = [
        {
            "name": name,
            "samples": encode.points(torch.stack([run.sample(POINTS, sampler, k, seed=3) for k in FEW_NFE])),
            "run": str(run.folder),
        }
        for name, run, sampler in methods
    ]
    return {"panels": panels, "w2": measure.w2_curves(methods, nfes=FEW_NFE, n=params.w2_n) if methods else None}


def few_images(runs, params, earlier):
    """FID / floor against network calls: diffusion and the shortcut model at each FEW_NFE, raster AR and VAR at
    their passes (from section 6)."""
    curves = []
    for name, role in (("diffusion", "images-diffusion"), ("shortcut model", "images-shortcut")):
        run = runs.get(role)
        if run is None:
            continue
        quality = [measure.image_quality(run, n=params.quality_n, nfe=k) for k in FEW_NFE]
        curves.append(
            {"name": name, "nfe": list(FEW_NFE), "ratio": [q["ratio"] for q in quality], "run": str(run.folder)}
        )
    tokens = [
        {"name": row["name"], "nfe": [row["nfe"]], "ratio": [row["ratio"]], "run": row["run"]}
        for row in earlier.get("debate", {}).get("table", [])
        if row.get("role") in ("images-ar", "images-var")
    ]
    return curves + tokens


def few(runs, params, earlier):
    """The same noise through 1, 2, 4 and 30 network calls for each point method; quality against calls."""
    out = {**few_points(runs, params), "images": few_images(runs, params, earlier), "nfe": list(FEW_NFE)}
    if not out["panels"] and not out["images"]:
        return {"missing": missing(list(FEW_ROLES))}
    gone = [role for role in FEW_ROLES if role not in runs]
    return {**out, "missing_methods": missing(gone) if gone else None}


# ---- 8. the same, on text ----------------------------------------------------------------------------------

TEXT_ROLES = ("text-ar", "text-mdlm")
TEXT_FRAMES = 9  # states of one passage the slider steps through, from empty to written
MASK = "\u2592"  # a character not yet written (ar) or still masked (mdlm, duo)


def text_frames(run, length, steps):
    """One passage (seed 0) as it is written: TEXT_FRAMES strings from nothing to the sample, not-yet-written or
    masked characters shown as MASK; and the network calls it took."""
    from ..families.text import decode

    states = []

    def keep(i, ids):
        states.append(ids[0].clone())

    final = run.sample(1, seed=0, length=length, callback=keep, **run.family.sampler_options(nfe=steps))[0]
    calls = len(states)
    states = [s[:length] for s in states] + [final]
    picks = [round(k * (len(states) - 1) / (TEXT_FRAMES - 1)) for k in range(TEXT_FRAMES)]
    frames = []
    for k in picks:
        ids = states[k]
        written = decode(run, ids.clamp(min=0)) if len(ids) else ""
        shown = "".join(MASK if int(i) < 0 else c for i, c in zip(ids, written))
        frames.append(shown + MASK * (length - len(shown)))
    frames[0] = MASK * length
    return frames, calls


def text(runs, params, earlier):
    """AR writing a passage left to right beside MDLM unmasking everywhere at once (same length and seed), with
    held-out bits per character beside the floor and the samples judged beside real text."""
    shown = [
        (name, role, runs[role])
        for name, role in (
            ("left to right (ar)", "text-ar"),
            ("everywhere at once (mdlm)", "text-mdlm"),
            ("uniform-state diffusion (duo)", "text-duo"),
        )
        if runs.get(role) is not None
    ]
    if not shown:
        return {"missing": missing(list(TEXT_ROLES))}
    from ..metrics import text as text_metrics

    panels = []
    for name, role, run in shown:
        length = min(params.text_length, run.cfg.context)
        frames, calls = text_frames(run, length, params.text_steps)
        held = run.family.report(run, 0, 0)
        options = run.family.sampler_options(nfe=params.text_steps)
        samples = run.sample(params.text_samples, seed=1, length=length, **options)
        judged = text_metrics.judge(run.cfg.data, run.cfg.alphabet, samples)
        panels.append({"name": name, "role": role, "frames": frames, "calls": calls, "infills": run.family.infills, "data": run.trained_on, "run": str(run.folder),
                       **{k: held.get(k) for k in ("bits_per_char", "bits_per_char_stderr", "bits_per_char_kind",
                                                   "bits_per_char_floor")}, **judged})  # fmt: skip
    gone = [role for role in TEXT_ROLES if role not in runs]
    return {"panels": panels, "mask": MASK, "missing_methods": missing(gone) if gone else None}


# ---- 9. why latent? -----------------------------------------------------------------------------------------

LATENT_LEVELS = 7  # noise levels the latent section's slider steps through


def latent_maps(z):
    """The latent's channels side by side as grey images, each stretched to [0, 1]: (C, 1, s, s)."""
    z = z[0][:, None]  # (C, 1, s, s)
    lo, hi = z.amin((1, 2, 3), keepdim=True), z.amax((1, 2, 3), keepdim=True)
    return (z - lo) / (hi - lo).clamp(min=1e-6)


def step_ms(net, shape, num_classes, batch=32, repeats=5):
    """Milliseconds per image of one forward pass of net on a batch of noise of shape (the cost of a step)."""
    import time

    x, t = torch.randn(batch, *shape), torch.rand(batch)
    y = torch.zeros(batch, dtype=torch.long) if num_classes else None
    with torch.no_grad():
        net(x, t, y)  # warm-up
        start = time.perf_counter()
        for _ in range(repeats):
            net(x, t, y)
    return (time.perf_counter() - start) / repeats / batch * 1000


def latent(runs, params, earlier):
    """An image, its latent and its reconstruction; the same noise level in pixel and in latent space; the cost of
    a network call on each (the pixel U-Net built, untrained, at the size the pixel default trains)."""
    run = runs.get("images-latent")
    if run is None:
        return {"missing": missing(["images-latent"])}
    from ..families.autoencoder import latents
    from ..nets.unet import UNet, default_patch

    x = run.dataset.x[:1]  # (1, C, H, W) in [0, 1]
    z = (latents(run.latent, x * 2 - 1) - run.cfg.latent_shift) / run.cfg.latent_scale  # (1, C', s, s), unit variance
    path, generator = run.path, torch.Generator().manual_seed(0)
    ts = torch.linspace(0, 0.9 * float(path.t_max), LATENT_LEVELS, dtype=torch.float64)
    pixel_noise, latent_noise = torch.randn(x.shape, generator=generator), torch.randn(z.shape, generator=generator)
    pixel, latent_frames = [], []
    for t in ts:
        a, s = float(path.alpha(t)), float(path.sigma(t))
        pixel.append(((a * (x * 2 - 1) + s * pixel_noise) * 0.5 + 0.5).clamp(0, 1)[0])
        latent_frames.append(run.to_data(a * z + s * latent_noise)[0])
    C, size = run.cfg.channels, run.cfg.size
    unet = UNet(channels=C, width=32, num_classes=run.num_classes, size=size, patch=default_patch(size)).eval()
    cost = {
        "pixel_ms": step_ms(unet, (C, size, size), run.num_classes),
        "latent_ms": step_ms(run.net, run.shape, run.num_classes if run.cfg.conditional else 0),
        "pixel_values": C * size * size,
        "latent_values": int(torch.tensor(run.shape).prod()),
    }
    quality = measure.image_quality(run, params.quality_n, params.nfe)
    shown = run.sample(20, seed=0, label=measure.label_of(run, EACH), **measure.image_sampler(run, params.nfe))
    return {
        "quality": {**quality, "run": str(run.folder)},
        "samples": encode.images(shown),  # the first 20 of those quality measured (the same seed)
        "conditional": run.cfg.conditional,
        "image": encode.images(x[0]),
        "latent": encode.images(latent_maps(z)),
        "reconstruction": encode.images(run.to_data(z)[0]),
        "pixel": encode.images(torch.stack(pixel)),
        "noised_latent": encode.images(torch.stack(latent_frames)),
        "t": [round(float(t), 3) for t in ts],
        "net": run.cfg.net,
        "data": f"{run.trained_on} {size}x{size}",
        **cost,
    }


# ---- 10. watch it learn ------------------------------------------------------------------------------------


def learn_metric(run, params, known=None):
    """The run's main figure beside its floor: exact W2 of params.w2_n points by Euler at params.nfe (the sampler its
    panel draws with), or FID / floor (known: that figure, measured already)."""
    if run.images:
        q = known or measure.image_quality(run, n=params.quality_n, nfe=params.nfe)
        return {"value": q["fid"], "floor": q["floor"], "ratio": q["ratio"], "metric": "FID"}
    curve = measure.w2_curves([("", run, "euler")], nfes=(params.nfe,), n=params.w2_n)["curves"][0]
    return {"value": curve["w2"][0], "floor": curve["floor"], "ratio": curve["w2"][0] / curve["floor"], "metric": "W2"}


def learn(runs, params, earlier):
    """Each kept snapshot of a run and its end: samples from the same noise, the metric beside its floor, and the
    loss curve they sit on."""
    panels, known = [], known_quality(earlier)  # section 5's w = 1: the digits run at its end
    for name, role in (("flow matching on the moons", "points-flow"), ("diffusion on the digits", "images-diffusion")):
        run = runs.get(role)
        index = snapshots.kept(run) if run is not None else None
        if index is None:
            continue
        states = [(e["fraction"], e["step"], snapshots.at(run, e)) for e in index["kept"]] + [(1.0, run.step, run)]
        frames, marks = [], []
        for fraction, step, state in states:
            if state.images:
                label = EACH if run.cfg.conditional else None
                frames.append(state.sample(run.num_classes, "dpmpp_2m", params.nfe, seed=0, label=label))
            else:
                frames.append(state.sample(POINTS, "euler", params.nfe, seed=3))
            end = known.get(str(run.folder)) if state is run else None  # a snapshot shares the run's folder
            marks.append({"fraction": fraction, "step": step, **learn_metric(state, params, end)})
        panels.append(
            {
                "name": name,
                "role": role,
                "kind": "images" if run.images else "points",
                "samples": pack(torch.stack(frames), run),
                "marks": marks,
                "loss": index["loss"],
                "run": str(run.folder),
            }
        )
    if not panels:
        return {"missing": missing(list(LEARN_ROLES), need="snapshots")}
    return {"panels": panels}


# ---- 11. the claims ----------------------------------------------------------------------------------------


def claims_table(folder):
    """The table of `unnoise claims`, from the claims folder given."""
    path = Path(folder) / "claims.json"
    if path.exists():
        return {"rows": load_json(path).get("rows", [])}
    return {"missing": {"claims": str(path), "folder": str(folder)}}


def claims(runs, params, earlier):
    """The table `unnoise claims` wrote when a folder is given; else the quick claims measured on this page's runs,
    and the command and time of each longer one."""
    return claims_table(params.claims) if params.claims else {"rows": page_claims(runs)}


SECTIONS = (
    Section("noise", ("points-diffusion", "images-diffusion"), noise),
    Section("denoise", ("points-diffusion", "images-diffusion"), denoise),
    Section("why", ("images-diffusion",), why),
    Section("field", POINT_ROLES, field),
    Section("guidance", ("images-diffusion",), guidance),
    Section("debate", IMAGE_ROLES, debate),
    Section("few", FEW_ROLES, few),
    Section("text", TEXT_ROLES, text),
    Section("latent", ("images-latent",), latent),
    Section("learn", LEARN_ROLES, learn),
    Section("claims", (), claims),
)
