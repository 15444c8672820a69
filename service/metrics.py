"""Prometheus metrics, one registry per app (so tests can build many apps in one process)."""

from __future__ import annotations

import time
from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from moderation.types import Decision

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)


class Metrics:
    def __init__(self) -> None:
        disable_created_metrics()  # *_created series double the output and no dashboard reads them
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "fluxwarden_requests", "HTTP requests by endpoint and status.", ["endpoint", "status"], registry=r
        )
        self.request_latency = Histogram(
            "fluxwarden_request_latency_seconds",
            "Wall time per HTTP request.",
            ["endpoint"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.decisions = Counter(
            "fluxwarden_decisions",
            "Decisions by stage, action and triggering category ('none' when nothing triggered).",
            ["stage", "action", "category"],
            registry=r,
        )
        self.stage_latency = Histogram(
            "fluxwarden_stage_latency_seconds",
            "Time spent per stage: prompt and image checks, generation.",
            ["stage"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.batch_size = Histogram(
            "fluxwarden_prompt_batch_size",
            "Prompts per micro-batch sent to the classifiers.",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128),
            registry=r,
        )
        self.queue_depth = Gauge(
            "fluxwarden_generation_queue_depth", "Generation requests waiting for the device.", registry=r
        )
        self.generation_running = Gauge(
            "fluxwarden_generation_running", "Generation requests running on the device (0 or 1).", registry=r
        )
        self.rejected = Counter(
            "fluxwarden_rejected", "Requests refused before any check, by reason.", ["reason"], registry=r
        )
        self.info = Gauge(
            "fluxwarden_info",
            "Served model and policy.",
            ["model", "tiny_random", "policy", "policy_sha256"],
            registry=r,
        )

    def record_decisions(self, decisions: Iterable[Decision]) -> None:
        for decision in decisions:
            for category in decision.categories or ("none",):
                self.decisions.labels(decision.stage.value, decision.action.value, category).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)


KNOWN_ENDPOINTS = frozenset(
    {
        "/v1/moderations",
        "/v1/images/generations",
        "/v1/check/prompt",
        "/v1/check/image",
        "/v1/policy",
        "/v1/models",
        "/healthz",
        "/readyz",
        "/metrics",
    }
)


class MetricsMiddleware:
    """Counts requests and times them; pure ASGI so that it costs microseconds per request."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        endpoint = path if path in KNOWN_ENDPOINTS else "other"
        status = 500
        start = time.perf_counter()

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            self.metrics.requests.labels(endpoint, str(status)).inc()
            self.metrics.request_latency.labels(endpoint).observe(time.perf_counter() - start)
