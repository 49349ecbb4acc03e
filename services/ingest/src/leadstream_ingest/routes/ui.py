"""The pipeline status page: ``GET /ui`` (static HTML, script and style, no data in them) and
its data, ``GET /v1/status`` (JSON, polled by the page).

``/v1/status`` wants an API key with the ``ingest`` scope, which sees the stages and its own
jobs (an admin key: every job). With ``LEADSTREAM_STATUS_PUBLIC=true`` it also answers
without a key: the stages and every job, counts only (no names, no error texts). The page
asks for a key when the endpoint answers 401 and keeps it in the tab's ``sessionStorage``.

The page runs under its own Content-Security-Policy (scripts, styles and fetches from this
origin only, no inline code), which :class:`~leadstream_ingest.security.SecurityHeadersMiddleware`
leaves as set.
"""

from __future__ import annotations

from functools import cache
from importlib.resources import files
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from fastapi.security import HTTPAuthorizationCredentials

from leadstream_ingest.auth import Principal, bearer, require
from leadstream_ingest.deps import get_services
from leadstream_ingest.status_view import StatusOut

router = APIRouter()
PAGE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
ASSETS = {
    "index.html": "text/html; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
}
_authenticate = require("ingest")


@cache
def _asset(name: str) -> bytes:
    return files("leadstream_ingest").joinpath("static", name).read_bytes()


def _serve(name: str) -> Response:
    headers = {"Cache-Control": "no-cache"}
    if name == "index.html":
        headers["Content-Security-Policy"] = PAGE_CSP
    return Response(_asset(name), media_type=ASSETS[name], headers=headers)


@router.get("/ui", include_in_schema=False)
async def page() -> Response:
    return _serve("index.html")


@router.get("/ui/app.js", include_in_schema=False)
async def script() -> Response:
    return _serve("app.js")


@router.get("/ui/style.css", include_in_schema=False)
async def style() -> Response:
    return _serve("style.css")


async def status_viewer(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal | None:
    """The caller's key (scope ``ingest``), or None for an anonymous caller when the status
    is public. A key that is sent is checked even then (a wrong key is still 401)."""
    if credentials is None and get_services(request).settings.status_public:
        return None
    return await _authenticate(request, credentials)


Viewer = Annotated[Principal | None, Depends(status_viewer)]


@router.get(
    "/v1/status",
    response_model=StatusOut,
    tags=["operations"],
    summary="Pipeline status: stages and jobs (the /ui page's data)",
    responses={
        401: {"description": "No valid key (and the status is not public)"},
        403: {"description": "The key lacks the ingest scope"},
    },
)
async def status(request: Request, viewer: Viewer) -> StatusOut:
    """Per stage (from Kafka, refreshed at most once a second for every caller): consumer
    group state, instances, lag, records/s in (committed) and out (appended to the topics it
    writes), dead letters. Per job (running ones first, then the newest): status, phase,
    processed of expected, progress, rate, elapsed, ETA. A key sees its own jobs, an admin
    key and an anonymous caller every job; an anonymous caller gets no names or errors."""
    services = get_services(request)
    owner = None if viewer is None or viewer.is_admin else viewer.key_id
    return await services.status.view(owner, anonymous=viewer is None)
