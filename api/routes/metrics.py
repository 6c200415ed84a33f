"""The API's own Prometheus metrics: requests by route and status, latency, publishing."""

from __future__ import annotations

from fastapi import APIRouter, Request
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.responses import Response

from api.auth import ViewCaller
from api.problems import problem_responses

router = APIRouter(tags=["health"])


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
