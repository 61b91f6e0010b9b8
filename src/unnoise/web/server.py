"""`unnoise serve`: the page plus a JSON API that samples served runs live (FastAPI on uvicorn).

Every input is bounded and every error is one line of JSON, {"error": "..."}. Sampling runs in a
small thread pool; at most `queue` requests wait or run at once, and the next one gets 503 at once.
The OpenAPI schema is at /openapi.json, as FastAPI clients expect; the interactive docs need a CDN and stay off.
"""

import asyncio
import errno
import ipaddress
import math
import socket
import sys
import threading
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from typing import Annotated, Literal

import torch
from fastapi import FastAPI, HTTPException
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from .. import samplers
from ..errors import UnnoiseError
from . import encode

MAX_BODY = 16 * 1024  # bytes of a request body
MAX_N = {"points": 2000, "images": 64, "text": 8}
MAX_TEXT = 256  # characters of a prompt or a suffix
MAX_NFE, MAX_FRAMES_NFE = 200, 50  # nfe; nfe when every step is recorded
MAX_FRAME_VALUES = 2_000_000  # n * frames * values per sample, with frames: true
TOKEN_FRAMES = 32  # frames of a token run's generation order
SERVED_SAMPLERS = samplers.FIXED  # an adaptive sampler's cost is not the NFE the request bounds


class SampleRequest(BaseModel):
    """The body of POST /api/sample."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    run: str = Field(max_length=200)
    n: int | None = Field(None, ge=1, le=max(MAX_N.values()))  # default 16, 1 for text
    sampler: str | None = Field(None, max_length=40)
    nfe: int | None = Field(None, ge=1, le=MAX_NFE)
    guidance: float = Field(1.0, ge=0, le=10)
    label: Annotated[int, Field(ge=0, le=100000)] | Literal["each"] | None = None  # "each": in turn
    seed: int = Field(0, ge=0, le=2**31 - 1)
    frames: bool = False
    temperature: float | None = Field(None, gt=0, le=10)
    top_k: int | None = Field(None, ge=1, le=1_000_000)
    top_p: float | None = Field(None, gt=0, le=1)
    length: int | None = Field(None, ge=1, le=4096)  # text: characters per sample (at most the run's context)
    prompt: str | None = Field(None, max_length=MAX_TEXT)  # text: the first characters
    suffix: str | None = Field(None, max_length=MAX_TEXT)  # text, mdlm and duo: the last characters


class Error(BaseModel):
    """Every error's body: one line naming the problem and the valid choices."""

    error: str


ERRORS = {
    status: {"model": Error, "description": what}
    for status, what in (
        (400, "malformed JSON, an unknown sampler, or a request the run cannot sample"),
        (404, "no served run of that name"),
        (413, "a body over 16 kB"),
        (422, "a field out of its range, or not for this run"),
        (503, "the queue is full: try again after Retry-After seconds"),
    )
}


def fail(status, message, **headers):
    """Raise the one-line JSON error of the given status."""
    raise HTTPException(status, " ".join(str(message).split()), headers=headers or None)


def error(status, message, headers=None):
    """The response every error takes: {"error": one line}."""
    return JSONResponse({"error": " ".join(str(message).split())}, status, headers=headers)


def describe(run):
    """A run's kind and the valid range of every input it takes, for the page's controls."""
    kind = kind_of(run)
    n = {"min": 1, "max": MAX_N[kind], "default": 1 if run.text else 16}
    inputs = {"n": n, "seed": {"min": 0, "max": 2**31 - 1, "default": 0}}
    if run.text:
        inputs.update(
            length={"min": 1, "max": run.cfg.context, "default": run.cfg.context},
            prompt={"max_length": MAX_TEXT},
            temperature={"min": 0, "max": 10, "default": 1, "exclusive_min": True},
        )
        if run.family.infills:
            inputs.update(suffix={"max_length": MAX_TEXT}, nfe={"min": 1, "max": MAX_NFE, "default": 64})
    if run.cfg.conditional:
        inputs["label"] = {"min": 0, "max": run.num_classes - 1, "default": None}
        inputs["guidance"] = {"min": 0, "max": 10, "default": 1}
    if "temperature" in run.family.options:  # token by token
        inputs.update(
            temperature={"min": 0, "max": 10, "default": 1, "exclusive_min": True},
            top_k={"min": 1, "max": run.net.vocab, "default": None},
            top_p={"min": 0, "max": 1, "default": 1, "exclusive_min": True},
            frames={"count": TOKEN_FRAMES},
        )
    if "sampler" in run.family.options:  # a sampler over its path
        inputs.update(
            sampler={"choices": list(SERVED_SAMPLERS), "default": run.default_sampler},
            nfe={"min": 1, "max": MAX_NFE, "default": samplers.get(run.default_sampler).default_nfe},
            frames={
                "max_nfe": MAX_FRAMES_NFE,
                "max_values": MAX_FRAME_VALUES,
                "values_per_sample": math.prod(run.shape),
            },
        )
    return {
        "family": run.cfg.family,
        "data": run.trained_on,
        "kind": kind,
        "shape": list(run.shape),
        "conditional": run.cfg.conditional,
        "num_classes": run.num_classes,
        "step": run.step,
        "inputs": inputs,
    }


def kind_of(run):
    return "text" if run.text else "images" if run.images else "points"


def check(runs, req):
    """The served run a request names, after the checks that depend on it (422 naming the limit)."""
    if req.run not in runs:
        fail(404, f"run: unknown run {req.run!r}; served runs: {', '.join(runs)}")
    run = runs[req.run]
    kind = kind_of(run)
    req.n = req.n or (1 if run.text else 16)
    if req.n > MAX_N[kind]:
        fail(422, f"n: must be <= {MAX_N[kind]} for {kind} runs")
    text = (req.length, req.prompt, req.suffix)
    if not run.text and any(v is not None for v in text):
        fail(422, f"length, prompt and suffix are for text runs; run {req.run!r} models {kind}")
    if run.text and req.frames:
        fail(422, f"frames: a text run returns its passages only; run {req.run!r} models text")
    if req.label is not None and not run.cfg.conditional:
        fail(422, f"label: run {req.run!r} is unconditional; it takes no label")
    if isinstance(req.label, int) and req.label >= run.num_classes:
        fail(422, f"label: must be in 0..{run.num_classes - 1} for run {req.run!r}")
    if req.sampler is not None and "sampler" in run.family.options and req.sampler not in SERVED_SAMPLERS:
        fail(400, f"sampler: unknown sampler {req.sampler!r}; choose one of {', '.join(SERVED_SAMPLERS)}")
    if req.frames and run.family.order == "denoising":  # its frames are steps of a sampler, priced by the NFE
        nfe = samplers.get(req.sampler or run.default_sampler).default_nfe if req.nfe is None else req.nfe
        if nfe > MAX_FRAMES_NFE:
            fail(422, f"nfe: must be <= {MAX_FRAMES_NFE} with frames: true")
        if req.n * nfe * math.prod(run.shape) > MAX_FRAME_VALUES:
            most = MAX_FRAME_VALUES // (nfe * math.prod(run.shape))
            fail(422, f"n: with frames at nfe {nfe} at most {most} samples ({MAX_FRAME_VALUES} values in all)")
    return run


def sample(run, req):
    """The response body of a checked request: samples, frames if asked, nfe per sample, seconds."""
    start, steps = time.perf_counter(), []
    keep = req.frames and run.family.order == "denoising"  # every step's (t, x_t, x0 estimate), in data units

    def record(*args):  # (i, t, x, x0), or (level, tokens) for token runs
        steps.append((float(args[1]), run.to_data(args[2]), run.to_data(args[3])) if keep else None)

    options = {k: getattr(req, k) for k in ("temperature", "top_k", "top_p")}
    if run.text:
        options.update({k: getattr(req, k) for k in ("length", "prompt", "suffix")})
    with torch.no_grad():
        x = run.sample(
            req.n,
            req.sampler,
            req.nfe,
            req.seed,
            label=req.label,
            guidance=req.guidance,
            batch_size=req.n,
            callback=record,
            **options,
        )
        frames = None
        if req.frames and not keep:  # a token run: its generation order
            from ..viz.order import order_frames

            label = (req.label if isinstance(req.label, int) else 0) if run.cfg.conditional else None
            images, captions = order_frames(run, label, req.seed, frames=TOKEN_FRAMES)
            frames = {"xt": None, "x0": encode.images(torch.stack(images)[:, None]), "t": captions}
        elif req.frames:  # x_T first, as the offline page's frames: (F + 1, n, ...)
            from ..samplers import PerSampleNoise

            ts, xts, x0s = zip(*steps)
            start_x = run.to_data(run.initial(PerSampleNoise.for_range(req.seed, 0, req.n)))
            pack = encode.images if run.images else encode.points
            frames = {"xt": pack(torch.stack((start_x,) + xts)), "x0": pack(torch.stack(x0s)), "t": list(ts)}
    if run.text:
        from ..families.text import decode

        passages = [decode(run, row) for row in x]  # one batch: a callback per network call
        return {"text": passages, "nfe": len(steps), "seconds": round(time.perf_counter() - start, 4)}
    return {
        "x": encode.images(x) if run.images else encode.points(x),
        "frames": frames,
        "nfe": len(steps),
        "seconds": round(time.perf_counter() - start, 4),
    }


class BodyLimit:
    """ASGI middleware: a body over `limit` bytes (declared or actual) gets 413; the rest is replayed to the app."""

    def __init__(self, app, limit=MAX_BODY):
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope["headers"]).get(b"content-length", b"0")
        too_big = error(413, f"request body over {self.limit} bytes")
        if not declared.isdigit():
            return await error(400, "bad Content-Length header")(scope, receive, send)
        if int(declared) > self.limit:
            return await too_big(scope, receive, send)
        body, more = b"", True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                return
            body, more = body + message.get("body", b""), message.get("more_body", False)
            if len(body) > self.limit:
                return await too_big(scope, receive, send)
        pending = [{"type": "http.request", "body": body, "more_body": False}]

        async def replay():  # the whole body once, then the client's own messages
            return pending.pop() if pending else await receive()

        await self.app(scope, replay, send)


def validation_message(err):
    """Pydantic's errors as one readable line: 'field: message' for each."""
    parts = {}
    for e in err.errors():
        loc = [str(p) for p in e["loc"] if p != "body"]
        field = loc[0] if loc else "body"  # a union's branches (label) add their own names: drop them
        if e["type"] == "json_invalid":
            return "malformed JSON: " + e.get("ctx", {}).get("error", e["msg"])
        if field == "body":  # no body, not an object, or not sent as JSON
            return "body: send one JSON object, with Content-Type: application/json"
        note = f"; fields: {', '.join(SampleRequest.model_fields)}" if e["type"] == "extra_forbidden" else ""
        parts.setdefault(field, []).append(e["msg"] + note)
    return "; ".join(f"{field}: {' or '.join(msgs)}" for field, msgs in parts.items())


def create_app(runs, page_html, queue=8, workers=1):
    """The FastAPI app serving page_html at / and sampling `runs` (name -> Run) at /api/sample."""
    app = FastAPI(title="unnoise", docs_url=None, redoc_url=None, openapi_url="/openapi.json")
    app.add_middleware(BodyLimit)
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="unnoise-sample")
    slots = threading.BoundedSemaphore(queue)  # requests waiting or running
    listing = {"runs": [{"name": name, **describe(run)} for name, run in runs.items()]}

    @app.exception_handler(RequestValidationError)
    async def invalid(request, err):
        message = validation_message(err)
        return error(400 if message.startswith("malformed JSON") else 422, message)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request, err):
        return error(err.status_code, err.detail, err.headers)

    @app.get("/", response_class=HTMLResponse)
    async def page():
        return HTMLResponse(page_html)

    @app.get("/api/runs")
    async def list_runs():
        return listing

    @app.post("/api/sample", responses={**ERRORS, 500: {"model": Error, "description": "a bug: see the log"}})
    async def sample_endpoint(req: SampleRequest):
        run = check(runs, req)
        if not slots.acquire(blocking=False):
            fail(503, f"busy: {queue} requests queued; try again", **{"Retry-After": "2"})
        job = pool.submit(sample, run, req)
        job.add_done_callback(lambda _: slots.release())  # when the work ends, even if the client left
        try:
            return await asyncio.wrap_future(job)
        except UnnoiseError as err:
            return error(400, err)
        except Exception:
            traceback.print_exc(file=sys.stderr)
            return error(500, "internal error while sampling; see the server's log")

    return app


def bind(host, port):
    """A listening-ready socket on (host, port), or UnnoiseError if the port is taken or the host unusable."""
    try:
        family, _, _, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        sock = socket.socket(family, socket.SOCK_STREAM)
    except OSError as err:
        raise UnnoiseError(f"cannot listen on {host}: {err.strerror or err}") from None
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as err:
        sock.close()
        if err.errno == errno.EADDRINUSE:
            raise UnnoiseError(f"port {port} on {host} is in use; pick another --port") from None
        raise UnnoiseError(f"cannot listen on port {port} of {host}: {err.strerror or err}") from None
    return sock


def is_loopback(host):
    """Whether only this machine can reach host: localhost, 127.0.0.0/8 or ::1."""
    try:
        return host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def make_server(app, queue=8):
    """The uvicorn server for app: open connections bounded well above the queue (uvicorn answers a plain-text
    503 past that), short keep-alive, warnings only."""
    import uvicorn

    config = uvicorn.Config(
        app, log_level="warning", limit_concurrency=max(64, 16 * queue), timeout_keep_alive=5, server_header=False
    )
    return uvicorn.Server(config)


def serve(runs, page_html, host="127.0.0.1", port=8000, queue=8, workers=1):
    """Serve the page and the sampling API until interrupted."""
    sock = bind(host, port)
    if not is_loopback(host):
        print(
            f"unnoise: warning: {host} is not a loopback address; this server is reachable from other machines",
            file=sys.stderr,
        )
    bound = sock.getsockname()[1]
    print(f"serving {', '.join(runs)} at http://{f'[{host}]' if ':' in host else host}:{bound}/", flush=True)
    try:
        make_server(create_app(runs, page_html, queue, workers), queue).run(sockets=[sock])
    finally:
        sock.close()
