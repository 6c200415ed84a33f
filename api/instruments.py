"""The API's Prometheus instruments: requests and latency per route, events posted by
outcome, and the middleware that records them."""

from __future__ import annotations

import time

from fastapi import FastAPI
from prometheus_client import Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

REQUESTS = Counter(
    "ioc_api_requests_total", "HTTP requests answered", ["method", "route", "status"]
)


LATENCY = Histogram(
    "ioc_api_request_seconds", "Time to answer an HTTP request", ["method", "route"]
)


PUBLISHED = Counter("ioc_api_events_total", "Events posted to /v1/events by outcome", ["outcome"])


class MetricsMiddleware:
    """Counts every HTTP request by its route template (never the raw path, so the
    label set stays bounded) and status."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def record(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, record)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", "unmatched")
            REQUESTS.labels(scope["method"], template, str(status)).inc()
            LATENCY.labels(scope["method"], template).observe(time.perf_counter() - started)


def install_metrics(app: FastAPI) -> None:
    app.add_middleware(MetricsMiddleware)
