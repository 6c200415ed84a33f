"""405 answers whose ``Allow`` names every method of the path (RFC 9110, section 15.5.6).

The router answers 405 from the first route whose path matched, so a path served by
several route functions (``GET`` and ``POST /v1/recordings``) named one method only. Here
the router itself is asked, for each method, whether it would route the request: the
``Allow`` list is what routing does, whatever way the routes were declared.

FastAPI's path operations answer the methods they declare (no ``HEAD`` for a ``GET``);
Starlette's routes (``/openapi.json``) and static files answer ``HEAD`` with ``GET``.
"""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import FastAPI, Request
from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.routing import BaseRoute, Match, Mount
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from api.problems import ProblemResponse, problem_body

#: The methods asked about, in the order ``Allow`` lists them.
METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
#: What a static-files mount answers (it matches every method, then refuses the others).
STATIC_METHODS = frozenset({"GET", "HEAD"})


def _routes_method(routes: Sequence[BaseRoute], path: str, root_path: str, method: str) -> bool:
    """Whether the router would route ``method`` on ``path`` to a handler of it."""
    probe: Scope = {
        "type": "http",
        "method": method,
        "path": path,
        "root_path": root_path,
        "headers": [],
        "query_string": b"",
    }
    for route in routes:
        match, _ = route.matches(dict(probe))
        if match is Match.FULL:
            if isinstance(route, Mount) and isinstance(route.app, StaticFiles):
                return method in STATIC_METHODS
            return True
    return False


def allowed_methods(routes: Sequence[BaseRoute], scope: Scope) -> list[str]:
    """The methods the routes answer on the request's path."""
    # A mount rewrites the scope's root_path on the way in; the app's own is kept aside.
    root_path = str(scope.get("app_root_path", scope.get("root_path", "")))
    path = str(scope["path"])
    return [m for m in METHODS if _routes_method(routes, path, root_path, m)]


def install_method_answers(app: FastAPI) -> None:
    """Answer every 405 of ``app`` with a problem whose ``Allow`` lists the path's methods."""

    async def method_not_allowed(request: Request, exc: Exception) -> Response:
        allowed = allowed_methods(app.router.routes, request.scope)
        if not allowed and isinstance(exc, HTTPException) and exc.headers:
            allowed = [m.strip() for m in exc.headers.get("Allow", "").split(",") if m.strip()]
        methods = ", ".join(allowed)
        body = problem_body(
            status=405,
            slug="method-not-allowed",
            title="Method not allowed",
            detail=f"{request.url.path} answers {methods or 'no method'}, not {request.method}",
            instance=request.url.path,
            allowed=allowed,
        )
        return ProblemResponse(body, status_code=405, headers={"Allow": methods})

    app.add_exception_handler(405, method_not_allowed)
