"""The curriculum page at ``/``: the caller's runs and their curves, live.

A static page and its script, served from the package with a vendored chart library (uPlot,
MIT, ``static/uPlot.LICENSE``): nothing to build, nothing from a CDN. The page holds no data
of its own: its script reads ``GET /v1/runs`` and each run's ``/history`` with the key the
user types in (none on the local no-auth default), so it sees exactly what that key may see
through the API. The Content-Security-Policy keeps every request on this origin.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

STATIC = Path(__file__).resolve().parents[1] / "static"
ASSETS = "/ui/assets"
# Only this origin: scripts, styles, fetches. uPlot sets styles through the DOM (allowed);
# 'unsafe-inline' styles are not needed.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
router = APIRouter(include_in_schema=False)


@router.get("/")
async def curriculum_page() -> HTMLResponse:
    """The page; its data comes from the API, under the caller's key."""
    html = (STATIC / "index.html").read_text(encoding="utf-8")
    return HTMLResponse(html, headers={"Content-Security-Policy": CSP, "Cache-Control": "no-cache"})


def install_page(app: FastAPI) -> None:
    """Serve ``/`` and its assets from the package's ``static`` folder."""
    app.mount(ASSETS, StaticFiles(directory=STATIC), name="page-assets")
    app.include_router(router)
