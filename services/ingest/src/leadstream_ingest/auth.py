"""API-key authentication and scope checks, as FastAPI dependencies.

``Authorization: Bearer <token>``; the token is looked up by its hash. 401 when it is
missing, unknown or revoked; 403 when the key lacks the scope. The key id (never the token)
is put on the request state for the request log.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from leadstream.db.api_keys import ADMIN
from leadstream_ingest.deps import get_services
from leadstream_ingest.errors import Forbidden, Unauthenticated

bearer = HTTPBearer(
    auto_error=False,
    scheme_name="ApiKey",
    description="An API key from `leadstream keys create`: `Authorization: Bearer lsk_…`.",
)


@dataclass(frozen=True, slots=True)
class Principal:
    """The API key a request is made with."""

    key_id: str
    name: str
    scopes: tuple[str, ...]

    @property
    def is_admin(self) -> bool:
        return ADMIN in self.scopes

    def may_see(self, owner_key_id: str | None) -> bool:
        """Object-level authorization: an object is visible to its key and to admins."""
        return self.is_admin or owner_key_id == self.key_id


def require(scope: str) -> Callable[..., Awaitable[Principal]]:
    async def authenticate(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> Principal:
        if credentials is None:
            raise Unauthenticated(
                "missing API key: send Authorization: Bearer <key>", code="missing_api_key"
            )
        services = get_services(request)
        token = credentials.credentials
        key = services.key_cache.get(token)
        if key is None:
            key = await run_in_threadpool(services.keys.lookup, token)
            if key is not None:
                services.key_cache.put(token, key)
        if key is None:
            raise Unauthenticated("invalid API key", code="invalid_api_key")
        request.state.api_key_id = key.key_id
        if key.revoked:
            raise Unauthenticated("this API key has been revoked", code="revoked_api_key")
        if not key.allows(scope):
            raise Forbidden(f"this API key lacks the {scope!r} scope", code="missing_scope")
        return Principal(key.key_id, key.name, key.scopes)

    authenticate.__name__ = f"require_{scope}"
    return authenticate


IngestKey = Annotated[Principal, Depends(require("ingest"))]
AdminKey = Annotated[Principal, Depends(require("admin"))]
