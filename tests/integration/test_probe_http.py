"""Findings of the outside probe of the API (issue 16), checked on a real ``ioc api``:
``/docs`` served without a CDN."""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import Namespace
from tests.integration.conftest import start_api

PROBLEM = "application/problem+json"


@pytest.fixture(scope="module")
def api_base(module_namespace: Namespace) -> Iterator[str]:
    """One ``ioc api`` for the module's tests; its base URL."""
    process, base = start_api(module_namespace, name="probe-api")
    yield base
    process.stop()


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
