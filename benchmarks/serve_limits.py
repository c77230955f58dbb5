"""Benchmark: `rnnkit serve` against a hostile body and under its largest legal requests.

    python benchmarks/serve_limits.py [--lm MODEL] [--seq2seq MODEL] [--body-mb 200]

1. **Memory under a huge chunked body.** A body of ``--body-mb`` MB sent with
   ``Transfer-Encoding: chunked`` (no Content-Length, so the server learns its size only as it
   streams in) to /score; the server's peak resident memory (VmHWM) before and after. Goal: it
   grows by less than 2x the body limit (--max-body-bytes, 1 MiB by default), and the client reads
   the 413.
2. **/health while the largest legal requests run.** Each of these, at the default limits, sent
   while another thread asks /health every 20 ms: a translate of 256 sources at beam 16 filling
   the work budget (--max-work), and a /score of 256 sentences of 400 tokens. Goal: /health
   answers within 100 ms throughout (its p50, p99 and max are reported).

The models default to ones trained here for one step at the default sizes (their answers do not
matter, only their cost): a language model on tinyshakespeare (../shared/data) or on generated
sentences, and a character seq2seq model on copied lines. The server runs as its own process.
"""

from __future__ import annotations

import argparse
import http.client
import json
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np
from serve_load import serve  # this directory's: the server as its own process

LIMIT = 1 << 20  # the server's default --max-body-bytes


def default_models(tmp: Path) -> tuple[Path, Path]:
    import rnnkit
    from rnnkit.lm import train
    from rnnkit.seq2seq import train_seq2seq

    rng = np.random.default_rng(0)
    words = "the cat dog bird sat saw ran on a mat log tree and then it was so".split()
    lines = [" ".join(rng.choice(words, size=rng.integers(5, 15))) for _ in range(3000)]
    (tmp / "text.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    quiet = {"log": lambda _: None, "progress": False, "max_steps": 1}
    corpus = rnnkit.prepare(tmp / "text.txt", tmp / "corpus", lines=True, progress=False)
    train(corpus, tmp / "lm", **quiet)
    (tmp / "pairs").mkdir()
    for split in ("train", "valid"):
        (tmp / "pairs" / f"{split}.tsv").write_text("".join(f"{s}\t{s.upper()}\n" for s in lines), encoding="utf-8")
    train_seq2seq(tmp / "pairs", tmp / "seq2seq", decode_pairs=0, **quiet)
    return tmp / "lm", tmp / "seq2seq"


def memory_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} for process {pid}")


def chunked_body(port: int, megabytes: int) -> tuple[int, str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    conn.putrequest("POST", "/v1/models/lm/score")
    conn.putheader("Content-Type", "application/json")
    conn.putheader("Transfer-Encoding", "chunked")
    conn.endheaders()
    chunk = b" " * (1 << 16)
    try:
        for _ in range(megabytes * 16):
            conn.send(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        conn.send(b"0\r\n\r\n")
    except OSError as e:  # the server may close once it has drained what it reads of an early 413
        print(f"  (the server closed the body at some point: {e})")
    response = conn.getresponse()
    return response.status, response.read().decode()[:120]


def health_while(port: int, request: tuple[str, dict]) -> dict[str, float]:
    """/health latencies (ms) every 20 ms while ``request`` runs; that request's status and time."""
    done, latencies, outcome = threading.Event(), [], {}

    def big() -> None:
        started = time.perf_counter()
        data = json.dumps(request[1]).encode()
        post = urllib.request.Request(f"http://127.0.0.1:{port}{request[0]}", data=data, method="POST",
                                      headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(post, timeout=600) as r:
                outcome["status"] = r.status
        except urllib.error.HTTPError as e:
            outcome["status"], outcome["detail"] = e.code, e.read().decode()[:200]
        outcome["seconds"] = time.perf_counter() - started
        done.set()

    worker = threading.Thread(target=big)
    worker.start()
    while not done.is_set():
        started = time.perf_counter()
        urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=60).read()
        latencies.append((time.perf_counter() - started) * 1000)
        time.sleep(0.02)
    worker.join()
    ms = np.array(latencies)
    return {**outcome, "health_checks": len(ms), "p50_ms": float(np.median(ms)), "p99_ms": float(np.percentile(ms, 99)),
            "max_ms": float(ms.max())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lm")
    parser.add_argument("--seq2seq")
    parser.add_argument("--body-mb", type=int, default=200)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="serve-limits-"))
    lm, s2s = (Path(args.lm), Path(args.seq2seq)) if args.lm and args.seq2seq else default_models(tmp)
    server, port = serve(f"lm={lm}", f"s2s={s2s}")
    try:
        checks = {}
        before = memory_kb(server.pid, "VmHWM")
        status, detail = chunked_body(port, args.body_mb)
        grown_mb = (memory_kb(server.pid, "VmHWM") - before) / 1024
        print(f"{args.body_mb} MB chunked body: {status} ({detail}); the server's peak memory grew {grown_mb:.1f} MB "
              f"(from {before / 1024:.0f} MB; body limit {LIMIT / 2**20:.0f} MiB)")
        checks[f"peak memory grows by less than 2x the body limit ({2 * LIMIT / 2**20:.0f} MiB)"] = \
            grown_mb < 2 * LIMIT / 2**20 and status == 413

        translate = ("/v1/models/s2s/translate", {"sources": ["the cat sat on a mat and then it ran !"[:32]] * 256,
                                                  "beam": 16})  # 16 × 256 × 32 = the budget, 131,072
        score = ("/v1/models/lm/score", {"sentences": [" ".join(["the cat"] * 200)] * 256})  # 256 × 400 tokens
        for name, request in (("translate, 256 sources × 32 characters, beam 16", translate),
                              ("score, 256 sentences × 400 tokens", score)):
            r = health_while(port, request)
            print(f"{name}: {r['status']} in {r['seconds']:.1f} s {r.get('detail', '')}; /health ({r['health_checks']} "
                  f"checks) p50 {r['p50_ms']:.1f} ms, p99 {r['p99_ms']:.1f} ms, max {r['max_ms']:.1f} ms")
            checks[f"{name}: answered 200, /health within 100 ms"] = r["status"] == 200 and r["max_ms"] <= 100
        for check, passed in checks.items():
            print(f"  {check}: {'yes' if passed else 'NO'}")
    finally:
        server.terminate()
        server.wait(60)


if __name__ == "__main__":
    main()
