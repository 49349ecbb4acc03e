"""Entrypoint of the ingest service: the app factory and ``leadstream-ingest`` (wiring only).

Extending the app takes one line each in :func:`create_app`: a router in :data:`ROUTERS`
(or ``app.include_router``), a middleware with ``app.add_middleware`` *before* the
request-context line (so it runs inside it: its responses still get a request id, a log
event and metrics). Routes are authenticated per route (``auth.IngestKey``/``AdminKey``);
a public route simply does not depend on them.

``POST /v1/registrations`` and its CORS preflight do not go through that stack: the fast
path (``fast_registrations.py``, run by :class:`IngestAPI` in front of FastAPI) answers them
with the same behaviour by calling the same parts. A new middleware, or a change to what a
middleware does, must be reflected there too (``tests/integration/
test_registrations_fastpath.py`` compares the two paths).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

import uvicorn
from fastapi import APIRouter, FastAPI
from starlette.types import Receive, Scope, Send

from leadstream_ingest.body_limit import BodyLimitMiddleware, body_limit_options
from leadstream_ingest.config import IngestSettings
from leadstream_ingest.fast_registrations import RegistrationFastPath
from leadstream_ingest.problems import install_error_handlers
from leadstream_ingest.registrations import router as registrations_router
from leadstream_ingest.request_context import RequestContextMiddleware
from leadstream_ingest.routes import (
    admin,
    campaigns,
    contacts,
    health,
    jobs,
    replay,
    ui,
    uploads,
    webhooks,
)
from leadstream_ingest.security import (
    REGISTRATIONS_PATH,
    RegistrationCorsMiddleware,
    SecurityHeadersMiddleware,
)
from leadstream_ingest.services import JobStatesFactory, Services

# Routes are matched in this order, one pattern at a time: the public high-volume routes go
# first (a registration used to walk every other route before its own).
ROUTERS: tuple[APIRouter, ...] = (
    registrations_router,
    webhooks.router,
    health.router,
    contacts.router,
    uploads.router,
    jobs.router,
    admin.router,
    campaigns.router,
    replay.router,
    ui.router,
)

DESCRIPTION = """
The LeadStream ingest API: contacts as JSON (one, or a batch of up to 1,000), CSV uploads
(streamed), job progress, the Email Bison webhook receiver, and the pipeline status
(`GET /v1/status`, shown as a page at `/ui`).

Authenticate with an API key (`leadstream keys create`): `Authorization: Bearer lsk_…`.
A 202 means the broker acknowledged every event. Errors are
`{"error": <code>, "reason": <text>, "request_id": <id>}`.
"""


class IngestAPI(FastAPI):
    """FastAPI with one layer in front of it: ``POST /v1/registrations`` and its CORS
    preflight are answered by :class:`RegistrationFastPath` (the same answers, events and
    metrics as the route behind the middleware stack, without its per-request machinery;
    ``registration_fast_path = False`` turns it off). Everything else, and whatever the fast
    path hands over, goes through FastAPI as usual."""

    registration_fast_path: bool = False
    ingest_settings: IngestSettings
    _fast_path: RegistrationFastPath | None = None

    @property
    def fast_path(self) -> RegistrationFastPath | None:
        """The fast path (made on first use, like the middleware stack), or None when off."""
        if not self.registration_fast_path:
            return None
        if self._fast_path is None:
            self._fast_path = RegistrationFastPath(
                self, self.ingest_settings, functools.partial(FastAPI.__call__, self)
            )
        return self._fast_path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            self.registration_fast_path
            and scope["type"] == "http"
            and scope["path"] == REGISTRATIONS_PATH
        ):
            fast = self.fast_path
            assert fast is not None
            await fast(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


def create_app(
    settings: IngestSettings,
    *,
    services: Services | None = None,
    job_states: JobStatesFactory | None = None,
    routers: Sequence[APIRouter] = (),
) -> IngestAPI:
    """The ingest ASGI app. ``services`` (tests) is used as given and not closed; otherwise
    they are built on startup and closed on shutdown."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = services is None
        built = services or Services.build(settings, job_states=job_states)
        app.state.services = built
        built.start_housekeeping()
        try:
            yield
        finally:
            app.state.services = None
            if owned:
                await built.aclose()

    app = IngestAPI(
        title="LeadStream ingest API",
        version="1",
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url="/docs",
        redoc_url=None,
        telemetry=None
        if settings.opentelemetry
        else {"tracing": False, "metrics": False, "logs": False, "operation_spans": False},
    )
    app.ingest_settings = settings
    app.state.services = services
    for router in (*ROUTERS, *routers):
        app.include_router(router)
    install_error_handlers(app)
    # Middleware: the last added runs first (outermost).
    app.add_middleware(BodyLimitMiddleware, **body_limit_options(settings))
    app.add_middleware(RegistrationCorsMiddleware, settings=settings)
    app.add_middleware(SecurityHeadersMiddleware, settings=settings)
    app.add_middleware(RequestContextMiddleware, services=lambda: app.state.services)
    app.registration_fast_path = settings.registration_fast_path
    return app


def main() -> None:
    """Run the ingest API (``leadstream-ingest``) on http_host:http_port."""
    settings = IngestSettings()
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    uvicorn.run(
        create_app(settings),
        host=settings.http_host,
        port=settings.http_port,
        log_level=settings.log_level.lower(),
        proxy_headers=False,  # X-Forwarded-For is read only from trusted_proxies (client_ip)
        server_header=False,
    )
