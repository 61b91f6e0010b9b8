"""The page in a real browser: Playwright driving Debian's Chromium, headless, on the exported file and on the server.

Nothing is downloaded: the browser is /usr/bin/chromium (`apt-get install chromium`, as .ci/run does).
Without it the tests are skipped with a message, except in CI (CI=true), where a missing browser fails.
Screenshots go to build/test-artifacts/.
"""

import contextlib
import os
import shutil
import threading
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

CHROMIUM = os.environ.get("UNNOISE_CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parent.parent / "build" / "test-artifacts"
SECTIONS = ("noise", "denoise", "why", "field", "guidance", "debate", "few", "text", "latent", "learn", "claims")


def browser_or_skip():
    """(sync_playwright, chromium path); skip (fail in CI) when either is missing."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        sync_playwright = None
    if sync_playwright is None or not shutil.which(CHROMIUM):
        why = (
            "browser tests need Playwright (pip install -e '.[test]') and Debian's Chromium "
            "(apt-get install chromium; never `playwright install`)"
        )
        if os.environ.get("CI") == "true":
            pytest.fail(why)
        pytest.skip(why)
    return sync_playwright


@pytest.fixture(scope="module")
def browser():
    sync_playwright = browser_or_skip()
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=shutil.which(CHROMIUM), headless=True, args=ARGS)
        yield b
        b.close()


def open_page(browser, url):
    """(page, console errors, requests that left the machine); every http(s) request off loopback is aborted."""
    page = browser.new_page(viewport={"width": 1100, "height": 900})
    errors, outside = [], []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))

    def route(r):
        url = r.request.url
        if url.startswith(("file:", "data:", "blob:", "http://127.0.0.1")):
            return r.continue_()
        outside.append(url)
        r.abort()

    page.route("**/*", route)
    page.goto(url)
    page.wait_for_function("document.body.dataset.ready === 'yes'", timeout=20000)
    return page, errors, outside


def pixels(page, canvas_id):
    return page.evaluate(f"document.getElementById('{canvas_id}').toDataURL()")


def drawn(page, section):
    """Every canvas of a section, as data URLs."""
    return page.evaluate(f"[...document.querySelectorAll('#{section} canvas')].map((c) => c.toDataURL())")


def move(page, slider_id, value):
    page.evaluate(
        f"(() => {{ const s = document.getElementById('{slider_id}'); s.value = {value}; "
        "s.dispatchEvent(new Event('input')); })()"
    )


def press(page, form_id, fields, until):
    """Fill a live form's fields, press its button, and wait until its status says `until`."""
    form = page.locator(f"#{form_id}")
    for name, value in fields.items():
        form.locator(f"[name={name}]").fill(value)
    form.locator("button").click()
    page.wait_for_function(
        f"document.querySelector('#{form_id} .status').textContent.includes('{until}')", timeout=20000
    )


def check_sections(page):
    """Every section is drawn: a non-blank canvas, a filled table, or its 'not on this page yet' note."""
    for key in SECTIONS:
        drawn = page.evaluate(f"""(() => {{
            const s = document.getElementById('{key}');
            const note = [...s.querySelectorAll('.missing')].some((m) => !m.hidden && m.textContent.length > 20);
            const blank = document.createElement('canvas');
            const painted = [...s.querySelectorAll('canvas')].some((c) => {{
                blank.width = c.width; blank.height = c.height; return c.toDataURL() !== blank.toDataURL(); }});
            return painted || note || s.querySelectorAll('tbody tr').length > 0;
        }})()""")
        assert drawn, f"section {key} shows nothing"


def test_the_exported_file_works_offline(browser, explained):
    path, _ = explained
    page, errors, outside = open_page(browser, path.as_uri())
    check_sections(page)
    before = pixels(page, "noise-points")
    move(page, "noise-t", 30)
    assert pixels(page, "noise-points") != before  # the t slider moves the picture
    assert "t = " in page.text_content("#noise-now")
    before = pixels(page, "denoise-img-x0")
    page.click("#denoise-step-prev")  # it opens on the samples
    page.click("#denoise-step-prev")
    assert pixels(page, "denoise-img-x0") != before  # stepping the reverse process
    page.focus("#guidance-w")
    before = pixels(page, "guidance-grid")
    page.keyboard.press("ArrowRight")  # reachable by keyboard
    assert pixels(page, "guidance-grid") != before
    assert "a fresh draw of real images scores" in page.text_content("#guidance-now")  # real data's level
    for section, slider, value in (  # one control of each other section, seen in its figures
        ("why", "why-d", 0),
        ("field", "field-progress", 20),
        ("debate", "debate-progress", 1),
        ("latent", "latent-level", 4),
        ("few", "few-calls", 2),
        ("learn", "learn-k", 0),
    ):
        before = drawn(page, section)
        move(page, slider, value)
        assert drawn(page, section) != before, f"{slider} changes nothing in section {section}"
    assert "D = " in page.text_content("#why-now") and "calls" in page.text_content("#few-now")
    shown = "[...document.querySelectorAll('#claims-table tr')].filter((tr) => !tr.hidden).length"
    every = page.evaluate(shown)
    page.select_option("#claims-show", "later")  # the claims this page did not measure: each with its command
    later = page.evaluate(shown)
    assert 0 < later < every and page.locator("#claims-table tr.later:not([hidden])").count() == later
    page.select_option("#claims-show", "here")
    assert page.evaluate(shown) == every - later
    assert page.locator(".live:not([hidden])").count() == 0  # no live controls offline
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "page-file.png"), full_page=True, animations="disabled")
    page.set_viewport_size({"width": 390, "height": 800})  # a phone: nothing wider than the screen
    assert page.evaluate("document.documentElement.scrollWidth") <= 400
    page.screenshot(path=str(ARTIFACTS / "page-phone.png"), animations="disabled")
    assert errors == [] and outside == []


@contextlib.contextmanager
def serving(page_folder):
    """`unnoise serve` of an explain folder, on a free port of 127.0.0.1, in a thread: its URL."""
    from unnoise.web import explain, server

    runs, html = explain.for_serving(None, page_folder)
    sock = server.bind("127.0.0.1", 0)
    uv = server.make_server(server.create_app(runs, html), queue=8)
    thread = threading.Thread(target=uv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while not uv.started and time.monotonic() < deadline:
            time.sleep(0.05)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/"
    finally:
        uv.should_exit = True
        thread.join(10)
        sock.close()


def test_the_served_page_samples_live(browser, explained):
    path, _ = explained
    with serving(path.parent) as url:
        page, errors, outside = open_page(browser, url)
        check_sections(page)
        before = pixels(page, "noise-image")
        move(page, "noise-t", 20)
        assert pixels(page, "noise-image") != before
        before = pixels(page, "guidance-grid")
        press(page, "guidance-live", {"seed": "7"}, "evaluations")
        assert pixels(page, "guidance-grid") != before  # pressing sample draws anew
        press(page, "denoise-live", {"nfe": "500"}, "nfe")  # out of range: the server says so
        before = pixels(page, "denoise-img-xt")
        press(page, "denoise-live", {"nfe": "6", "seed": "3"}, "evaluations")  # a valid draw: frames from x_T on
        assert pixels(page, "denoise-img-xt") != before and page.input_value("#denoise-step") == "0"
        assert page.get_attribute("#denoise-step", "max") == "8"  # the longest trace: the fixture's 8 steps
        for key, canvas in (("latent", "latent-samples"), ("few", "few-samples"), ("field", "field-samples")):
            before = pixels(page, canvas)
            press(page, f"{key}-live", {"seed": "5", **({"nfe": "2"} if key == "few" else {})}, "evaluations")
            assert pixels(page, canvas) != before, key
        page.select_option("#debate-class", "3")  # each family draws a 3 again, from another seed, frame by frame
        before = drawn(page, "debate")
        press(page, "debate-live", {"seed": "4"}, "network calls")
        move(page, "debate-progress", 48)
        assert drawn(page, "debate") != before and "its estimate of the image" in page.text_content("#debate-panels")
        page.screenshot(path=str(ARTIFACTS / "page-served.png"), full_page=True, animations="disabled")
        assert errors == [] or all("422" in e or "Failed to load resource" in e for e in errors)
        assert outside == []
