"""ASGI middleware: request body limits, enforced while the body is read.

- A ``Content-Length`` over the limit is answered 413 at once; the app never runs and the
  body is never read.
- Otherwise (chunked, or a lying client) the bytes are counted as the app reads them; the
  read that crosses the limit raises :class:`BodyTooLarge` inside the app, and whatever the
  app then answers, the client gets 413 (if the response has not started yet).

Limits are per path prefix (the longest matching prefix wins), e.g. uploads get a large one.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from leadstream_ingest.errors import TooLarge


class BodyTooLarge(TooLarge):
    """The request body went over its limit while being read."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"the request body exceeds {limit} bytes", code="body_too_large")
        self.limit = limit


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
    def __init__(self, app: ASGIApp, *, default: int, limits: Mapping[str, int]) -> None:
        self.app = app
        self.default = default
        self.limits = sorted(limits.items(), key=lambda kv: len(kv[0]), reverse=True)

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
        exceeded = False
        replaced = False

        async def counting_receive() -> Message:
            nonlocal received, exceeded
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    exceeded = True
                    raise BodyTooLarge(limit)
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal replaced
            if replaced:
                return  # the app's own answer, superseded by the 413
            if exceeded and message["type"] == "http.response.start":
                replaced = True
                reason = f"the request body exceeds {limit} bytes"
                await self._refuse(scope, send, 413, "body_too_large", reason)
                return
            await send(message)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except BodyTooLarge:
            if replaced:
                return
            replaced = True
            reason = f"the request body exceeds {limit} bytes"
            await self._refuse(scope, send, 413, "body_too_large", reason)

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
