"""rnnkit serve: every endpoint and limit through FastAPI's TestClient (httpx), dynamic
batching, and the page in a real browser where Chromium is installed."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

from fastapi.testclient import TestClient  # noqa: E402

import rnnkit  # noqa: E402
from rnnkit.serve import Limits, create_app, open_served  # noqa: E402
from rnnkit.serve.batching import Batcher  # noqa: E402
from tests.conftest import serving  # noqa: E402

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"


@pytest.fixture(scope="module")
def served(tiny_models):
    return {name: open_served(f"{name}={tiny_models / kind}", engine="numpy")
            for name, kind in (("lm", "lm"), ("ranker", "ranker"), ("s2s", "seq2seq"))}


@pytest.fixture(scope="module")
def client(served):
    limits = Limits(max_body_bytes=20_000, max_sentences=8, max_tokens=30, max_generate=4, max_length=40)
    with TestClient(create_app(served, limits=limits, batch_window_ms=2)) as c:
        yield c


def test_models_health_and_the_page(client):
    assert client.get("/health").json()["status"] == "ok"
    models = {m["name"]: m for m in client.get("/v1/models").json()["models"]}
    assert {n: m["kind"] for n, m in models.items()} == {"lm": "lm", "ranker": "ranker", "s2s": "seq2seq"}
    assert models["lm"]["vocab_size"] > 5 and models["lm"]["engine"] == "numpy"
    page = client.get("/")
    assert page.status_code == 200 and "<script>" in page.text and "http" not in page.text.split("<script>")[1]
    assert client.get("/openapi.json").json()["info"]["title"] == "rnnkit"


def test_score_gives_the_numbers_score_json_gives(client, tiny_models, run_cli, tmp_path):
    sentences = ["the cat sat on a mat .", "a dog ."]
    answer = client.post("/v1/models/lm/score", json={"sentences": sentences}).json()["results"]
    (tmp_path / "in.txt").write_text("\n".join(sentences) + "\n")
    status, out, _ = run_cli("score", tiny_models / "lm", tmp_path / "in.txt", "--json", "--engine", "numpy")
    cli = [json.loads(line) for line in out.splitlines()][:2]
    assert status == 0 and [set(r) for r in answer] == [{"text", "logprob", "tokens", "perplexity"}] * 2
    for ours, theirs in zip(answer, cli):
        assert ours["text"] == theirs["text"] and ours["tokens"] == theirs["tokens"]
        assert ours["logprob"] == pytest.approx(theirs["logprob"], rel=1e-9)
    per_token = client.post("/v1/models/lm/score", json={"sentences": ["a dog ."], "per_token": True}).json()
    probs = per_token["results"][0]["token_probs"]
    assert [p["token"] for p in probs][:2] == ["a", "dog"] and all(0 < p["prob"] <= 1 for p in probs)


def test_generate_and_rerank(client):
    first = client.post("/v1/models/lm/generate", json={"n": 2, "seed": 3, "min_length": 1}).json()["results"]
    again = client.post("/v1/models/lm/generate", json={"n": 2, "seed": 3, "min_length": 1}).json()["results"]
    assert len(first) == 2 and first == again
    ranked = client.post("/v1/models/lm/rerank", json={"groups": [["the cat sat .", "cat the . sat"]]}).json()
    assert len(ranked["results"]) == 1


def test_rank_searches_the_repository_given_at_start(served, tiny_models):
    from rnnkit.serve.models import attach_responses

    attach_responses(served, f"ranker={tiny_models / 'rank-data'}")
    try:
        with TestClient(create_app(served)) as c:
            answer = c.post("/v1/models/ranker/rank", json={"context": "where is the cat ?", "top": 3}).json()
            assert c.get("/v1/models").json()["models"][1]["repository"] == len(served["ranker"].repository) > 3
        found = answer["results"]
        assert len(found) == 3 and all(r["text"] in served["ranker"].repository for r in found)
        assert [r["score"] for r in found] == sorted((r["score"] for r in found), reverse=True)
    finally:
        served["ranker"].repository = []


def test_chat_answers_from_the_repository(served, tiny_models):
    from rnnkit.rank.chat import plain
    from rnnkit.serve.models import attach_responses

    with TestClient(create_app(served)) as c:
        missing = c.post("/v1/models/ranker/chat", json={"turns": ["where is the cat ?"]})
        assert missing.status_code == 422 and "--responses ranker=DATA" in missing.json()["detail"]
    attach_responses(served, f"ranker={tiny_models / 'rank-data'}")
    try:
        with TestClient(create_app(served)) as c:
            answer = c.post("/v1/models/ranker/chat", json={"turns": ["hello", "hi there", "where is the cat ?"],
                                                            "top": 2}).json()["results"]
            empty = c.post("/v1/models/ranker/chat", json={"turns": ["hello", " "]})
            wrong = c.post("/v1/models/lm/chat", json={"turns": ["hello"]})
        assert len(answer) == 2 and all(r["text"] in served["ranker"].repository for r in answer)
        assert all(r["plain"] == plain(r["text"]) for r in answer) and answer[0]["score"] >= answer[1]["score"]
        assert empty.status_code == 422 and "empty turn" in empty.json()["detail"]
        assert wrong.status_code == 400 and "for ranker models" in wrong.json()["detail"]
    finally:
        served["ranker"].repository = []


def test_chat_reads_the_last_turns_and_keeps_the_cli_s_rule(served, tiny_models):
    """The page's 129th exchange once broke: it sent every turn so far, and the server refused more
    than --max-sentences though it read only the last four. The server reads the last REMEMBERED
    turns (the page sends no more), and, as the CLI's conversation does, never answers with what
    the bot said in them."""
    from rnnkit.rank.chat import REMEMBERED
    from rnnkit.serve.models import attach_responses

    page = (Path(rnnkit.__file__).parent / "serve" / "page.html").read_text(encoding="utf-8")
    assert f"const REMEMBERED = {REMEMBERED};" in page and ".slice(-REMEMBERED)" in page
    attach_responses(served, f"ranker={tiny_models / 'rank-data'}")
    try:
        with TestClient(create_app(served)) as c:
            turns = ["where is the cat ?"]
            for _ in range(130):  # the page's exchanges, each sending what it keeps
                answer = c.post("/v1/models/ranker/chat", json={"turns": turns[-REMEMBERED:]})
                assert answer.status_code == 200, answer.json()
                turns += [answer.json()["results"][0]["plain"], "and where is the cat ?"]
            said = [turns[i] for i in range(1, len(turns), 2)]
            window = REMEMBERED // 2  # the bot's turns a request holds: none repeated within them
            assert all(len(set(said[i:i + window])) == len(said[i:i + window]) for i in range(len(said)))
            many = c.post("/v1/models/ranker/chat", json={"turns": turns})  # 261 turns: the last 16 are read
            assert many.status_code == 200 and many.json()["results"][0]["plain"] not in turns[-REMEMBERED:]
    finally:
        served["ranker"].repository = []


def test_a_ranker_s_answers_and_tokens_count_against_the_limits(served, tiny_models):
    """``top`` is bounded like any count, a reranker's shortlist counts in the work budget, and a
    ranker's tokens are counted as it reads them (punctuation too, not whitespace words)."""
    from rnnkit.serve.models import attach_responses

    attach_responses(served, f"ranker={tiny_models / 'rank-data'}")
    try:
        with TestClient(create_app(served, limits=Limits(max_sentences=20, max_tokens=50))) as c:
            many = c.post("/v1/models/ranker/rank", json={"context": "where is the cat ?", "top": 15000})
            assert many.status_code == 422 and "--max-sentences" in many.json()["detail"]
            commas = c.post("/v1/models/ranker/chat", json={"turns": ["hi" + "," * 400]})
            assert commas.status_code == 422 and "--max-tokens" in commas.json()["detail"]
            top = c.post("/v1/models/ranker/rank", json={"context": "where is the cat ?", "top": 20})
            assert top.status_code == 200
    finally:
        served["ranker"].repository = []


def test_a_field_takes_its_own_json_type_and_a_body_is_utf8(served, tiny_models):
    """``"top": "3"`` and ``"top": true`` were coerced to 3 and 1, and a UTF-16 body answered 200
    though the docs promise 422 for bytes that are not UTF-8."""
    with TestClient(create_app(served)) as c:
        for body in ({"context": "a", "candidates": ["b", "c"], "top": "3"},
                     {"context": "a", "candidates": ["b", "c"], "top": True}):
            refused = c.post("/v1/models/ranker/rank", json=body)
            assert refused.status_code == 422 and refused.json()["detail"].startswith("top:"), refused.json()
        ok = c.post("/v1/models/ranker/rank", json={"context": "a", "candidates": ["b", "c"], "top": 1})
        assert ok.status_code == 200
        assert c.post("/v1/models/lm/generate", json={"temperature": 1}).status_code == 200  # 1 is a number
        for encoding in ("utf-16", "utf-16-le", "utf-32"):
            body = json.dumps({"sentences": ["a dog ."]}).encode(encoding)
            answer = c.post("/v1/models/lm/score", content=body, headers={"Content-Type": "application/json"})
            assert answer.status_code == 422 and "not a JSON document in UTF-8" in answer.json()["detail"], encoding


def test_rank_and_translate(client):
    ranked = client.post("/v1/models/ranker/rank", json={"context": "where is the cat ?",
                                                         "candidates": ["the cat is here .", "a dog ."]}).json()
    assert sorted(r["text"] for r in ranked["results"]) == ["a dog .", "the cat is here ."]
    missing = client.post("/v1/models/ranker/rank", json={"context": "where is the cat ?"})
    assert missing.status_code == 422 and "--responses ranker=DATA" in missing.json()["detail"]
    out = client.post("/v1/models/s2s/translate", json={"sources": ["the cat"], "attention": True}).json()
    result = out["results"][0]
    assert result["source"] == "the cat" and len(result["attention"]) == len(result["output_tokens"]) + 1


@pytest.mark.parametrize("path,body,status,words", [
    ("/v1/models/nope/score", {"sentences": ["a"]}, 404, "no model named 'nope'"),
    ("/v1/models/ranker/score", {"sentences": ["a"]}, 400, "ranker model"),
    ("/v1/models/lm/score", {"sentences": ["a ."] * 9}, 422, "--max-sentences"),
    ("/v1/models/lm/score", {"sentences": ["cat " * 31]}, 422, "--max-tokens"),
    ("/v1/models/lm/score", {"sentences": ["cat " * 6000]}, 413, "--max-body-bytes"),
    ("/v1/models/lm/generate", {"n": 5}, 422, "--max-generate"),
    ("/v1/models/lm/generate", {"max_length": 41}, 422, "--max-length"),
    ("/v1/models/lm/generate", {"temperature": 0}, 422, "temperature"),
    ("/v1/models/lm/score", {"sentence": ["a"]}, 422, "sentences: Field required"),
    ("/v1/models/s2s/translate", {"sources": [""]}, 422, "empty source"),
])
def test_limits_and_mistakes_get_a_status_and_one_line(client, path, body, status, words):
    response = client.post(path, json=body)
    assert response.status_code == status and words in response.json()["detail"], response.text
    assert "\n" not in response.json()["detail"]


def test_malformed_json_is_422(client):
    response = client.post("/v1/models/lm/score", content=b"{not json", headers={"Content-Type": "application/json"})
    assert response.status_code == 422


def test_metrics_count_requests_latency_and_batches(client):
    client.post("/v1/models/lm/score", json={"sentences": ["a dog ."]})
    text = client.get("/metrics").text
    assert 'rnnkit_requests_total{endpoint="score",status="200"}' in text
    assert "rnnkit_request_seconds_bucket" in text and "rnnkit_batch_sentences_count" in text
    assert 'rnnkit_errors_total{endpoint="score"}' in text


def test_requests_that_arrive_together_run_as_one_batch():
    calls = []

    def run(items):
        calls.append(list(items))
        return [item * 10 for item in items]

    async def main():
        from concurrent.futures import ThreadPoolExecutor

        batcher = Batcher(run, ThreadPoolExecutor(1), window_ms=50)
        return await asyncio.gather(*(batcher.submit([i, i + 100]) for i in range(5)))

    results = asyncio.run(main())
    assert results == [[i * 10, (i + 100) * 10] for i in range(5)]
    assert len(calls) == 1 and len(calls[0]) == 10  # one model call for five requests


def test_a_request_not_batched_by_its_deadline_is_dropped_from_the_queue():
    """One request's batch holds the model; another's deadline passes while it waits: 503, and its
    items never run."""
    from concurrent.futures import ThreadPoolExecutor

    from rnnkit.serve.limits import Deadline, DeadlineExceeded

    calls = []

    def run(items):
        calls.append(list(items))
        time.sleep(0.3)
        return items

    async def main():
        batcher = Batcher(run, ThreadPoolExecutor(1), window_ms=10)
        first = asyncio.create_task(batcher.submit([1, 2]))
        await asyncio.sleep(0.1)  # the first batch is running
        late = batcher.submit([3], Deadline.after(0.05))
        results = await asyncio.gather(first, late, return_exceptions=True)
        await asyncio.sleep(0.1)  # the worker has looked at the queue again
        return results

    first, late = asyncio.run(main())
    assert first == [1, 2] and isinstance(late, DeadlineExceeded) and calls == [[1, 2]]


@pytest.fixture
def server(tiny_models, request):
    """``rnnkit serve`` in a process of its own, on a free loopback port (extra flags: the test's param)."""
    with serving([f"lm={tiny_models / 'lm'}", "--engine", "numpy", *getattr(request, "param", [])]) as started:
        yield started


@pytest.fixture
def chat_server(tiny_models):
    """The server with the tiny ranker and its training responses as the repository."""
    with serving([f"ranker={tiny_models / 'ranker'}", "--responses", f"ranker={tiny_models / 'rank-data'}",
                  "--engine", "numpy"]) as started:
        yield started


def test_the_server_binds_loopback_says_so_and_stops_on_sigterm(server):
    url, process = server
    assert json.load(urllib.request.urlopen(url + "/health"))["status"] == "ok"
    process.terminate()
    assert process.wait(timeout=30) in (0, -15)  # uvicorn shuts down gracefully, then re-raises SIGTERM
    assert "loopback only" in process.stderr.read()


@pytest.mark.parametrize("server", [["--head-timeout", "1", "--max-connections", "8"]], indirect=True)
def test_slow_clients_are_dropped_and_open_connections_bounded(server):
    """5,000 connections sending a header line every 3 s stayed open for ever (5,009 descriptors):
    now a request's head must arrive within --head-timeout, and beyond --max-connections a new
    connection takes the place of the slowest client still sending its head."""
    import socket

    url, process = server
    port = int(url.rsplit(":", 1)[1])

    def slow() -> socket.socket:
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        s.sendall(b"POST /v1/models/lm/score HTTP/1.1\r\nHost: x\r\n")  # a head that never ends
        return s

    first = slow()
    started = time.monotonic()
    assert first.recv(1) == b""  # the server closed it ...
    assert 0.8 < time.monotonic() - started < 5  # ... after the head timeout of 1 s
    crowd = [slow() for _ in range(30)]
    time.sleep(0.3)
    descriptors = len(list(Path(f"/proc/{process.pid}/fd").iterdir()))
    assert descriptors <= 8 + 20, descriptors  # the connections allowed, and the server's own files
    assert json.load(urllib.request.urlopen(url + "/health", timeout=5))["status"] == "ok"  # answered meanwhile
    closed = 0
    for s in crowd:
        s.settimeout(5)
        try:
            closed += s.recv(1) == b""
        except OSError:
            closed += 1
        s.close()
    assert closed == len(crowd)  # every slow one dropped: by the cap, or the timeout at the latest
    kept_alive = socket.create_connection(("127.0.0.1", port), timeout=10)  # a normal client is not affected
    kept_alive.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
    assert kept_alive.recv(100).startswith(b"HTTP/1.1 200")
    kept_alive.close()


@pytest.mark.parametrize("server", [["--batch-window-ms", "1000"]], indirect=True)
def test_a_request_in_flight_finishes_when_the_server_is_told_to_stop(server):
    """A 1 s batching window (the most allowed) holds the request inside the server while SIGTERM arrives."""
    import threading

    url, process = server
    answer = {}

    def ask():
        request = urllib.request.Request(url + "/v1/models/lm/score", method="POST",
                                         data=json.dumps({"sentences": ["a dog ."]}).encode(),
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as response:
            answer["status"], answer["body"] = response.status, json.load(response)

    asker = threading.Thread(target=ask)
    asker.start()
    time.sleep(0.5)
    process.terminate()
    asker.join(timeout=30)
    assert answer.get("status") == 200 and answer["body"]["results"][0]["tokens"] == 4  # three words and the end
    assert process.wait(timeout=30) in (0, -15)


def _browser():
    """Headless Chromium through Selenium, or a skip where the machine has neither."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver_path = shutil.which("chromedriver")
    if not (chromium and driver_path):
        pytest.skip("no chromium and chromedriver here (Debian: apt-get install chromium chromium-driver)")
    webdriver = pytest.importorskip("selenium.webdriver")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1000,700"):
        options.add_argument(flag)
    return webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=driver_path))


def test_the_page_colours_each_token_in_a_real_browser(server):
    browser = _browser()
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    url, _ = server
    try:
        browser.get(url + "/")
        box = browser.find_element(By.ID, "sentence")
        box.clear()
        box.send_keys("the cat sat on a mat .")
        browser.find_element(By.ID, "score").click()
        spans = WebDriverWait(browser, 20).until(lambda b: b.find_elements(By.CSS_SELECTOR, "#tokens .tok"))
        shown = [(s.text, float(s.get_attribute("data-prob"))) for s in spans]
        ARTIFACTS.mkdir(exist_ok=True)
        browser.save_screenshot(str(ARTIFACTS / "serve-page.png"))
    finally:
        browser.quit()
    request = urllib.request.Request(url + "/v1/models/lm/score", method="POST",
                                     data=json.dumps({"sentences": ["the cat sat on a mat ."], "per_token": True}).encode(),
                                     headers={"Content-Type": "application/json"})
    expected = json.load(urllib.request.urlopen(request))["results"][0]["token_probs"]
    assert len(shown) == len(expected) == 8  # seven words and the sentence's end
    for (token, prob), e in zip(shown, expected):
        assert token == e["token"] and prob == pytest.approx(e["prob"], rel=1e-9)
    assert (ARTIFACTS / "serve-page.png").stat().st_size > 5_000


def test_the_page_chats_with_a_ranker_in_a_real_browser(chat_server, tiny_models):
    """Three turns typed on the page: three answers shown, each a response of the repository that
    repeats no turn before it, and each what /chat answers to the conversation so far and what
    ``rnnkit rank chat`` answers to the same turns: one set of rules."""
    from rnnkit.rank.chat import plain
    from rnnkit.rank.data import training_responses
    from rnnkit.rank.similar import repeats, word_sets

    browser = _browser()
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    url, _ = chat_server
    typed = ["where is the crown ?", "and the ring ?", "where is the crown ?"]
    try:
        browser.get(url + "/")
        WebDriverWait(browser, 20).until(lambda b: b.find_element(By.ID, "say").is_displayed())
        for n, turn in enumerate(typed, 1):
            browser.find_element(By.ID, "say").send_keys(turn)
            browser.find_element(By.ID, "send").click()
            WebDriverWait(browser, 20).until(lambda b: len(b.find_elements(By.CSS_SELECTOR, "#log .bot")) == n)
        you = [p.text for p in browser.find_elements(By.CSS_SELECTOR, "#log .you")]
        bot = [p.text for p in browser.find_elements(By.CSS_SELECTOR, "#log .bot")]
        ARTIFACTS.mkdir(exist_ok=True)
        browser.save_screenshot(str(ARTIFACTS / "serve-chat.png"))
    finally:
        browser.quit()
    assert you == typed and len(bot) == 3
    assert set(bot) <= {plain(r) for r in training_responses(tiny_models / "rank-data")}
    conversation = [t for pair in zip(typed, bot) for t in pair]
    assert not any(repeats(conversation[i], word_sets(conversation[:i])) for i in range(1, 6, 2))
    for n in range(3):
        request = urllib.request.Request(url + "/v1/models/ranker/chat", method="POST",
                                         data=json.dumps({"turns": conversation[:2 * n + 1]}).encode(),
                                         headers={"Content-Type": "application/json"})
        assert json.load(urllib.request.urlopen(request))["results"][0]["plain"] == bot[n]
    cli = subprocess.run([sys.executable, "-m", "rnnkit", "rank", "chat", str(tiny_models / "ranker"), "--responses",
                          str(tiny_models / "rank-data"), "--engine", "numpy"], input="\n".join(typed) + "\n",
                         capture_output=True, text=True, timeout=120)
    assert [json.loads(line)["answer"] for line in cli.stdout.splitlines()] == bot, cli.stderr


HOSTILE = [  # each was a 500 (or accepted and nonsense) before; each must be a 422 naming the field
    ("lm/score", {"sentences": ["\ud800"]}, "sentences"),
    ("lm/generate", {"prime": "\ud800 the"}, "prime"),
    ("s2s/translate", {"sources": ["a \ud800"]}, "sources"),
    ("ranker/rank", {"context": "\ud800", "candidates": ["a", "b"]}, "context"),
    ("ranker/chat", {"turns": ["\udfff"]}, "turns"),
    ("lm/generate", {"seed": -1}, "seed"),
    ("lm/generate", {"temperature": "Infinity"}, "temperature"),
    ("lm/generate", {"top_p": "NaN"}, "top_p"),
    ("lm/rerank", {"groups": [[]]}, "groups"),
    ("lm/generate", {"temprature": 0.5}, "temprature"),  # a misspelt field is refused, not ignored
]


@pytest.mark.parametrize("endpoint, body, field", HOSTILE, ids=[f"{e}-{list(b)[0]}" for e, b, _ in HOSTILE])
def test_hostile_values_are_422_naming_the_field(client, endpoint, body, field):
    # json.dumps writes a lone surrogate as its \u escape and "Infinity"/"NaN" as strings here; the
    # raw bytes below send them as a client would
    raw = json.dumps(body).replace('"Infinity"', "Infinity").replace('"NaN"', "NaN")
    response = client.post(f"/v1/models/{endpoint}", content=raw, headers={"Content-Type": "application/json"})
    assert response.status_code == 422, response.text
    assert field in response.json()["detail"]


def test_a_long_prime_is_bound_by_the_token_limit(client):
    response = client.post("/v1/models/lm/generate", json={"prime": "the cat " * 200})
    assert response.status_code == 422 and "--max-tokens" in response.json()["detail"]


def test_an_unexpected_error_is_a_counted_json_500_with_a_request_id(served, monkeypatch):
    def broken(*args, **kwargs):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(served["lm"].model, "generate", broken)
    with TestClient(create_app(served), raise_server_exceptions=False) as c:
        response = c.post("/v1/models/lm/generate", json={"n": 1})
        metrics = c.get("/metrics").text
    assert response.status_code == 500 and len(response.json()["request_id"]) == 12
    assert 'rnnkit_requests_total{endpoint="generate",status="500"} 1.0' in metrics


def test_a_body_over_the_limit_is_413_whatever_its_encoding_and_every_client_reads_it(server):
    """Chunked (no Content-Length) is counted as it streams; a client that sends its whole body
    before reading (urllib) reads the 413, not a reset connection."""
    import http.client
    import urllib.error

    url, _ = server
    port = int(url.rsplit(":", 1)[1])
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.putrequest("POST", "/v1/models/lm/score")
    conn.putheader("Content-Type", "application/json")
    conn.putheader("Transfer-Encoding", "chunked")
    conn.endheaders()
    chunk = b" " * 65536
    for _ in range(32):  # 2 MB against the default limit of 1 MiB
        conn.send(b"%x\r\n%s\r\n" % (len(chunk), chunk))
    conn.send(b"0\r\n\r\n")
    response = conn.getresponse()
    assert response.status == 413 and "--max-body-bytes" in json.loads(response.read())["detail"]
    conn.close()
    body = json.dumps({"sentences": ["a dog ."] * 200_000}).encode()  # about 2.4 MB, with its Content-Length
    request = urllib.request.Request(url + "/v1/models/lm/score", data=body, method="POST",
                                     headers={"Content-Type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=30)
    assert refused.value.code == 413 and "--max-body-bytes" in json.load(refused.value)["detail"]
    assert json.load(urllib.request.urlopen(url + "/health"))["status"] == "ok"


@pytest.mark.parametrize("body", [b'{"sentences": ["caf\xe9"]}', b"[" * 10_000], ids=["not UTF-8", "nested"])
def test_a_body_that_is_not_json_in_utf8_is_422(client, body):
    response = client.post("/v1/models/lm/score", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 422 and "UTF-8" in response.json()["detail"]


def test_one_model_s_long_request_does_not_hold_another_model(served, monkeypatch):
    """A translate that blocks its model's thread (until released) while another model scores."""
    import threading

    release, started = threading.Event(), threading.Event()
    decode = served["s2s"].model.decode

    def held(*args, **kwargs):
        started.set()
        release.wait(30)
        return decode(*args, **kwargs)

    monkeypatch.setattr(served["s2s"].model, "decode", held)
    with TestClient(create_app(served)) as c:
        slow = threading.Thread(target=lambda: c.post("/v1/models/s2s/translate", json={"sources": ["the cat"]}))
        slow.start()
        assert started.wait(30)
        scored = c.post("/v1/models/lm/score", json={"sentences": ["a dog ."]})
        answered_while_held = not release.is_set()
        release.set()
        slow.join(30)
    assert scored.status_code == 200 and answered_while_held


def test_every_request_s_work_is_bounded_by_one_budget(served):
    """Beam × source tokens (and attention cells) for translate, n × length for generate."""
    limits = Limits(max_work=600)
    with TestClient(create_app(served, limits=limits)) as c:
        sources = ["the cat sat on a mat"] * 8  # 20 characters each: 160 source tokens
        assert c.post("/v1/models/s2s/translate", json={"sources": sources, "beam": 2}).status_code == 200
        wide = c.post("/v1/models/s2s/translate", json={"sources": sources, "beam": 4})
        assert wide.status_code == 422 and "--max-work" in wide.json()["detail"] and "beam" in wide.json()["detail"]
        weights = c.post("/v1/models/s2s/translate", json={"sources": sources, "attention": True})
        assert weights.status_code == 422 and "attention" in weights.json()["detail"]
        many = c.post("/v1/models/lm/generate", json={"n": 7, "max_length": 100})
        assert many.status_code == 422 and "--max-work" in many.json()["detail"]


def test_a_request_past_its_deadline_is_503_and_frees_the_model_s_thread(served, monkeypatch):
    """Its work is split into calls on the model's thread; those not begun by the deadline are dropped."""
    calls, decode = [], served["s2s"].model.decode

    def slow(texts, **kwargs):
        calls.append(len(texts))
        time.sleep(0.4)
        return decode(texts, **kwargs)

    monkeypatch.setattr(served["s2s"].model, "decode", slow)
    with TestClient(create_app(served, limits=Limits(deadline_s=0.3))) as c:
        late = c.post("/v1/models/s2s/translate", json={"sources": ["the cat"] * 40})  # 3 calls of 16 at most
        assert late.status_code == 503 and "--deadline" in late.json()["detail"]
        assert calls == [16]  # the rest were dropped, not run
        assert c.post("/v1/models/lm/score", json={"sentences": ["a dog ."]}).status_code == 200
        assert 'status="503"' in c.get("/metrics").text


def test_a_score_request_past_its_deadline_is_503(served, monkeypatch):
    score = served["lm"].model.score

    def slow(*args, **kwargs):
        time.sleep(0.5)
        return score(*args, **kwargs)

    monkeypatch.setattr(served["lm"].model, "score", slow)
    with TestClient(create_app(served, limits=Limits(deadline_s=0.2))) as c:
        late = c.post("/v1/models/lm/score", json={"sentences": ["a dog ."]})
        assert late.status_code == 503 and "--deadline" in late.json()["detail"]
    with TestClient(create_app(served, limits=Limits(deadline_s=0.2), batch_window_ms=0)) as c:  # no batching
        assert c.post("/v1/models/lm/score", json={"sentences": ["a dog ."]}).status_code == 503


def test_the_api_docs_are_served_offline_or_not_at_all(served):
    with TestClient(create_app(served)) as c:
        page = c.get("/docs")
        assert page.status_code == 200 and "cdn" not in page.text.lower()
        scripts = [part.split('"')[0] for part in page.text.split('src="')[1:]]
        assert scripts and all(s.startswith("/") for s in scripts)  # from this server
        assert all(c.get(s).status_code == 200 for s in scripts)
        assert c.get("/redoc").status_code == 200
    with TestClient(create_app(served, docs=False)) as c:
        assert c.get("/docs").status_code == 404 and c.get("/redoc").status_code == 404
        assert c.get("/health").status_code == 200


def test_a_model_s_page_holds_its_card(served):
    with TestClient(create_app(served)) as c:
        page = c.get("/v1/models/s2s").json()
        assert page["kind"] == "seq2seq" and page["card"].startswith("# seq2seq\n")
        assert "## Results" in page["card"] and "valid_loss" in page["card"]
        assert c.get("/v1/models/nobody").status_code == 404
