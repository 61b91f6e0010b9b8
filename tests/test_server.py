"""`unnoise serve`: the live sampling API, its bounds, its one-line JSON errors, its queue, under load."""

import json
import socket
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient

import unnoise
from unnoise.cli import Parser, positive
from unnoise.web import commands, server
from unnoise.web.encode import decode

PAGE = "<!doctype html><title>unnoise</title><p>hello</p>"


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Tiny runs: 2D moons diffusion (unconditional), conditional digits diffusion and raster AR."""
    tmp = tmp_path_factory.mktemp("serve")
    torch.set_num_threads(2)
    unnoise.train(unnoise.TrainConfig(data="moons", steps=30, width=32, depth=1), tmp / "moons", progress=False)
    unnoise.train(
        unnoise.TrainConfig(data="digits", conditional=True, steps=5, width=8), tmp / "digits", progress=False
    )
    unnoise.train(
        unnoise.TrainConfig(data="digits", family="ar", conditional=True, steps=5, width=16, depth=1, heads=2),
        tmp / "ar",
        progress=False,
    )
    return {name: unnoise.Run.load(tmp / name) for name in ("moons", "digits", "ar")}


@pytest.fixture(scope="module")
def client(runs):
    with TestClient(create(runs)) as c:
        yield c


def create(runs, **kw):
    return server.create_app(runs, PAGE, **kw)


def post(client, **body):
    return client.post("/api/sample", json=body)


def ok(client, **body):
    r = post(client, **body)
    assert r.status_code == 200, r.text
    return r.json()


def test_page_and_run_listing(client):
    r = client.get("/")
    assert r.status_code == 200 and r.text == PAGE and r.headers["content-type"].startswith("text/html")
    listing = {run["name"]: run for run in client.get("/api/runs").json()["runs"]}
    assert list(listing) == ["moons", "digits", "ar"]
    moons, digits, ar = listing["moons"], listing["digits"], listing["ar"]
    assert (moons["kind"], moons["family"], moons["conditional"], moons["shape"]) == ("points", "diffusion", False, [2])
    assert moons["inputs"]["n"]["max"] == 2000 and "label" not in moons["inputs"]
    assert "ddim" in moons["inputs"]["sampler"]["choices"] and "dopri5" not in moons["inputs"]["sampler"]["choices"]
    assert moons["inputs"]["nfe"] == {"min": 1, "max": 200, "default": 20}  # what a request without nfe gets
    assert (digits["inputs"]["sampler"]["default"], digits["inputs"]["nfe"]["default"]) == ("dpmpp_2m_sde", 30)
    assert (digits["kind"], digits["num_classes"], digits["inputs"]["n"]["max"]) == ("images", 10, 64)
    assert digits["inputs"]["label"]["max"] == 9 and digits["step"] == 5
    assert ar["family"] == "ar" and "sampler" not in ar["inputs"] and ar["inputs"]["top_k"]["max"] == 17
    assert ar["inputs"]["top_p"]["max"] == 1


def test_points_are_reproducible_and_sample_i_does_not_depend_on_n(client):
    body = dict(run="moons", sampler="ddim", nfe=10, seed=3)
    first = ok(client, n=8, **body)
    x = decode(first["x"])
    assert x.shape == (8, 2) and np.isfinite(x).all() and first["frames"] is None and first["nfe"] == 10
    assert np.array_equal(decode(ok(client, n=8, **body)["x"]), x)
    assert not np.allclose(decode(ok(client, n=8, **{**body, "seed": 4})["x"]), x, atol=1e-2)
    prefix = decode(ok(client, n=3, **body)["x"])
    span = x.max() - x.min()  # 16-bit encoding over each answer's own range
    assert np.allclose(prefix, x[:3], atol=2 * span / 65535)


def test_images_of_a_class_with_guidance(client):
    out = ok(client, run="digits", n=5, label=3, guidance=2.5, sampler="euler", nfe=4, seed=1)
    x = decode(out["x"])
    assert x.shape == (5, 1, 8, 8) and x.min() >= 0 and x.max() <= 1 and out["nfe"] == 4 and out["seconds"] > 0


@pytest.mark.parametrize("run,n,shape", [("moons", 6, (2,)), ("digits", 2, (1, 8, 8))])
def test_ddim_frames_end_at_the_samples(client, run, n, shape):
    out = ok(client, run=run, n=n, sampler="ddim", nfe=7, frames=True)
    frames, x = out["frames"], decode(out["x"])
    xt, x0 = decode(frames["xt"]), decode(frames["x0"])
    assert xt.shape == (8, n, *shape) and x0.shape == (7, n, *shape) and len(frames["t"]) == 7  # x_T first
    assert frames["t"] == sorted(frames["t"], reverse=True)
    tolerance = 2 * (xt.max() - xt.min()) / 65535 + 2 * (x.max() - x.min()) / 65535 if run == "moons" else 1 / 255
    assert np.allclose(xt[-1], x, atol=tolerance)
    start = client.post("/api/sample", json={"run": run, "n": n, "sampler": "ddim", "nfe": 1, "frames": True}).json()
    assert np.allclose(decode(start["frames"]["xt"])[0], xt[0], atol=tolerance)  # the same x_T, whatever the nfe


def test_each_class_in_turn_is_conditional_at_w_1(client):
    """label "each" draws class i mod 10 for sample i even at w = 1, where no label means unconditional."""
    each = decode(ok(client, run="digits", n=3, label="each", sampler="ddim", nfe=3)["x"])
    none = decode(ok(client, run="digits", n=3, sampler="ddim", nfe=3)["x"])
    one = decode(ok(client, run="digits", n=3, label=1, sampler="ddim", nfe=3)["x"])
    assert np.allclose(each[1], one[1]) and not np.allclose(each, none)


def test_token_run_samples_and_generation_order(client):
    out = ok(client, run="ar", n=4, label=2, temperature=0.8, top_k=5, top_p=0.9, seed=2)
    assert decode(out["x"]).shape == (4, 1, 8, 8) and out["nfe"] == 64
    out = ok(client, run="ar", n=2, label=2, frames=True)
    frames = out["frames"]
    assert frames["xt"] is None and decode(frames["x0"]).shape == (32, 1, 1, 8, 8)
    assert frames["t"][-1] == "token 64/64" and len(frames["t"]) == 32


BAD = [  # (body, status, words the one-line error must hold)
    ({"run": "moons", "n": 2001}, 422, ["n:", "2000"]),
    ({"run": "digits", "n": 65}, 422, ["n: must be <= 64 for images runs"]),
    ({"run": "moons", "nfe": 0}, 422, ["nfe:", "greater than or equal to 1"]),
    ({"run": "moons", "nfe": 201}, 422, ["nfe:", "less than or equal to 200"]),
    ({"run": "moons", "seed": -1}, 422, ["seed:", "greater than or equal to 0"]),
    ({"run": "moons", "guidance": 11}, 422, ["guidance:", "10"]),
    ({"run": "moons", "top_p": 0}, 422, ["top_p:", "greater than 0"]),
    ({"run": "moons", "eta": 0.5}, 422, ["eta:", "Extra inputs", "fields: run, n"]),
    ({"n": 4}, 422, ["run: Field required"]),
    ({"run": "moons", "n": "many"}, 422, ["n:", "integer"]),
    ({"run": "moons", "sampler": "fancy"}, 400, ["unknown sampler 'fancy'", "ddim"]),
    ({"run": "moons", "sampler": "dopri5"}, 400, ["unknown sampler 'dopri5'"]),
    ({"run": "moons", "sampler": "heun", "nfe": 2}, 400, ["heun needs an nfe of at least 3"]),
    ({"run": "nope"}, 404, ["unknown run 'nope'", "moons, digits, ar"]),
    ({"run": "../x"}, 404, ["unknown run '../x'", "served runs"]),
    ({"run": "moons", "top_k": 5}, 400, ["--top-k is for token runs"]),
    ({"run": "moons", "label": 1}, 422, ["label:", "unconditional"]),
    ({"run": "moons", "guidance": 2}, 400, ["not a conditional model"]),
    ({"run": "digits", "label": 10}, 422, ["label: must be in 0..9"]),
    ({"run": "ar", "sampler": "ddim"}, 400, ["--sampler belongs to diffusion, flow and edm runs"]),
    ({"run": "ar", "top_k": 18}, 400, ["top-k must be a whole number in 1..17"]),
    ({"run": "moons", "frames": True, "nfe": 51}, 422, ["nfe: must be <= 50 with frames"]),
]


def one_line_error(r, status, words):
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/json" and "\n" not in r.text
    message = r.json()["error"]
    assert all(w in message for w in words), message


@pytest.mark.parametrize("body,status,words", BAD)
def test_bad_requests_get_a_one_line_json_error(client, body, status, words):
    one_line_error(client.post("/api/sample", json=body), status, words)


def test_frames_are_bounded_in_values(client, monkeypatch):
    monkeypatch.setattr(server, "MAX_FRAME_VALUES", 1000)  # 8-bit 32x32 RGB: 64 samples x 50 NFE is 9.8M
    r = post(client, run="moons", n=20, frames=True, nfe=50)
    one_line_error(r, 422, ["n: with frames at nfe 50 at most 10 samples (1000 values in all)"])
    assert post(client, run="moons", n=10, frames=True, nfe=50).status_code == 200
    r = post(client, run="moons", n=25, frames=True)  # the default, dpmpp_2m at 20 NFE
    assert r.status_code == 200 and r.json()["nfe"] == 20


@pytest.mark.parametrize(
    "content,status,words",
    [
        (b'{"run": "moons", ', 400, ["malformed JSON"]),
        (b'{"run": "moons", "guidance": NaN}', 422, ["guidance:"]),
        (b"[1, 2]", 422, ["body: send one JSON object"]),
        (b"", 422, ["body: send one JSON object"]),
        (b'{"run": "moons", "pad": "' + b"x" * 100_000 + b'"}', 413, ["over 16384 bytes"]),
    ],
)
def test_malformed_and_oversized_bodies(client, content, status, words):
    r = client.post("/api/sample", content=content, headers={"content-type": "application/json"})
    one_line_error(r, status, words)


def test_a_body_not_sent_as_json_is_refused(client):
    r = client.post("/api/sample", content=b'{"run": "moons"}', headers={"content-type": "text/plain"})
    one_line_error(r, 422, ["Content-Type: application/json"])


def test_a_body_without_content_length_is_measured_too(client):
    chunks = iter([b'{"run": "moons", "pad": "', b"x" * 10_000, b"x" * 10_000, b'"}'])
    r = client.post("/api/sample", content=chunks, headers={"content-type": "application/json"})
    assert "content-length" not in r.request.headers
    one_line_error(r, 413, ["over 16384 bytes"])


def test_other_errors_are_one_line_json_too(client, runs, monkeypatch):
    one_line_error(client.get("/api/nothing"), 404, ["Not Found"])
    one_line_error(client.get("/api/sample"), 405, ["Method Not Allowed"])
    monkeypatch.setattr(runs["moons"], "sample", lambda *a, **k: 1 / 0)
    one_line_error(post(client, run="moons"), 500, ["internal error"])
    assert "ZeroDivision" not in post(client, run="moons").text


def test_a_full_queue_turns_requests_away(runs, monkeypatch):
    started, release = threading.Event(), threading.Event()
    real = server.sample

    def slow(run, req):
        started.set()
        release.wait(10)
        return real(run, req)

    monkeypatch.setattr(server, "sample", slow)
    with TestClient(create(runs, queue=1)) as c, ThreadPoolExecutor(1) as pool:
        first = pool.submit(post, c, run="moons", n=4, nfe=2)
        assert started.wait(10)
        r = post(c, run="moons", n=4, nfe=2)
        one_line_error(r, 503, ["busy: 1 requests queued; try again"])
        assert r.headers["retry-after"]
        release.set()
        assert first.result(10).status_code == 200
        assert post(c, run="moons", n=4, nfe=2).status_code == 200  # the slot is free again


def rss_mb():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024


def fetch(url, body=None, timeout=20):
    """(status, parsed JSON or text) of one request; status None on a connection error."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data, {"content-type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()
    except OSError:
        return None, b""


def test_two_hundred_concurrent_requests_on_loopback(runs):
    sock = server.bind("127.0.0.1", 0)
    port = sock.getsockname()[1]
    uv = server.make_server(create(runs, queue=8), queue=8)
    thread = threading.Thread(target=uv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 10
        while not uv.started and time.monotonic() < deadline:
            time.sleep(0.05)
        assert uv.started
        fetch(url + "/api/sample", {"run": "moons", "n": 16, "nfe": 5})  # warm-up
        before = rss_mb()
        bodies = [{"run": "moons", "n": 16, "nfe": 5, "seed": i} for i in range(200)]
        with ThreadPoolExecutor(200) as pool:
            results = list(pool.map(lambda b: fetch(url + "/api/sample", b), bodies))
        statuses = [s for s, _ in results]
        assert set(statuses) <= {200, 503, None}, set(statuses)
        assert statuses.count(None) <= 10 and statuses.count(200) >= 8
        status, body = fetch(url + "/api/sample", {"run": "moons", "n": 4, "seed": 1, "nfe": 5})
        assert status == 200 and decode(json.loads(body)["x"]).shape == (4, 2)
        assert fetch(url + "/")[0] == 200
        assert rss_mb() - before < 200
    finally:
        uv.should_exit = True
        thread.join(10)
    assert not thread.is_alive()


def test_serve_refuses_a_port_in_use(runs):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(unnoise.UnnoiseError, match=f"port {port} on 127.0.0.1 is in use; pick another --port"):
            server.serve(runs, PAGE, "127.0.0.1", port)


def test_serve_prints_its_url_and_warns_off_loopback(runs, monkeypatch, capsys):
    started = []

    class Fake:
        def run(self, sockets):
            started.append(sockets[0].getsockname())

    monkeypatch.setattr(server, "make_server", lambda app, queue: Fake())
    server.serve(runs, PAGE, "127.0.0.1", 0)
    out, err = capsys.readouterr()
    assert out.strip() == f"serving moons, digits, ar at http://127.0.0.1:{started[0][1]}/" and err == ""
    server.serve(runs, PAGE, "0.0.0.0", 0)
    out, err = capsys.readouterr()
    assert "reachable" in err and len(err.strip().splitlines()) == 1 and f":{started[1][1]}/" in out


def test_loopback_hosts_and_the_serve_parser():
    assert all(server.is_loopback(h) for h in ("127.0.0.1", "::1", "localhost", "127.0.0.2"))
    assert not any(server.is_loopback(h) for h in ("0.0.0.0", "192.168.1.2", "::", "example.com"))
    parser = Parser(prog="unnoise")
    commands.add_serve(parser.add_subparsers(dest="command", parser_class=Parser), positive)
    args = parser.parse_args(["serve", "--runs", "a", "b", "--port", "0"])
    assert (args.runs, args.page, args.host, args.port, args.queue) == (["a", "b"], "page", "127.0.0.1", 0, 8)
    for bad in (["--port", "70000"], ["--port", "-1"], ["--queue", "0"]):
        with pytest.raises(unnoise.UnnoiseError):
            parser.parse_args(["serve", *bad])


def test_the_openapi_schema_is_published_and_the_docs_stay_off(client):
    schema = client.get("/openapi.json").json()
    assert set(schema["paths"]) == {"/", "/api/runs", "/api/sample"}
    errors = schema["paths"]["/api/sample"]["post"]["responses"]
    assert {"400", "404", "413", "422", "503"} <= set(errors)
    assert errors["422"]["content"]["application/json"]["schema"]["$ref"].endswith("/Error")
    for path in ("/docs", "/redoc"):
        assert client.get(path).status_code == 404


@pytest.mark.slow
def test_every_route_of_the_schema_holds_under_fuzzing_on_loopback(runs):
    """schemathesis draws bodies from /openapi.json for every route (bounded examples, 127.0.0.1 only): no 5xx,
    every error one line of JSON, and the server answers normally after."""
    import schemathesis
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    sock = server.bind("127.0.0.1", 0)
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    uv = server.make_server(create(runs, queue=8), queue=8)
    thread = threading.Thread(target=uv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    seen = []
    try:
        deadline = time.monotonic() + 10
        while not uv.started and time.monotonic() < deadline:
            time.sleep(0.05)
        schema = schemathesis.openapi.from_url(url + "/openapi.json")
        for result in schema.get_all_operations():
            operation = result.ok()

            @given(case=operation.as_strategy(), name=st.sampled_from([*runs, None]))
            @settings(max_examples=150, deadline=None, database=None, derandomize=True,
                      suppress_health_check=list(HealthCheck))  # fmt: skip
            def fuzz(case, name):
                if name is not None and isinstance(case.body, dict) and "run" in case.body:
                    case.body["run"] = name  # a served run's name, so the draws reach its checks and its sampler
                response = case.call(base_url=url, timeout=30)
                seen.append(response.status_code)
                assert response.status_code < 500, (case.body, response.text)
                if response.status_code >= 400:
                    assert set(response.json()) == {"error"} and "\n" not in response.json()["error"]

            fuzz()
        assert fetch(url + "/api/runs")[0] == 200
        status, body = fetch(url + "/api/sample", {"run": "moons", "n": 4, "nfe": 5})
        assert status == 200 and decode(json.loads(body)["x"]).shape == (4, 2)
    finally:
        uv.should_exit = True
        thread.join(10)
    assert len(seen) >= 150 and {200, 404, 422} <= set(seen)
