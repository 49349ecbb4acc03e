"""``/healthz`` (the process serves), ``/readyz`` (its dependencies answer), ``/metrics``."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import sqlalchemy as sa
from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from leadstream_ingest.deps import get_services
from leadstream_ingest.services import Services

router = APIRouter(tags=["operations"])
CHECK_TIMEOUT_S = 3.0


@router.get("/healthz", summary="Liveness")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


def _postgres(services: Services) -> None:
    with services.engine.connect() as conn:
        conn.execute(sa.text("SELECT 1"))


async def _check(name: str, probe: Callable[[], Awaitable[Any]]) -> tuple[str, dict[str, Any]]:
    began = time.perf_counter()
    try:
        await asyncio.wait_for(probe(), CHECK_TIMEOUT_S)
        ok, error = True, None
    except Exception as exc:  # a readiness probe reports, it does not raise
        ok, error = False, type(exc).__name__
    took = round((time.perf_counter() - began) * 1000, 1)
    return name, {"ok": ok, "ms": took, **({"error": error} if error else {})}


@router.get("/readyz", summary="Readiness: Kafka, PostgreSQL, Redis, schema registry")
async def readyz(request: Request) -> JSONResponse:
    services = get_services(request)
    checks = dict(
        await asyncio.gather(
            _check("kafka", lambda: asyncio.to_thread(services.producer.ping, 2.0)),
            _check("postgres", lambda: asyncio.to_thread(_postgres, services)),
            _check("redis", services.redis.ping),
            _check(
                "schema_registry",
                lambda: asyncio.to_thread(services.serde.codec("contacts.raw").prepare),
            ),
        )
    )
    ok = all(c["ok"] for c in checks.values())
    body = {"status": "ready" if ok else "not_ready", "checks": checks}
    return JSONResponse(body, 200 if ok else 503)


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    services = get_services(request)
    return Response(generate_latest(services.metrics.registry), media_type=CONTENT_TYPE_LATEST)
