"""ASGI middleware: request body limits, enforced while the body is read.

- A ``Content-Length`` over the limit is answered 413 at once; the app never runs and the
  body is never read.
- Otherwise (chunked, or a lying client) the bytes are counted as the app reads them; the
  read that crosses the limit raises :class:`BodyTooLarge` inside the app, and whatever the
  app then answers, the client gets 413 (if the response has not started yet).
- A slow body (slowloris: bytes trickled to hold a connection and a worker) is cut off with
  408: a read of the next chunk may wait at most ``read_timeout_s``, and past that same grace
  the client must keep up ``min_rate`` bytes per second on average. Only the time spent
  waiting for the client counts: while the app does not read (back-pressure from the
  broker), the client is not blamed. uvicorn has no such timeout of its own (its
  ``timeout_keep_alive`` is for idle connections between requests).

Limits are per path prefix (the longest matching prefix wins), e.g. uploads get a large one.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Mapping
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from leadstream_ingest.config import IngestSettings
from leadstream_ingest.errors import RequestTimeout, TooLarge


def body_limit_options(settings: IngestSettings) -> dict[str, Any]:
    """The app's :class:`BodyLimitMiddleware` options (one place: the registrations fast path
    enforces the same)."""
    return {
        "default": settings.max_body_bytes,
        "limits": {
            "/v1/uploads": settings.max_upload_bytes,
            "/v1/webhooks/": settings.webhook_max_body_bytes,
        },
        "read_timeout_s": settings.body_read_timeout_s,
        "min_rate": settings.body_min_rate_bytes_s,
    }


class BodyTooLarge(TooLarge):
    """The request body went over its limit while being read."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"the request body exceeds {limit} bytes", code="body_too_large")
        self.limit = limit


class BodyReadTimeout(RequestTimeout):
    """The client sent the request body too slowly."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason, code="body_timeout")


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return bytes(value)
    return None


async def send_json(
    send: Send, status: int, body: Mapping[str, object], headers: list[tuple[bytes, bytes]]
) -> None:
    data = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(data)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": data})


class BodyLimitMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        default: int,
        limits: Mapping[str, int],
        read_timeout_s: float | None = None,
        min_rate: float = 0.0,
    ) -> None:
        self.app = app
        self.default = default
        self.limits = sorted(limits.items(), key=lambda kv: len(kv[0]), reverse=True)
        self.read_timeout_s = read_timeout_s
        self.min_rate = min_rate

    def read_budget(self, waited_s: float, received: int) -> float | None:
        """How long the next read may wait for the client (None: no limit), given the time
        already spent waiting for this body and the bytes received."""
        if self.read_timeout_s is None:
            return None
        budget = self.read_timeout_s
        if self.min_rate > 0:  # after the grace, keep up min_rate on average
            allowed = self.read_timeout_s + received / self.min_rate
            budget = min(budget, allowed - waited_s)
        return max(budget, 0.0)

    def limit_for(self, path: str) -> int:
        for prefix, limit in self.limits:
            if path.startswith(prefix):
                return limit
        return self.default

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["path"])
        declared = _header(scope, b"content-length")
        if declared is not None:
            if not declared.strip().isdigit():
                await self._refuse(scope, send, 400, "bad_content_length", "invalid Content-Length")
                return
            if int(declared) > limit:
                reason = f"the request body ({int(declared)} bytes) exceeds {limit} bytes"
                await self._refuse(scope, send, 413, "body_too_large", reason)
                return
        received = 0
        waited = 0.0
        complete = False
        refusal: tuple[int, str, str] | None = None
        replaced = False

        async def counting_receive() -> Message:
            nonlocal received, waited, complete, refusal
            if complete:  # the body is in: later reads wait for a disconnect, unbounded
                return await receive()
            budget = self.read_budget(waited, received)
            began = time.monotonic()
            try:
                if budget is None:
                    message = await receive()
                else:
                    message = await asyncio.wait_for(receive(), budget)
            except TimeoutError:
                reason = (
                    f"the request body arrived too slowly ({received} bytes in "
                    f"{waited + time.monotonic() - began:.1f} s)"
                )
                refusal = (408, "body_timeout", reason)
                raise BodyReadTimeout(reason) from None
            finally:
                waited += time.monotonic() - began
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                complete = not message.get("more_body", False)
                if received > limit:
                    refusal = (413, "body_too_large", f"the request body exceeds {limit} bytes")
                    raise BodyTooLarge(limit)
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal replaced
            if replaced:
                return  # the app's own answer, superseded by the refusal
            if refusal is not None and message["type"] == "http.response.start":
                replaced = True
                await self._refuse(scope, send, *refusal)
                return
            await send(message)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except (BodyTooLarge, BodyReadTimeout):
            if replaced or refusal is None:
                return
            replaced = True
            await self._refuse(scope, send, *refusal)

    @staticmethod
    async def _refuse(scope: Scope, send: Send, status: int, code: str, reason: str) -> None:
        request_id = scope.get("state", {}).get("request_id")
        scope.setdefault("state", {})["error"] = code
        await send_json(
            send,
            status,
            {"error": code, "reason": reason, "request_id": request_id},
            [(b"connection", b"close")],
        )
