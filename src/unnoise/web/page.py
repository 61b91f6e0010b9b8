"""One self-contained HTML page from a bundle: the text, the bundle as inline JSON, and page.js / page.css inlined.

No CDN, no modules, no workers, no fonts to fetch: it works opened from disk. The figures are drawn by
small hand-written canvas code (page.js, about 20 kB) rather than Plotly (3-4 MB embedded) or Vega
(about 0.7 MB): a page of a few quantized arrays should not weigh more than its data.
"""

import html
import json
import math
from importlib import resources

from ..samplers import SAMPLERS

SIZE_BUDGET = 5_000_000  # bytes: the quick page must stay under this (tested)


def asset(name):
    return resources.files("unnoise.web").joinpath(name).read_text(encoding="utf-8")


def finite(obj):
    """obj with every NaN or infinity replaced by None (JSON.parse refuses them)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite(v) for v in obj]
    return obj


def inline_json(obj):
    """JSON that is safe inside a <script> element: no '<' at all (so no '</script>' or '<!--'), no NaN."""
    return json.dumps(finite(obj), separators=(",", ":"), allow_nan=False).replace("<", "\\u003c")


def live_form(prefix, samplers=True, label=True):
    """The live controls of one section (hidden unless the page is served)."""
    options = "".join(
        f"<option{' selected' if s == 'dpmpp_2m' else ''}>{s}</option>" for s in SAMPLERS if s != "dopri5"
    )
    parts = []
    if samplers:
        parts.append(
            f'<label>sampler <select name="sampler">{options}</select></label>'
            '<label>NFE <input name="nfe" type="number" min="1" max="50" value="20"></label>'
        )
    if label:
        parts.append(
            '<label>class <select name="label"><option value="">each</option>'
            + "".join(f"<option>{c}</option>" for c in range(10))
            + "</select></label>"
        )
    parts.append(
        '<label>guidance w <input name="guidance" type="number" min="0" max="10" step="0.1" value="1"></label>'
        '<label>seed <input name="seed" type="number" min="0" max="2147483647" value="0"></label>'
        '<button type="button">sample</button> <span class="status" role="status"></span>'
    )
    return f'<div class="live" id="{prefix}-live" hidden>{"".join(parts)}</div>'


def controls(name, text, play=True, steps=False):
    """A labelled slider (with play and step buttons)."""
    buttons = f'<button type="button" id="{name}-play">play</button>' if play else ""
    if steps:
        buttons = (
            f'<button type="button" id="{name}-prev" aria-label="step back">&#9664;</button>'
            + buttons
            + f'<button type="button" id="{name}-next" aria-label="step forward">&#9654;</button>'
        )
    return (
        f'<div class="controls"><label for="{name}">{text}</label> '
        f'<input type="range" id="{name}" min="0" value="0"> {buttons}</div>'
    )


def canvas(name, alt, w=300, h=300):
    return f'<canvas id="{name}" width="{w}" height="{h}" role="img" aria-label="{html.escape(alt)}"></canvas>'


def maths(text):
    return f"<details><summary>The maths</summary><p>{text}</p></details>"


def section(key, title, words, body, roles):
    return (
        f'<section id="{key}"><h2>{title}</h2><p>{words}</p>'
        f'<p class="missing" id="{key}-missing" hidden></p>{body}'
        f'<div class="stamp" data-roles="{" ".join(roles)}"></div></section>'
    )


def body():
    return "\n".join(
        [
            section(
                "noise",
                "1. Noise",
                "Diffusion starts by destroying data. At time t every point and every pixel is "
                "mixed with Gaussian noise: x<sub>t</sub> = &alpha;(t) x<sub>0</sub> + &sigma;(t) &epsilon;. Move the "
                "slider: the two moons and the digit dissolve together. The curve is the signal-to-noise ratio "
                "the schedule sets; the ticks are the times the sampler visits on the way back.",
                controls("noise-t", "noise level t", play=False)
                + '<div class="row">'
                + canvas("noise-points", "noised points")
                + canvas("noise-image", "a noised digit", 160, 160)
                + canvas("noise-snr", "log signal-to-noise ratio against t", 420, 260)
                + '</div><p id="noise-now" class="now"></p>'
                + maths(
                    "&alpha;(t)&sup2; + &sigma;(t)&sup2; = 1 on the variance-preserving paths (DDPM, cosine); "
                    "SNR(t) = &alpha;&sup2;/&sigma;&sup2;. Flow matching's straight path has &alpha; = 1 - t, "
                    "&sigma; = t. The noise is drawn once, so moving t only changes the mix."
                ),
                ["points-diffusion", "images-diffusion"],
            ),
            section(
                "denoise",
                "2. Denoise",
                "Generation runs the other way: from pure noise, a network trained on your data "
                "predicts the clean image, and the sampler moves a little towards it. Left: the state x<sub>t</sub>. "
                "Right: the network's current guess of the end result, x&#770;<sub>0</sub>. The guess is blurry "
                "at first (an average of everything the noise allows), then commits.",
                controls("denoise-step", "sampler step", steps=True)
                + '<div class="row">'
                + canvas("denoise-xt", "x_t points")
                + canvas("denoise-x0", "x0 estimate points")
                + '</div><div class="row"><figure>'
                + canvas("denoise-img-xt", "x_t digits", 10, 10)
                + "<figcaption>x<sub>t</sub></figcaption></figure><figure>"
                + canvas("denoise-img-x0", "x0 estimate digits", 10, 10)
                + '<figcaption>estimate of x<sub>0</sub></figcaption></figure></div><p id="denoise-now" class="now"></p>'
                + live_form("denoise")
                + maths(
                    "DDIM (Song et al. 2021): x<sub>s</sub> = &alpha;(s) x&#770;<sub>0</sub> + &sigma;(s) &epsilon;&#770; "
                    "with &epsilon;&#770; = (x<sub>t</sub> - &alpha;(t) x&#770;<sub>0</sub>) / &sigma;(t): "
                    "the deterministic step from t to the next time s."
                ),
                ["points-diffusion", "images-diffusion"],
            ),
            section(
                "why",
                "3. Why it works",
                "Real data fills a thin sheet (a manifold) inside a huge space. Noise points "
                "in every direction at once, so almost all of it points away from the sheet: the share along any "
                "one direction of the data falls like 1/D. Denoising is then mostly a step back onto the sheet. "
                "In two dimensions (the moons) this is false: half the noise runs along the data.",
                canvas("why-chart", "share of noise energy along the data against the dimension", 480, 280)
                + '<p id="why-now" class="now"></p><p id="why-tangent"></p><p id="why-claim"></p>'
                + maths(
                    "For &epsilon; ~ N(0, I<sub>D</sub>) the share of its energy in a fixed d-dimensional subspace "
                    "is Beta(d/2, (D-d)/2), mean d/D. The band is its 5-95 % range from 2,000 draws."
                ),
                ["images-diffusion"],
            ),
            section(
                "field",
                "4. The learned field",
                "The network defines a direction at every point and time. Arrows: "
                "where the model would move a point at the slider's t. Below: the same starting noise carried to "
                "samples by each method, and the measured quality against the number of network evaluations, beside "
                "the floor two real draws reach.",
                controls("field-t", "noise level t", play=False)
                + canvas("field-arrows", "the denoising field", 360, 360)
                + '<p id="field-now" class="now"></p><p class="missing" id="field-missing-methods" hidden></p>'
                + controls("field-progress", "progress along the paths")
                + '<div class="row" id="field-paths"></div>'
                + canvas("field-w2", "W2 against NFE per method", 520, 300)
                + maths(
                    "Reverse SDE (DDPM ancestral steps), the probability-flow ODE (DDIM), flow matching's ODE "
                    "dx/dt = v(x, t) (Lipman et al. 2023), OT-CFM pairing noise and data by minibatch optimal "
                    "transport (Tong et al. 2023) and reflow retraining on its own pairs (Liu et al. 2022). "
                    "W2 is exact (POT) between samples and held-out points."
                ),
                ["points-diffusion", "points-flow", "points-ot", "points-reflow"],
            ),
            section(
                "guidance",
                "5. Guidance",
                "A class-conditional model also learns the unconditional one (labels are "
                "dropped 10 % of the time). Guidance pushes the prediction away from the unconditional and towards "
                "the class: w = 0 ignores the class, w = 1 is the model as trained, w &gt; 1 sharpens classes at "
                "a cost in diversity. The curve is measured: class accuracy against FID beside its floor.",
                controls("guidance-w", "guidance weight w", play=False)
                + '<div class="row">'
                + canvas("guidance-grid", "samples per class at the chosen w", 10, 10)
                + canvas("guidance-curve", "accuracy against FID ratio over w", 420, 280)
                + "</div>"
                + '<p id="guidance-now" class="now"></p>'
                + live_form("guidance", samplers=True, label=False)
                + maths(
                    "Classifier-free guidance (Ho &amp; Salimans 2022): out = out<sub>uncond</sub> + w "
                    "(out<sub>cond</sub> - out<sub>uncond</sub>), on the network's output."
                ),
                ["images-diffusion"],
            ),
            section(
                "debate",
                "6. The debate: line by line, coarse to fine, or everywhere at once",
                "Raster autoregression writes an image one pixel after another; VAR predicts a whole scale at a time, "
                "like a progressive JPEG; diffusion refines every pixel at every step. Same data, same machine, "
                "each drawing the same class. The table is measured: forward passes per image, milliseconds per "
                "image, and quality beside the floor. Read it with its training seconds: a model trained for "
                "half a minute says little about its family (<code>python benchmarks/families.py</code> races "
                "them on equal budgets; BENCHMARKS.md has the results).",
                '<div class="controls"><label for="debate-class">class</label> <select id="debate-class">'
                + "".join(f"<option>{c}</option>" for c in range(10))
                + "</select></div>"
                + controls("debate-progress", "progress")
                + '<div class="row" id="debate-panels"></div>'
                + "<table><thead><tr><th>family</th><th>parameters</th><th>training s</th><th>forward passes</th><th>ms / image</th>"
                '<th>class accuracy</th><th>FID / floor</th></tr></thead><tbody id="debate-table"></tbody></table>'
                + maths(
                    "Raster AR: p(x) = &prod;<sub>i</sub> p(x<sub>i</sub> | x<sub>&lt;i</sub>), one forward pass "
                    "per pixel with a KV cache. VAR (Tian et al. 2024): p = &prod;<sub>k</sub> p(r<sub>k</sub> | "
                    "r<sub>&lt;k</sub>), one pass per scale of a multi-scale VQ tokenizer. Milliseconds are at "
                    "batch 1 on this CPU."
                ),
                ["images-ar", "images-var", "images-diffusion"],
            ),
            section(
                "claims",
                "7. The claims",
                "What the discussions around diffusion explainers claim, each turned into "
                "an experiment with a verdict.",
                "<table><thead><tr><th>claim</th><th>experiment</th><th>ours</th><th>reference</th><th>verdict</th>"
                '</tr></thead><tbody id="claims-table"></tbody></table>',
                [],
            ),
        ]
    )


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Diffusion explained by your own models (unnoise)</title>
<style>{css}</style></head>
<body><main>
<h1>Diffusion, explained by your own models</h1>
<p class="lede">Every figure on this page was made by models trained on this machine ({cpu}), {when}. Each one
says which run made it, how long it trained, how good it is beside the floor real data reaches, and the command
that rebuilds it. {how}</p>
{body}
</main>
<script type="application/json" id="bundle">{bundle}</script>
<script>{js}</script>
</body></html>
"""


def render(bundle, live=False):
    """The page's HTML: every section, the bundle inline, no external resource."""
    how = (
        "This page is live: the controls marked 'sample' draw new samples from the runs."
        if live
        else f"Rebuild it with <code>unnoise explain --budget {html.escape(str(bundle.get('budget') or 'quick'))}"
        " --out page</code>; <code>unnoise serve</code> serves it with live controls."
    )
    return PAGE.format(
        css=asset("page.css"),
        js=asset("page.js"),
        body=body(),
        how=how,
        cpu=html.escape(bundle.get("cpu", "")),
        when=html.escape(bundle.get("made", "")),
        bundle=inline_json({**bundle, "live": live}),
    )
