"""The interactive API documentation at ``/docs``, served whole by this process.

An operations centre runs on a closed network: FastAPI's own ``/docs`` loads Swagger UI
from a public CDN and stays blank there. Swagger UI's files come from the
``fastapi-offline`` package instead and are served under ``/docs/assets``. ReDoc is off:
one documentation page is enough, and ReDoc needs inline styles and blob workers that the
page's policy would have to allow.
"""

from __future__ import annotations

import base64
import hashlib
import re
from importlib.resources import files
from pathlib import Path

from fastapi import APIRouter, FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

#: Where Swagger UI's script, stylesheet and icon are served.
ASSETS_PATH = "/docs/assets"
ASSETS_DIR = Path(str(files("fastapi_offline") / "static"))
ASSETS = ("swagger-ui-bundle.js", "swagger-ui.css", "favicon.png")

#: Swagger UI's options on top of FastAPI's defaults. No online validator: its badge
#: (in Swagger UI's standalone layout) sends the document's address to
#: validator.swagger.io from any host but localhost; off, whatever layout is chosen.
SWAGGER_UI_PARAMETERS = {"validatorUrl": None}

_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)


def content_security_policy(html: str) -> str:
    """The page's policy: its own origin only, plus the one inline script that starts
    Swagger UI, allowed by its hash so that no other inline script can run."""
    hashes = " ".join(
        "'sha256-" + base64.b64encode(hashlib.sha256(body.encode()).digest()).decode() + "'"
        for body in _INLINE_SCRIPT.findall(html)
    )
    return (
        "default-src 'self'; connect-src 'self'; img-src 'self' data:; "
        f"style-src 'self'; script-src 'self' {hashes}; object-src 'none'; "
        "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    )


router = APIRouter(include_in_schema=False)


@router.get("/docs")
async def swagger_ui(request: Request) -> HTMLResponse:
    """Swagger UI for the OpenAPI document, with its files from this API."""
    root = request.scope.get("root_path", "")
    openapi_url = request.app.openapi_url or "/openapi.json"
    page = get_swagger_ui_html(
        openapi_url=f"{root}{openapi_url}",
        title=f"{request.app.title} - Swagger UI",
        swagger_js_url=f"{root}{ASSETS_PATH}/swagger-ui-bundle.js",
        swagger_css_url=f"{root}{ASSETS_PATH}/swagger-ui.css",
        swagger_favicon_url=f"{root}{ASSETS_PATH}/favicon.png",
        swagger_ui_parameters=SWAGGER_UI_PARAMETERS,
    )
    html = bytes(page.body).decode()
    return HTMLResponse(
        html,
        headers={
            "Content-Security-Policy": content_security_policy(html),
            "Referrer-Policy": "no-referrer",
        },
    )


def install_docs(app: FastAPI) -> None:
    """Serve ``/docs`` and its files; the app must be built with ``docs_url=None`` and
    ``redoc_url=None`` so that FastAPI's CDN pages are not routed first."""
    missing = [name for name in ASSETS if not (ASSETS_DIR / name).is_file()]
    if missing:
        raise RuntimeError(f"fastapi-offline ships no {', '.join(missing)} in {ASSETS_DIR}")
    app.include_router(router)
    app.mount(ASSETS_PATH, StaticFiles(directory=ASSETS_DIR), name="docs-assets")
