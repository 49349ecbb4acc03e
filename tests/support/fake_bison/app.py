"""The fake as an ASGI app (FastAPI): one catch-all route hands every request to
:meth:`FakeBison.handle`; ``/_fake/*`` lets a test in another process steer and read it."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from tests.support.fake_bison.fake import FakeBison
from tests.support.fake_bison.faults import Fault


def create_app(fake: FakeBison) -> FastAPI:
    app = FastAPI(title="Fake Email Bison", openapi_url=None, docs_url=None, redoc_url=None)
    wall = time.time() - time.monotonic()  # request times are monotonic; this maps them

    @app.get("/_fake/stats")
    def stats(path: str | None = None) -> dict[str, Any]:
        n, span = fake.rate(path)
        with fake.lock:
            data = fake.data
            accepted = [s.at for s in fake.seen if s.status != 429]
            return {
                "first_wall": accepted[0] + wall if accepted else None,
                "last_wall": accepted[-1] + wall if accepted else None,
                "accepted": n,
                "span_s": span,
                "rate_per_s": (n - 1) / span if span > 0 else None,
                "rate_limited": len([s for s in fake.seen if s.status == 429]),
                "requests": len(fake.seen),
                "leads": len(data.leads),
                "created": sum(data.created.values()),
                "created_twice": sum(1 for v in data.created.values() if v > 1),
                "attach_sends": sum(data.attach_sends.values()),
                "attached_twice": sum(1 for v in data.attach_sends.values() if v > 1),
                "campaign_leads": {str(c.id): len(c.lead_ids) for c in data.campaigns.values()},
            }

    @app.get("/_fake/requests")
    def requests() -> list[dict[str, Any]]:
        """Every request seen: wall time, method, path, query, status."""
        with fake.lock:
            return [
                {
                    "at": s.at + wall,
                    "method": s.method,
                    "path": s.path,
                    "query": s.query,
                    "status": s.status,
                }
                for s in fake.seen
            ]

    @app.post("/_fake/faults")
    async def add_fault(request: Request) -> dict[str, Any]:
        fault = fake.inject(Fault(**json.loads(await request.body())))
        return {"path": fault.path, "times": fault.times}

    @app.api_route("/{path:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
    async def any_route(path: str, request: Request) -> Response:
        body = await request.body()
        resp = await asyncio.to_thread(
            fake.handle,
            request.method,
            "/" + path,
            request.url.query,
            body,
            request.headers.get("authorization"),
        )
        if resp.body is None:
            return Response(status_code=resp.status, headers=resp.headers)
        return JSONResponse(resp.body, status_code=resp.status, headers=resp.headers)

    return app
