"""ASGI middleware, outermost: request id, Prometheus metrics, and the request log.

- The request id is taken from ``X-Request-ID`` when it is sane (1–128 characters of
  ``[A-Za-z0-9._:-]``), else generated; it is echoed on every response and put in
  ``scope["state"]["request_id"]`` for the app.
- One ``RequestLog`` event per request goes to ``audit.requests`` (event id = the request id
  when generated here, a fresh id when the client supplied one), fire and forget: the request
  never waits on Kafka, let alone MongoDB. The webhook token in the path and secret-looking
  query parameters are masked.
- An exception that escapes the app is logged and answered 500 with a body that names the
  request id and nothing internal.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl, urlencode

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from leadstream_ingest.body_limit import send_json
from leadstream_ingest.client_ip import client_ip
from leadstream_ingest.contacts import now_ms
from leadstream_ingest.random_ids import uuid4_hex

log = logging.getLogger(__name__)
_SANE_ID = re.compile(r"[A-Za-z0-9._:\-]{1,128}")
_TOKEN_PATH = re.compile(r"^(/v1/webhooks/[^/]+/)[^/]+")
_SECRET_PARAMS = re.compile(r"token|secret|key|password|signature|auth", re.IGNORECASE)


def request_id_of(raw: bytes | None) -> tuple[str, bool]:
    """The request id, and whether the client supplied it."""
    if raw is not None:
        try:
            text = raw.decode("ascii")
        except UnicodeDecodeError:
            text = ""
        if _SANE_ID.fullmatch(text):
            return text, True
    return uuid4_hex(), False


def masked_path(path: str) -> str:
    if not path.startswith("/v1/webhooks/"):  # what the pattern is anchored on: no token
        return path
    return _TOKEN_PATH.sub(r"\1***", path)


def masked_query(raw: bytes) -> str | None:
    if not raw:
        return None
    pairs = parse_qsl(raw.decode("latin-1"), keep_blank_values=True)
    clean = [(k, "***" if _SECRET_PARAMS.search(k) else v) for k, v in pairs]
    return urlencode(clean)[:2048]


class RequestContextMiddleware:
    """See the module docstring. ``services`` returns the app's services once started."""

    def __init__(self, app: ASGIApp, *, services: Callable[[], Any]) -> None:
        self.app = app
        self.services = services

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        began = time.perf_counter()
        headers = {k: v for k, v in scope.get("headers", ())}
        request_id, supplied = request_id_of(headers.get(b"x-request-id"))
        # The log event's id is unique even when a client reuses its own request id.
        event_id = uuid4_hex() if supplied else request_id
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        id_header = (b"x-request-id", request_id.encode())
        status = 500
        started = False
        sizes = [0, 0]  # request bytes, response bytes

        async def counting_receive() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                sizes[0] += len(message.get("body", b""))
            return message

        async def tagging_send(message: Message) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                started = True
                status = message["status"]
                message["headers"] = [*message.get("headers", []), id_header]
            elif message["type"] == "http.response.body":
                sizes[1] += len(message.get("body", b""))
            await send(message)

        services = self.services()
        metrics = services.metrics if services is not None else None
        if metrics is not None:
            metrics.in_flight.inc()
        try:
            await self.app(scope, counting_receive, tagging_send)
        except Exception:
            log.exception("unhandled error serving %s %s", scope["method"], scope["path"])
            status = 500
            state.setdefault("error", "internal")
            if not started:
                body = {"error": "internal", "reason": "internal error", "request_id": request_id}
                await send_json(send, 500, body, [id_header])
        finally:
            latency = time.perf_counter() - began
            if metrics is not None:
                metrics.in_flight.dec()
                route = scope.get("route")
                template = getattr(route, "path", None) or "<unmatched>"
                metrics.requests.labels(template, scope["method"], str(status)).inc()
                metrics.latency.labels(template, scope["method"]).observe(latency)
            if services is not None:
                self._log(services, scope, headers, (event_id, request_id), status, latency, sizes)

    @staticmethod
    def _log(
        services: Any,
        scope: Scope,
        headers: dict[bytes, bytes],
        ids: tuple[str, str],
        status: int,
        latency: float,
        sizes: list[int],
    ) -> None:
        state = scope.get("state", {})
        event_id, request_id = ids

        def text(name: bytes, limit: int = 1024) -> str | None:
            raw = headers.get(name)
            return raw.decode("latin-1")[:limit] if raw else None

        record = {
            "event_id": event_id,
            "job_id": state.get("job_id"),
            "source": "ingest",
            "event_time": now_ms(),
            "request_id": request_id,
            "method": scope["method"],
            "path": masked_path(scope["path"])[:2048],
            "query": masked_query(scope.get("query_string", b"")),
            "status": status,
            "latency_ms": round(latency * 1000, 3),
            "ip_address": client_ip(scope, services.proxies),
            "user_agent": text(b"user-agent"),
            "referrer": text(b"referer", 2048),
            "api_key_id": state.get("api_key_id"),
            "request_bytes": sizes[0],
            "response_bytes": sizes[1],
            "error": state.get("error") if status >= 400 else None,
        }
        if not services.producer.send_nowait("audit.requests", record, request_id):
            services.metrics.request_logs_dropped.inc()
