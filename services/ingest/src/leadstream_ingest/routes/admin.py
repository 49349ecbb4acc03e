"""Admin-only routes (scope ``admin``): the API keys, never their tokens."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from leadstream_ingest.auth import AdminKey
from leadstream_ingest.deps import ServicesDep

router = APIRouter(prefix="/v1/admin", tags=["admin"])


class ApiKeyOut(BaseModel):
    key_id: str
    name: str
    scopes: list[str]
    created_at: datetime
    revoked_at: datetime | None


class ApiKeyList(BaseModel):
    keys: list[ApiKeyOut]


@router.get(
    "/api-keys",
    response_model=ApiKeyList,
    responses={401: {"description": "No valid key"}, 403: {"description": "Not an admin key"}},
    summary="List API keys (admin)",
)
async def list_api_keys(principal: AdminKey, services: ServicesDep) -> ApiKeyList:
    """Ids, names, scopes and state; tokens are never stored, so never shown."""
    keys = await run_in_threadpool(services.keys.list)
    return ApiKeyList(
        keys=[
            ApiKeyOut(
                key_id=k.key_id,
                name=k.name,
                scopes=list(k.scopes),
                created_at=k.created_at,
                revoked_at=k.revoked_at,
            )
            for k in keys
        ]
    )
