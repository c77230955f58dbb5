"""The server against requests generated from its own OpenAPI schema (schemathesis, on
Hypothesis): every operation of every kind, with bodies that follow the schema and bodies that
break it; and, since a schema's generator mostly breaks several fields at once (the first is
refused, the rest untried), each field of each body alone, given any JSON value at all. No
request may get a 5xx or hang, and every refusal says what is wrong in a sentence.
``RNNKIT_FUZZ_EXAMPLES`` sets the examples per operation and mode (CI: 30; a longer run: more)."""

from __future__ import annotations

import json
import os
import signal

import pytest

pytest.importorskip("fastapi")
schemathesis = pytest.importorskip("schemathesis")

from fastapi.testclient import TestClient  # noqa: E402
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from rnnkit.serve import Limits, create_app, open_served  # noqa: E402

# Each endpoint asked of the model that answers it (a made-up name is a 404: tests/test_serve.py).
ANSWERS = {"score": "lm", "generate": "lm", "rerank": "lm", "rank": "ranker", "chat": "ranker", "translate": "s2s"}
EXAMPLES = int(os.environ.get("RNNKIT_FUZZ_EXAMPLES", "30"))
SENT = {"requests": 0}  # written to $RNNKIT_FUZZ_REPORT, where set (benchmarks/fuzz.py counts a longer run)
# A numerical warning (overflow, NaN) on the server is an error there, so a 500 here: found once, a
# temperature of 1e-300 sampled from NaN.
pytestmark = pytest.mark.filterwarnings("error::RuntimeWarning")
HANG_S = 120  # a test of this file still running after this long has hung: it fails


@pytest.fixture(autouse=True)
def no_hangs():
    def hung(signum, frame):
        raise TimeoutError(f"a request hung: no answer after {HANG_S} s")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(HANG_S * max(1, EXAMPLES // 30))
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


@pytest.fixture(scope="module")
def app(tiny_models):
    served = {name: open_served(f"{name}={tiny_models / kind}", engine="numpy")
              for name, kind in (("lm", "lm"), ("ranker", "ranker"), ("s2s", "seq2seq"))}
    served["ranker"].attach_responses(tiny_models / "rank-data")
    limits = Limits(max_body_bytes=50_000, max_sentences=16, max_tokens=60, max_generate=4, max_length=40,
                    max_work=2_000, deadline_s=20)
    return create_app(served, limits=limits, batch_window_ms=2)


@pytest.fixture(scope="module", autouse=True)
def report():
    yield
    if os.environ.get("RNNKIT_FUZZ_REPORT"):
        with open(os.environ["RNNKIT_FUZZ_REPORT"], "a", encoding="utf-8") as f:
            f.write(f"tests/test_serve_fuzz.py HTTP requests {SENT['requests']}\n")


@pytest.fixture(scope="module")
def schema(app):
    return schemathesis.openapi.from_asgi("/openapi.json", app)


def operations(schema) -> list:
    return [result.ok() for result in schema.get_all_operations()]


@pytest.mark.parametrize("mode", list(schemathesis.GenerationMode), ids=lambda m: m.value)
def test_no_generated_request_gets_a_5xx_or_hangs(schema, mode):
    seen = []
    for operation in operations(schema):
        if mode is schemathesis.GenerationMode.NEGATIVE and not list(operation.body):
            continue  # a GET without parameters: nothing to break

        endpoint = operation.path.rsplit("/", 1)[-1]
        pinned = {"path_parameters": {"name": ANSWERS[endpoint]}} if endpoint in ANSWERS else {}

        @given(case=operation.as_strategy(mode, **pinned))
        @settings(max_examples=EXAMPLES, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        def call(case):
            response = case.call()
            SENT["requests"] += 1
            seen.append(response.status_code)
            assert response.status_code < 500, (case.method, case.formatted_path, case.body,
                                                response.status_code, response.text[:300])
            if response.status_code >= 400:
                assert isinstance(response.json().get("detail"), str), response.text[:300]

        call()
    assert len(seen) >= EXAMPLES and any(s == (200 if mode.value == "positive" else 422) for s in seen)


# A valid body for each endpoint: the fuzz below changes one field of it at a time.
VALID = {"score": {"sentences": ["the cat sat ."]}, "generate": {"n": 1}, "rerank": {"groups": [["the cat .", "a dog ."]]},
         "rank": {"context": "the cat"}, "chat": {"turns": ["the cat"]}, "translate": {"sources": ["the cat"]}}
ANY_JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
                        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner,
                                                                                    max_size=3), max_leaves=6)


@pytest.mark.parametrize("endpoint", VALID)
def test_any_value_in_any_one_field_gets_no_5xx(app, endpoint):
    fields = app.openapi()["components"]["schemas"]
    body_schema = next(v for k, v in fields.items() if k.lower() == f"{endpoint}request")
    with TestClient(app, raise_server_exceptions=False) as client:
        assert client.post(f"/v1/models/{ANSWERS[endpoint]}/{endpoint}", json=VALID[endpoint]).status_code == 200

        for field in sorted(body_schema["properties"]):
            @given(value=ANY_JSON)
            @settings(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
            def call(value):
                body = {**VALID[endpoint], field: value}
                response = client.post(f"/v1/models/{ANSWERS[endpoint]}/{endpoint}",
                                       content=json.dumps(body), headers={"Content-Type": "application/json"})
                SENT["requests"] += 1
                assert response.status_code < 500, (body, response.status_code, response.text[:300])
                assert response.status_code == 200 or isinstance(response.json()["detail"], str)

            call()
