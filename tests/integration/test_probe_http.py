"""Findings of the outside probe of the API (issue 16), checked on a real ``ioc api``:
``/docs`` served without a CDN, ``nosniff`` and ``no-store`` headers, and 405 answers
whose ``Allow`` names every method of the path."""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.utils.apikeys import KEYS, auth
from tests.utils.namespaces import Namespace
from tests.utils.services import start_api

PROBLEM = "application/problem+json"
#: Methods sent to every path; those it does not serve must answer 405.
PROBED = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


@pytest.fixture(scope="module")
def api_base(module_namespace: Namespace) -> Iterator[str]:
    """One ``ioc api`` for the module's tests; its base URL."""
    process, base = start_api(module_namespace, name="probe-api")
    yield base
    process.stop()


@pytest.fixture(scope="module")
def openapi(api_base: str) -> dict[str, Any]:
    """The OpenAPI document the API serves."""
    response = httpx.get(f"{api_base}/openapi.json")
    assert response.status_code == 200
    document: dict[str, Any] = response.json()
    return document


def concrete(template: str) -> str:
    """A path of the template, with a value no other template's literal segment has."""
    return re.sub(r"\{[^}]+\}", "probe-1", template)


# --- A: /docs on a closed network ------------------------------------------------------


def test_docs_page_names_no_other_host_and_its_files_come_from_the_api(api_base: str) -> None:
    response = httpx.get(f"{api_base}/docs")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    page = response.text
    # No absolute or scheme-relative URL at all: every reference is a path of this API.
    assert re.findall(r"(?:https?:)?//[\w.-]+", page) == []

    references = re.findall(r"<(?:script|link)\b[^>]*\b(?:src|href)=\"([^\"]+)\"", page)
    scripts = [r for r in references if r.endswith(".js")]
    styles = [r for r in references if r.endswith(".css")]
    assert scripts, page
    assert styles, page
    for reference in references:
        assert reference.startswith("/"), reference
        asset = httpx.get(f"{api_base}{reference}")
        assert asset.status_code == 200, reference
        assert asset.headers["x-content-type-options"] == "nosniff"
    for script in scripts:
        asset = httpx.get(f"{api_base}{script}")
        assert "javascript" in asset.headers["content-type"]
    assert "SwaggerUIBundle" in httpx.get(f"{api_base}{scripts[0]}").text
    for style in styles:
        assert httpx.get(f"{api_base}{style}").headers["content-type"].startswith("text/css")

    # The document Swagger UI loads is this API's own.
    document_url = re.search(r"url: '([^']+)'", page)
    assert document_url is not None
    assert document_url.group(1).startswith("/")
    assert httpx.get(f"{api_base}{document_url.group(1)}").json()["openapi"].startswith("3.")


def test_docs_policy_allows_its_own_origin_and_its_one_inline_script(api_base: str) -> None:
    response = httpx.get(f"{api_base}/docs")
    policy = response.headers["content-security-policy"]
    directives = {
        name: values
        for name, *values in (part.split() for part in policy.split(";") if part.strip())
    }
    inline = re.findall(r"<script>(.*?)</script>", response.text, re.DOTALL)
    assert len(inline) == 1
    digest = base64.b64encode(hashlib.sha256(inline[0].encode()).digest()).decode()
    assert directives["script-src"] == ["'self'", f"'sha256-{digest}'"]
    assert directives["default-src"] == ["'self'"]
    assert directives["connect-src"] == ["'self'"]
    assert directives["style-src"] == ["'self'"]
    assert directives["frame-ancestors"] == ["'none'"]
    # The page never sends the document's address to Swagger's online validator.
    assert '"validatorUrl": null' in response.text


def test_redoc_is_not_served(api_base: str) -> None:
    # ReDoc would load from a CDN; it is off rather than blank on a closed network.
    response = httpx.get(f"{api_base}/redoc")
    assert response.status_code == 404
    assert response.headers["content-type"] == PROBLEM


# --- B: nosniff and no-store -----------------------------------------------------------


def test_every_kind_of_answer_carries_nosniff(api_base: str) -> None:
    requests = [
        ("GET", "/healthz", {}),  # public JSON
        ("GET", "/v1/areas", {}),  # 401 problem
        ("GET", "/v1/areas", auth("view")),  # authenticated JSON
        ("GET", "/v1/nowhere", auth("view")),  # 404 problem
        ("DELETE", "/v1/areas", auth("view")),  # 405 problem
        ("GET", "/openapi.json", {}),
        ("GET", "/docs", {}),
        ("GET", "/", {}),
        ("GET", "/dashboard/app.js", {}),
    ]
    with httpx.Client(base_url=api_base) as client:
        for method, path, headers in requests:
            response = client.request(method, path, headers=headers)
            assert response.status_code < 500, (method, path, response.text)
            assert response.headers.get("x-content-type-options") == "nosniff", (method, path)


def test_authenticated_reads_and_problems_are_never_stored(
    api_base: str, openapi: dict[str, Any]
) -> None:
    reads = [
        path
        for path, operations in openapi["paths"].items()
        if "get" in operations and "{" not in path and path != "/v1/live/sse"
    ]
    assert "/v1/areas" in reads
    with httpx.Client(base_url=api_base) as client:
        for path in reads:
            response = client.get(path, headers=auth("view"))
            assert response.status_code < 500, (path, response.text)
            assert response.headers.get("cache-control") == "no-store", path
        # A bearer credential, and answers to no credential at all.
        bearer = {"Authorization": f"Bearer {KEYS['view']}"}
        answered = client.get("/v1/areas", headers=bearer)
        assert answered.status_code == 200
        assert answered.headers.get("cache-control") == "no-store"
        for path in ("/v1/areas", "/v1/overview"):
            refused = client.get(path)
            assert refused.status_code == 401
            assert refused.headers["content-type"] == PROBLEM
            assert refused.headers.get("cache-control") == "no-store"


def test_static_files_stay_cacheable_and_routes_keep_their_own_cache_control(
    api_base: str,
) -> None:
    with httpx.Client(base_url=api_base) as client:
        script = client.get("/dashboard/app.js")
        assert script.status_code == 200
        assert "cache-control" not in script.headers
        assert script.headers["etag"]
        swagger = client.get("/docs/assets/swagger-ui.css")
        assert swagger.status_code == 200
        assert "cache-control" not in swagger.headers
        # A file that is not there is a problem, and problems are not stored.
        missing = client.get("/dashboard/nothing-here.js")
        assert missing.status_code == 404
        assert missing.headers["content-type"] == PROBLEM
        assert missing.headers.get("cache-control") == "no-store"
        # The dashboard page sets no-cache itself (revalidate, the page changes with the code).
        assert client.get("/").headers.get("cache-control") == "no-cache"
        # The live feed sets its own too; the stream is answered, then dropped.
        with client.stream(
            "GET",
            "/v1/live/sse",
            params={"api_key": KEYS["view"]},
            headers={"Accept": "text/event-stream"},
        ) as stream:
            assert stream.status_code == 200
            assert stream.headers["content-type"].startswith("text/event-stream")
            assert stream.headers.get("cache-control") == "no-cache"
            assert stream.headers.get("x-content-type-options") == "nosniff"


# --- C: 405 answers name every method of the path ------------------------------------


def check_405(response: httpx.Response, allowed: set[str]) -> None:
    """A 405 problem whose Allow is exactly ``allowed``."""
    label = f"{response.request.method} {response.request.url.path}"
    assert response.status_code == 405, (label, response.status_code)
    assert response.headers["content-type"] == PROBLEM, label
    listed = {m.strip() for m in response.headers["allow"].split(",")}
    assert listed == allowed, label
    if response.request.method != "HEAD":
        assert response.json()["status"] == 405, label


def test_405_allow_lists_every_method_of_every_documented_path(
    api_base: str, openapi: dict[str, Any]
) -> None:
    # FastAPI's path operations answer exactly the methods the document gives them: a
    # GET path answers HEAD with 405 too, and its Allow does not name HEAD.
    several = [p for p, ops in openapi["paths"].items() if len(ops) > 1]
    assert several, "no path with several methods to probe"
    with httpx.Client(base_url=api_base) as client:
        for template, operations in openapi["paths"].items():
            allowed = {method.upper() for method in operations}
            for method in PROBED:
                if method in allowed:
                    continue
                response = client.request(method, concrete(template), headers=auth("view"))
                check_405(response, allowed)
        # The problem names the methods for people and programs too.
        problem = client.delete("/v1/recordings", headers=auth("view")).json()
        assert problem["allowed"] == ["GET", "POST"]
        assert "GET, POST" in problem["detail"]


def test_405_allow_of_routes_outside_the_document(api_base: str) -> None:
    with httpx.Client(base_url=api_base) as client:
        # Starlette's own route and the static files answer HEAD with GET.
        check_405(client.delete("/openapi.json"), {"GET", "HEAD"})
        check_405(client.post("/dashboard/app.js"), {"GET", "HEAD"})
        check_405(client.put("/docs/assets/swagger-ui.css"), {"GET", "HEAD"})
        check_405(client.post("/docs"), {"GET"})
        check_405(client.post("/"), {"GET"})
