"""`unnoise serve` under load: latency of the page's default requests, then a burst of concurrent ones.

Serves the runs of a page folder written by `unnoise explain` (default page/, from `make demo`) on
127.0.0.1 only, in this process, and sends it:
1. each default request of the page's live controls, 20 times in a row: median and 90th percentile
   wall time, client side;
2. a burst of --burst concurrent requests (the guidance default), bounded: every request has a
   timeout, and the burst ends by itself. It reports the status codes, the burst's wall time, the
   RSS growth of the process, and whether a request after the burst is answered.

    python benchmarks/serve.py [--page page] [--burst 200]
"""

import argparse
import json
import statistics
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import torch

import common
from unnoise.web import explain, server

DEFAULTS = {  # what the page's live forms send by default
    "guidance (40 digits, dpmpp_2m 20 NFE, w = 1)": {
        "run": "images-diffusion",
        "n": 40,
        "sampler": "dpmpp_2m",
        "nfe": 20,
        "guidance": 1.0,
        "label": None,
        "seed": 0,
    },
    "guidance at w = 3 (two passes per step)": {
        "run": "images-diffusion",
        "n": 40,
        "sampler": "dpmpp_2m",
        "nfe": 20,
        "guidance": 3.0,
        "label": None,
        "seed": 0,
    },
    "denoise (10 digits, 20 NFE, every frame)": {
        "run": "images-diffusion",
        "n": 10,
        "sampler": "dpmpp_2m",
        "nfe": 20,
        "guidance": 1.0,
        "frames": True,
        "seed": 0,
    },
    "2D points (500, ddim 20 NFE)": {"run": "points-diffusion", "n": 500, "sampler": "ddim", "nfe": 20, "seed": 0},
}


def post(url, body, timeout=30):
    request = urllib.request.Request(url, json.dumps(body).encode(), {"content-type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as r:
            r.read()
            return r.status
    except urllib.error.HTTPError as err:
        return err.code
    except OSError:
        return None


def rss_mb():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--page", default="page")
    parser.add_argument("--burst", type=int, default=200)
    parser.add_argument("--no-append", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(2)
    runs, html = explain.for_serving(None, args.page)
    sock = server.bind("127.0.0.1", 0)
    uv = server.make_server(server.create_app(runs, html), queue=8)
    thread = threading.Thread(target=uv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not uv.started:
        time.sleep(0.05)
    url = f"http://127.0.0.1:{sock.getsockname()[1]}/api/sample"
    lines = [
        f"- runs served: {', '.join(runs)} from `{args.page}/`; one sampling thread, queue 8",
        "",
        "| request | median s | p90 s |",
        "|---|---|---|",
    ]
    try:
        for name, body in DEFAULTS.items():
            if body["run"] not in runs:
                continue
            assert post(url, body) == 200, name  # warm-up, and a check
            times = []
            for _ in range(20):
                start = time.perf_counter()
                post(url, body)
                times.append(time.perf_counter() - start)
            times.sort()
            lines.append(f"| {name} | {statistics.median(times):.3f} | {times[17]:.3f} |")
        body = next(iter(DEFAULTS.values()))
        before, start = rss_mb(), time.perf_counter()
        with ThreadPoolExecutor(args.burst) as pool:
            codes = Counter(pool.map(lambda i: post(url, {**body, "seed": i}), range(args.burst)))
        wall = time.perf_counter() - start
        after = post(url, body)
        lines += [
            "",
            f"- burst of {args.burst} concurrent guidance requests: statuses "
            f"{dict(sorted(codes.items(), key=str))} in {wall:.1f} s; RSS {rss_mb() - before:+.0f} MB; "
            f"a request afterwards: {after}",
        ]
    finally:
        uv.should_exit = True
        thread.join(10)
    common.publish("unnoise serve: latency of the page's default requests, and a burst", lines, args.no_append)


if __name__ == "__main__":
    main()
