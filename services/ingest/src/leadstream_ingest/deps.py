"""FastAPI dependency aliases: the app's services and the request's context."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from leadstream_ingest.client_ip import client_ip
from leadstream_ingest.contacts import RequestContext
from leadstream_ingest.errors import Unavailable
from leadstream_ingest.services import Services


def get_services(request: Request) -> Services:
    services: Services | None = getattr(request.app.state, "services", None)
    if services is None:
        raise Unavailable("the service is starting", code="starting")
    return services


def request_context(request: Request, api_key_id: str | None) -> RequestContext:
    """What the events record about the request that submitted them."""
    services = get_services(request)
    headers = request.headers
    return RequestContext(
        request_id=request.state.request_id,
        api_key_id=api_key_id,
        ip_address=client_ip(request.scope, services.proxies),
        user_agent=(headers.get("user-agent") or "")[:1024] or None,
        referrer=(headers.get("referer") or "")[:2048] or None,
    )


ServicesDep = Annotated[Services, Depends(get_services)]
