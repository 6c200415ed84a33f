"""The API's own Prometheus metrics: requests by route and status, latency, publishing."""

from __future__ import annotations

import time

from fastapi import APIRouter, FastAPI, Request
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.auth import ViewCaller
from api.problems import problem_responses

router = APIRouter(tags=["health"])

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


@router.get(
    "/metrics",
    response_class=Response,
    status_code=200,
    responses={
        200: {"content": {CONTENT_TYPE_LATEST.split(";")[0]: {"schema": {"type": "string"}}}},
        **problem_responses(),
    },
)
async def metrics(caller: ViewCaller, request: Request) -> Response:
    """Prometheus text exposition of the API process's metrics."""
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
