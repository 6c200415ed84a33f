"""The operations-centre dashboard: a static page served at ``/``, its files under ``/dashboard``.

The page and its scripts are public (they hold no data); every call the page makes for
data carries the operator's API key, so access stays deny-by-default where it matters.
Plain ES modules and CSS, no build step: what is in ``static/`` is what the browser gets.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

STATIC_DIR = Path(__file__).parent / "static"

#: The page loads only its own files and talks only to this API: no CDN, no tiles, no fonts.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; connect-src 'self'; img-src 'self' data:; "
    "style-src 'self'; script-src 'self'; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'"
)
HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    # The page changes with the code; the browser must not keep an old copy.
    "Cache-Control": "no-cache",
}

router = APIRouter(include_in_schema=False)


@router.get("/")
async def dashboard_page() -> FileResponse:
    """The dashboard page (no key needed to load it; its data calls need one)."""
    return FileResponse(STATIC_DIR / "index.html", media_type="text/html", headers=HEADERS)


def install_dashboard(app: FastAPI) -> None:
    """Serve the page at ``/`` and its scripts and styles under ``/dashboard``."""
    app.include_router(router)
    app.mount("/dashboard", StaticFiles(directory=STATIC_DIR), name="dashboard")
