"""The worker's own web endpoints (Faust's web server, loopback only)."""

from __future__ import annotations

from faust import web
from prometheus_client import generate_latest

from streams.app import app


@app.page("/metrics")
async def metrics(self: web.View, request: web.Request) -> web.Response:
    """Prometheus counters: consumed, processed, duplicates, dead-lettered, sink rows."""
    return self.bytes(generate_latest(), content_type="text/plain; version=0.0.4")
