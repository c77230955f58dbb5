"""The server's Prometheus metrics (prometheus_client, one registry per app): requests by
endpoint and status, latency, batch sizes and errors."""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest


class Metrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("rnnkit_requests", "HTTP requests answered", ["endpoint", "status"],
                                registry=self.registry)
        self.errors = Counter("rnnkit_errors", "requests answered with a 4xx or 5xx status", ["endpoint"],
                              registry=self.registry)
        self.latency = Histogram("rnnkit_request_seconds", "time from request to response", ["endpoint"],
                                 buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
                                 registry=self.registry)
        self.batch_size = Histogram("rnnkit_batch_sentences", "sentences scored in one model call",
                                    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512), registry=self.registry)

    def observe(self, endpoint: str, status: int, seconds: float) -> None:
        self.requests.labels(endpoint, str(status)).inc()
        self.latency.labels(endpoint).observe(seconds)
        if status >= 400:
            self.errors.labels(endpoint).inc()

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
