"""Benchmark: `rnnkit serve` under load — /score requests/s and latency at 1, 8 and 64
concurrent clients, with dynamic batching on and off, one after the other in one script.

    python benchmarks/serve_load.py [MODEL] [--requests 1500] [--seconds 30] [--window-ms 5]

MODEL defaults to the quickstart's model (runs/quickstart/shakespeare-lstm). Each request
scores one sentence of tinyshakespeare (from ../shared/data, or the model's own words when it is
absent). The server runs as its own process on loopback; each (clients, batching) cell sends at
most --requests requests or runs --seconds, whichever ends first. Goal: at 64 clients, batching
gives at least 4x the requests/s of batch-of-one serving.
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import json
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def sentences(model: Path) -> list[str]:
    text = DATA / "tinyshakespeare.txt"
    if text.exists():
        lines = [line.strip() for line in text.read_text(encoding="utf-8").splitlines()]
        return [line for line in lines if 20 <= len(line) <= 80][:5000]
    words = (model / "vocab.txt").read_text(encoding="utf-8").split()[3:300]
    rng = np.random.default_rng(0)
    return [" ".join(rng.choice(words, 10)) for _ in range(2000)]


def load(port: int, texts: list[str], clients: int, requests: int, seconds: float) -> dict[str, float]:
    """``clients`` threads, each with its own keep-alive connection, post one sentence at a time.
    (Plain threads and http.client: an asyncio client of 64 connections on this 2-core machine
    became the bottleneck itself, which hid the server's behaviour.)"""
    latencies: list[float] = []
    errors = [0]
    counter = itertools.count()
    deadline = time.perf_counter() + seconds

    def client() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        while time.perf_counter() < deadline and (n := next(counter)) < requests:
            body = json.dumps({"sentences": [texts[n % len(texts)]]})
            started = time.perf_counter()
            connection.request("POST", "/v1/models/m/score", body, {"Content-Type": "application/json"})
            response = connection.getresponse()
            response.read()
            latencies.append(time.perf_counter() - started)
            errors[0] += response.status != 200
        connection.close()

    threads = [threading.Thread(target=client) for _ in range(clients)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - started
    ms = np.array(latencies) * 1000
    return {"requests": len(latencies), "errors": errors[0], "requests_per_second": len(latencies) / wall,
            "p50_ms": float(np.percentile(ms, 50)), "p99_ms": float(np.percentile(ms, 99))}


def serve(*arguments: str) -> tuple[subprocess.Popen, int]:
    """``rnnkit serve ARGUMENTS`` as a process of its own on a free port, once /health answers."""
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "rnnkit", "serve", *arguments, "--port", str(port),
                                "--log-level", "warning"])
    for _ in range(300):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1)
            return process, port
        except OSError:
            time.sleep(0.1)
    process.kill()
    sys.exit("the server did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", nargs="?", default="runs/quickstart/shakespeare-lstm")
    parser.add_argument("--requests", type=int, default=1500, help="most requests per cell")
    parser.add_argument("--seconds", type=float, default=30, help="most seconds per cell")
    parser.add_argument("--window-ms", type=float, default=5.0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    model = Path(args.model)
    if not (model / "config.json").exists():
        sys.exit(f"{model} is not a model directory: run `rnnkit quickstart` first, or name one")
    texts = sentences(model)
    rows = []
    for batching, window in (("on", args.window_ms), ("off", 0.0)):
        process, port = serve(f"m={model}", "--batch-window-ms", str(window))
        try:
            load(port, texts, 4, 40, 10)  # warm up
            for clients in (1, 8, 64):
                row = {"batching": batching, "clients": clients,
                       **load(port, texts, clients, args.requests, args.seconds)}
                rows.append(row)
                print(f"batching {batching:>3}  {clients:>3} clients  {row['requests_per_second']:8.1f} requests/s  "
                      f"p50 {row['p50_ms']:7.1f} ms  p99 {row['p99_ms']:7.1f} ms  {row['requests']:,} requests, "
                      f"{row['errors']} errors", flush=True)
        finally:
            process.terminate()
            process.wait(timeout=60)
    on = next(r for r in rows if r["batching"] == "on" and r["clients"] == 64)
    off = next(r for r in rows if r["batching"] == "off" and r["clients"] == 64)
    ratio = on["requests_per_second"] / off["requests_per_second"]
    print(f"at 64 clients batching gives {ratio:.1f}x the requests/s of batch-of-one serving (goal: 4x): "
          f"{'met' if ratio >= 4 else 'NOT met'}")
    if args.json:
        print(json.dumps({"rows": rows, "ratio_64": ratio}))


if __name__ == "__main__":
    main()
