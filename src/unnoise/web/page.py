"""One self-contained HTML page from a bundle: the text, the bundle as inline JSON, and page.js / page.css inlined.

No CDN, no modules, no workers, no fonts to fetch: it works opened from disk. The figures are drawn by
small hand-written canvas code (page.js, about 20 kB) rather than Plotly (3-4 MB embedded) or Vega
(about 0.7 MB): a page of a few quantized arrays should not weigh more than its data.

The page's words are all in templates/, so that a copy of that folder translates it: page.html around the sections,
one KEY.html per section (sections.SECTIONS), each filled in where it says {{name}}, and words.json, every title and
every sentence page.js writes (filled in where it says {name}).
"""

import html
import json
import math
import re
from importlib import resources

from ..samplers import FIXED
from .sections import SECTIONS

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


def fill(template, **values):
    """template with each {{name}} replaced by values[name], in one pass (a value's own braces stay as they are)."""
    return re.sub(r"\{\{(\w+)\}\}", lambda m: values[m.group(1)], template)


def sampler_options():
    """The live form's <option>s: every sampler with a fixed cost (not an adaptive one), dpmpp_2m selected."""
    return "".join(f"<option{' selected' if s == 'dpmpp_2m' else ''}>{s}</option>" for s in FIXED)


def words():
    """templates/words.json: the titles and every sentence the script writes, by key."""
    return json.loads(asset("templates/words.json"))


def section_html(section, said):
    """One <section>: its title, its fragment (templates/KEY.html) and the stamps of its runs' roles."""
    fragment = fill(asset(f"templates/{section.key}.html"), samplers=sampler_options())
    return (
        f'<section id="{section.key}"><h2>{html.escape(said[f"title.{section.key}"])}</h2>\n{fragment}'
        f'<div class="stamp" data-roles="{" ".join(section.roles)}"></div></section>'
    )


def render(bundle, live=False, sections=SECTIONS):
    """The page's HTML: every section, the bundle inline, no external resource."""
    said = words()
    budget = html.escape(str(bundle.get("budget") or "quick"))
    how = said["page.how_live"] if live else said["page.how_file"].replace("{budget}", budget)
    return fill(
        asset("templates/page.html"),
        css=asset("page.css"),
        js=asset("page.js"),
        sections="\n".join(section_html(s, said) for s in sections),
        how=how,
        cpu=html.escape(bundle.get("cpu", "")),
        when=html.escape(bundle.get("made", "")),
        bundle=inline_json({**bundle, "live": live}),
        words=inline_json(said),
    )
