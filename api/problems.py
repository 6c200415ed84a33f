"""Errors as RFC 9457 problem details (``application/problem+json``), never a stack trace."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

log = logging.getLogger(__name__)

PROBLEM_TYPE_BASE = "https://ioc.quangninh.example/problems/"


class ProblemDetails(BaseModel):
    """An RFC 9457 problem: what went wrong, for people (title, detail) and programs (type)."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(examples=[PROBLEM_TYPE_BASE + "unknown-entity"])
    title: str = Field(examples=["Unknown entity"])
    status: int = Field(examples=[404])
    detail: str = Field(examples=["no traffic entity 'qn-ix-nowhere'"])
    instance: str = Field(examples=["/v1/traffic/entities/qn-ix-nowhere"])


_DESCRIPTIONS = {
    400: "A NUL character in the URL, or (series) more points than allowed",
    401: "No valid API key or token",
    403: "The key lacks the scope",
    404: "Not found",
    409: "Conflicts with the resource's state",
    413: "Request body too large",
    415: "Unsupported media type",
    422: "Invalid parameters, or a body that is not JSON or does not fit",
    429: "Over the key's rate limit (see Retry-After)",
    503: "A backing service is unreachable (see Retry-After)",
}


def document_response(kind: str) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entry for a route whose answer is a standard document (a JSON
    Schema, an AsyncAPI document): its format is that standard's, not a model of ours."""
    return {200: {"description": f"{kind} document, as that standard defines it"}}


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for routes that answer these statuses with problems; every
    route may also answer 400 (a NUL in the URL, ``api.inputs``), 401, 403, 413, 422
    and 429."""
    every = {400, 401, 403, 413, 422, 429, *statuses}
    schema = ProblemDetails.model_json_schema()
    return {
        status: {
            "description": _DESCRIPTIONS[status],
            "content": {"application/problem+json": {"schema": schema}},
        }
        for status in sorted(every)
    }


class ProblemResponse(Response):
    """A problem+json body rendered with orjson."""

    media_type = "application/problem+json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


class Problem(Exception):
    """Raise from a route to answer with a specific problem."""

    def __init__(
        self,
        status: int,
        slug: str,
        title: str,
        detail: str,
        *,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.status, self.slug, self.title, self.detail, self.extra = (
            status,
            slug,
            title,
            detail,
            extra,
        )
        self.headers = headers or {}


def malformed_json(detail: str) -> Problem:
    """The problem for a request body that is not JSON: 422, as FastAPI answers a body
    whose JSON does not fit its model."""
    return Problem(422, "malformed-json", "Malformed JSON", detail)


def _unparsable_body(exc: StarletteHTTPException) -> str | None:
    """Why FastAPI could not read a JSON body, when ``exc`` is its bare 400 for that.

    FastAPI turns a JSON syntax error into a validation error (422) but anything else
    that stops the decoder (bytes that are not UTF-8, nesting past Python's recursion
    limit) into a 400 raised from that error.
    """
    cause = exc.__cause__
    if exc.status_code != 400:
        return None
    if isinstance(cause, UnicodeDecodeError):
        return f"the body is not UTF-8 JSON: {cause.reason} at byte {cause.start}"
    if isinstance(cause, RecursionError):
        return "the body is not JSON this API reads: it nests too deeply"
    return None


def problem_body(
    *, status: int, slug: str, title: str, detail: str, instance: str, **extra: Any
) -> dict[str, Any]:
    """The JSON object of one problem."""
    return {
        "type": PROBLEM_TYPE_BASE + slug,
        "title": title,
        "status": status,
        "detail": detail,
        "instance": instance,
        **extra,
    }


def validation_problem(raw_errors: Sequence[Any], path: str) -> dict[str, Any]:
    """The 422 problem of a request whose parameters or body failed validation."""
    errors = [
        {"loc": [str(p) for p in e["loc"]], "msg": e["msg"], "type": e["type"]} for e in raw_errors
    ]
    first = errors[0] if errors else {"loc": [], "msg": "invalid request"}
    if first.get("type") == "json_invalid":
        # FastAPI's JSON syntax error: ``loc`` is ("body", character), ``ctx`` says why.
        why = raw_errors[0].get("ctx", {}).get("error", "invalid JSON")
        at = first["loc"][-1]
        detail = f"the body is not JSON: {why} at character {at}"
        slug, title = "malformed-json", "Malformed JSON"
    else:
        detail = f"{'.'.join(first['loc'])}: {first['msg']}"
        slug, title = "invalid-request", "Invalid request"
    return problem_body(
        status=422, slug=slug, title=title, detail=detail, instance=path, errors=errors
    )


def install_problem_handlers(app: FastAPI) -> None:
    """Route every error the app can raise to a problem+json response."""

    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem) -> Response:
        body = problem_body(
            status=exc.status,
            slug=exc.slug,
            title=exc.title,
            detail=exc.detail,
            instance=request.url.path,
            **exc.extra,
        )
        return ProblemResponse(body, status_code=exc.status, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        return ProblemResponse(validation_problem(exc.errors(), request.url.path), status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        unparsable = _unparsable_body(exc)
        if unparsable is not None:
            return await _problem(request, malformed_json(unparsable))
        body = problem_body(
            status=exc.status_code,
            slug=f"http-{exc.status_code}",
            title=str(exc.detail),
            detail=str(exc.detail),
            instance=request.url.path,
        )
        return ProblemResponse(body, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s", request.url.path)
        body = problem_body(
            status=500,
            slug="internal",
            title="Internal error",
            detail="The server failed to answer; the error is logged.",
            instance=request.url.path,
        )
        # Starlette sends this answer from outside every middleware (api.headers too).
        headers = {"X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"}
        return ProblemResponse(body, status_code=500, headers=headers)
