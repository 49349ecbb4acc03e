"""The raw-ASGI fast path of ``POST /v1/registrations`` and of its CORS preflight.

The public registration form is the ingest API's high-volume route; through FastAPI it cost
~1 ms of event-loop CPU per request, most of it in the machinery around the domain code:
Starlette/FastAPI routing and dependency solving, and four ASGI middleware layers (request
context + request log, security headers, CORS, body limit), each wrapping ``receive`` and
``send``. This module answers the route in one layer in front of all of that
(:class:`~leadstream_ingest.app.IngestAPI` calls it before FastAPI), with the same
observable behaviour, by calling the same code the FastAPI path calls:

- request id and request log: :func:`request_context.request_id_of` and
  ``RequestContextMiddleware._log`` (the same ``RequestLog`` on ``audit.requests``), the
  same Prometheus series (route template ``/v1/registrations``; ``<unmatched>`` for
  preflights, which never reach the router);
- body limit and read timeout: the route's limit and ``read_budget`` of the app's
  :class:`BodyLimitMiddleware` configuration (408 ``body_timeout`` with ``Connection: close``);
- validation: the route's own FastAPI body field (``APIRoute.body_field.validate``), so
  errors are pydantic's, located as FastAPI locates them; answers through the same
  ``problems`` mappings;
- rate limit, phone rules, the ``Registration`` event and the broker's ack:
  :class:`~leadstream_ingest.registrations.Registrations` (``admit``, ``accept``,
  ``forget``), in the same order as the route (the limit is spent before the body is
  validated; malformed JSON is refused before, and spends nothing);
- headers: Starlette's ``CORSMiddleware`` decisions and the security headers, in the order
  the middleware stack adds them.

Anything unusual is handed, untouched, to the full FastAPI stack *before* anything
observable happened (no limit spent, nothing logged or counted): a body without a valid
``Content-Length`` (chunked), over the limit, empty, another content type than
``application/json``, bytes that are not a JSON object, a client gone mid-body, an app not
started yet. The route stays declared in FastAPI, so ``/docs`` and the OpenAPI document are
unchanged, and ``LEADSTREAM_REGISTRATION_FAST_PATH=false`` turns this module off.
``tests/integration/test_registrations_fastpath.py`` sends the same requests through both
paths and compares statuses, bodies, headers, events and request logs.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from typing import Any, NamedTuple

from confluent_kafka import KafkaException
from fastapi.routing import APIRoute
from sqlalchemy.exc import DataError, InterfaceError, OperationalError
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from leadstream.db.contacts import DatabaseUnavailableError
from leadstream.events import EventError, RegistryUnavailableError
from leadstream_ingest.body_limit import BodyLimitMiddleware, body_limit_options, send_json
from leadstream_ingest.config import IngestSettings
from leadstream_ingest.errors import IngestError
from leadstream_ingest.problems import ingest_error_answer, unavailable_answer, validation_answer
from leadstream_ingest.random_ids import uuid4_hex
from leadstream_ingest.ratelimit import RateLimited
from leadstream_ingest.registrations import (
    RegistrationIn,
    Registrations,
    rate_limited_answer,
    registrations_of,
)
from leadstream_ingest.registrations import router as registrations_router
from leadstream_ingest.request_context import RequestContextMiddleware, request_id_of
from leadstream_ingest.security import RegistrationCorsMiddleware, SecurityHeadersMiddleware

log = logging.getLogger(__name__)
ROUTE = "/v1/registrations"
UNMATCHED = "<unmatched>"
# Content types this path reads as JSON (FastAPI reads more: those go the long way).
_JSON_TYPES = frozenset(
    {b"application/json", b"application/json; charset=utf-8", b"application/json;charset=utf-8"}
)
# Starlette's JSONResponse rendering.
_JSON = json.JSONEncoder(ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":"))
_CONTENT_TYPE = (b"content-type", b"application/json")
_VARY = (b"vary", b"Origin")

# (status, code, reason, extra body fields, headers)
Answer = tuple[int, str, str, dict[str, Any], dict[str, str]]


def _event_error(_exc: Exception) -> Answer | None:
    log.error("event contract error: %s", _exc)
    return 500, "internal", "internal error", {}, {}


def _unstorable(exc: Exception) -> Answer | None:
    log.info("value refused by the database: %s", exc)
    reason = "a value cannot be stored (NUL characters and invalid Unicode are refused)"
    return 422, "invalid_input", reason, {}, {}


def _unavailable(exc: Exception) -> Answer | None:
    status, code, reason, headers = unavailable_answer(exc)
    return status, code, reason, {}, headers


def _ingest(exc: Exception) -> Answer | None:
    assert isinstance(exc, IngestError)
    return ingest_error_answer(exc)


# The app's exception handlers (problems.install_error_handlers) that the route's failures
# can reach, looked up along the exception's MRO as Starlette does.
_HANDLERS: dict[type[BaseException], Callable[[Exception], Answer | None]] = {
    IngestError: _ingest,
    OperationalError: _unavailable,
    DataError: _unstorable,
    InterfaceError: _unavailable,
    DatabaseUnavailableError: _unavailable,
    RegistryUnavailableError: _unavailable,
    KafkaException: _unavailable,
    EventError: _event_error,
}


def answer_for(exc: Exception) -> Answer | None:
    """The app's answer to an exception the route raised; None when no handler takes it."""
    for cls in type(exc).__mro__:
        handler = _HANDLERS.get(cls)
        if handler is not None:
            return handler(exc)
    return None


def _replay(messages: list[Message], receive: Receive) -> Receive:
    """``receive`` that gives ``messages`` again first (a body already read)."""
    queue = list(messages)

    async def replay() -> Message:
        if queue:
            return queue.pop(0)
        return await receive()

    return replay


class RegistrationFastPath:
    """See the module docstring. ``app`` is the FastAPI app (its ``state`` holds the services
    and :class:`Registrations`); ``fallback`` runs the request through the full stack."""

    def __init__(self, app: Any, settings: IngestSettings, fallback: ASGIApp) -> None:
        self.app = app
        self.fallback = fallback
        self.limits = BodyLimitMiddleware(fallback, **body_limit_options(settings))
        self.limit = self.limits.limit_for(ROUTE)
        self.cors = RegistrationCorsMiddleware(fallback, settings=settings).cors
        self.security = SecurityHeadersMiddleware(fallback, settings=settings)
        self.expose = [
            (k.lower().encode("latin-1"), v.encode("latin-1"))
            for k, v in self.cors.simple_headers.items()
        ]
        self.served = 0  # requests answered here
        self.handed_over = 0  # requests passed to the full stack
        self._body_field: Any = None
        self._series: dict[tuple[str, str, int], tuple[Any, Any, Any]] = {}

    # ------------------------------------------------------------ entry

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        services = getattr(self.app.state, "services", None)
        method = scope["method"]
        if services is not None and method == "POST":
            await self._register(scope, receive, send, services)
        elif services is not None and method == "OPTIONS" and self._is_preflight(scope):
            await self._preflight(scope, send, services)
        else:
            self.handed_over += 1
            await self.fallback(scope, receive, send)

    @staticmethod
    def _is_preflight(scope: Scope) -> bool:
        names = {k for k, _ in scope["headers"]}
        return b"origin" in names and b"access-control-request-method" in names

    def body_field(self) -> Any:
        """The route's FastAPI body field (validates as FastAPI does)."""
        if self._body_field is None:
            for route in registrations_router.routes:
                if isinstance(route, APIRoute) and route.path == ROUTE and "POST" in route.methods:
                    self._body_field = route.body_field
                    break
            else:  # pragma: no cover - the route is declared in registrations.py
                raise RuntimeError(f"POST {ROUTE} is not declared")
        return self._body_field

    # ------------------------------------------------------------ POST

    async def _register(self, scope: Scope, receive: Receive, send: Send, services: Any) -> None:
        began = time.perf_counter()
        metrics = services.metrics
        metrics.in_flight.inc()  # from the first byte on, as the request context middleware
        try:
            read = await self._read(scope, receive)
        except BaseException:
            metrics.in_flight.dec()
            raise
        if not isinstance(read, _Read):
            metrics.in_flight.dec()
            self.handed_over += 1
            await self.fallback(scope, receive if read is None else read, send)
            return
        await self._answer(scope, send, services, began, read)

    async def _read(self, scope: Scope, receive: Receive) -> _Read | Receive | None:
        """The request's headers and body when this path answers it; otherwise None (hand
        over untouched) or a ``receive`` that gives the part of the body already read."""
        first = dict(reversed(scope["headers"]))  # Starlette's Headers.get: the first one
        declared = first.get(b"content-length")
        kind = first.get(b"content-type")
        if (
            declared is None
            or not declared.isdigit()
            or not 0 < int(declared) <= self.limit
            or kind is None
            or kind.lower() not in _JSON_TYPES
        ):
            return None
        # Read the body as BodyLimitMiddleware would (a Content-Length within the limit: the
        # server delivers no more than that, so only the read timeout can refuse it).
        messages: list[Message] = []
        received = 0
        waited = 0.0
        while True:
            budget = self.limits.read_budget(waited, received)
            start = time.monotonic()
            try:
                if budget is None:
                    message = await receive()
                else:
                    # The body is usually in already: then no timer is armed at all.
                    pending = receive()
                    try:
                        waiting_on = pending.send(None)
                    except StopIteration as done:
                        message = done.value
                    else:
                        async with asyncio.timeout(budget):
                            message = await _Resumed(pending, waiting_on)
            except TimeoutError:
                reason = (
                    f"the request body arrived too slowly ({received} bytes in "
                    f"{waited + time.monotonic() - start:.1f} s)"
                )
                return _Read(first, received, None, reason)
            finally:
                waited += time.monotonic() - start
            messages.append(message)
            if message["type"] != "http.request":  # the client went away mid-body
                return _replay(messages, receive)
            received += len(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = (
            messages[0].get("body", b"")
            if len(messages) == 1
            else b"".join(m.get("body", b"") for m in messages)
        )
        try:
            document = json.loads(body)
        except Exception:
            return _replay(messages, receive)
        if type(document) is not dict:
            return _replay(messages, receive)
        return _Read(first, received, document, None)

    async def _answer(
        self, scope: Scope, send: Send, services: Any, began: float, read: _Read
    ) -> None:
        """Answer, count and log the request (the request context middleware's part)."""
        first, received, document, timed_out = read
        raw = scope["headers"]
        last = dict(raw)
        request_id, supplied = request_id_of(last.get(b"x-request-id"))
        event_id = uuid4_hex() if supplied else request_id
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        metrics = services.metrics
        status = 500
        sent = 0
        started = False
        try:
            if timed_out is not None:
                state["error"] = "body_timeout"
                status = 408
                payload = {"error": "body_timeout", "reason": timed_out, "request_id": request_id}
                data = json.dumps(payload).encode()
                headers = [
                    _CONTENT_TYPE,
                    (b"content-length", str(len(data)).encode()),
                    (b"connection", b"close"),
                ]
            else:
                assert document is not None
                status, answer_headers, content = await self._decide(
                    scope, first, state, services, document
                )
                data = _JSON.encode(content).encode()
                headers = [
                    *answer_headers,
                    (b"content-length", str(len(data)).encode()),
                    _CONTENT_TYPE,
                ]
            headers = self._finish(scope, first, headers, request_id)
            self.served += 1
            started = True
            await send({"type": "http.response.start", "status": status, "headers": headers})
            sent = len(data)
            await send({"type": "http.response.body", "body": data})
        except Exception as exc:
            # As the request context middleware answers an exception that escaped the app.
            cause = exc.__cause__ if isinstance(exc, _Unexpected) else exc
            log.error(
                "unhandled error serving %s %s", scope["method"], scope["path"], exc_info=cause
            )
            status = 500
            state.setdefault("error", "internal")
            if not started:
                payload = {
                    "error": "internal",
                    "reason": "internal error",
                    "request_id": request_id,
                }
                sent = len(json.dumps(payload).encode())
                self.served += 1
                await send_json(send, 500, payload, [(b"x-request-id", request_id.encode())])
        finally:
            latency = time.perf_counter() - began
            metrics.in_flight.dec()
            counter, histogram = self._series_of(metrics, ROUTE, "POST", status)
            counter.inc()
            histogram.observe(latency)
            RequestContextMiddleware._log(
                services, scope, last, (event_id, request_id), status, latency, [received, sent]
            )

    async def _decide(
        self,
        scope: Scope,
        first: dict[bytes, bytes],
        state: dict[str, Any],
        services: Any,
        document: dict[str, Any],
    ) -> tuple[int, list[tuple[bytes, bytes]], dict[str, Any]]:
        """The route's answer: status, its own headers, the JSON body."""
        body, errors = self.body_field().validate(document, {}, loc=("body",))
        registrations = registrations_of(self.app.state, services)

        def text(name: bytes) -> str | None:
            value = first.get(name)
            return None if value is None else value.decode("latin-1")

        def problem(answer: Answer) -> tuple[int, list[tuple[bytes, bytes]], dict[str, Any]]:
            status, code, reason, extra, headers = answer
            state["error"] = code
            content = {"error": code, "reason": reason, "request_id": state["request_id"], **extra}
            return status, _encode_headers(headers), content

        pending: str | None = None
        try:
            ctx = registrations.context_of(
                scope,
                state["request_id"],
                text(b"x-request-id"),
                text(b"user-agent"),
                text(b"referer"),
            )
            if await registrations.admit(ctx):
                pending = ctx.request_id
            if errors:
                await _forget(registrations, pending)
                status, code, reason, extra = validation_answer(errors)
                return problem((status, code, reason, extra, {}))
            assert isinstance(body, RegistrationIn)
            await registrations.accept(body, ctx)
        except RateLimited as exc:
            await _forget(registrations, pending)
            status, code, reason, headers = rate_limited_answer(exc)
            return problem((status, code, reason, {}, headers))
        except Exception as exc:
            await _forget(registrations, pending)
            answer = answer_for(exc)
            if answer is None:
                raise _Unexpected() from exc
            return problem(answer)
        location = f"/v1/registrations/{ctx.request_id}"
        headers = [(b"location", location.encode()), (b"cache-control", b"no-store")]
        return 202, headers, {"request_id": ctx.request_id, "status": "accepted"}

    # ------------------------------------------------------------ preflight

    async def _preflight(self, scope: Scope, send: Send, services: Any) -> None:
        """The CORS preflight, answered by Starlette's CORS logic as the middleware would."""
        began = time.perf_counter()
        last = dict(scope["headers"])
        request_id, supplied = request_id_of(last.get(b"x-request-id"))
        event_id = uuid4_hex() if supplied else request_id
        scope.setdefault("state", {})["request_id"] = request_id
        metrics = services.metrics
        metrics.in_flight.inc()
        status = 500
        sent = 0
        try:
            response = self.cors.preflight_response(request_headers=Headers(scope=scope))
            status = response.status_code
            headers = self._security(scope, list(response.raw_headers))
            headers.append((b"x-request-id", request_id.encode()))
            sent = len(response.body)
            self.served += 1
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": response.body})
        finally:
            latency = time.perf_counter() - began
            metrics.in_flight.dec()
            counter, histogram = self._series_of(metrics, UNMATCHED, "OPTIONS", status)
            counter.inc()
            histogram.observe(latency)
            RequestContextMiddleware._log(
                services, scope, last, (event_id, request_id), status, latency, [0, sent]
            )

    # ------------------------------------------------------------ headers, metrics

    def _finish(
        self,
        scope: Scope,
        first: dict[bytes, bytes],
        headers: list[tuple[bytes, bytes]],
        request_id: str,
    ) -> list[tuple[bytes, bytes]]:
        """The response headers as CORS, the security middleware and the request context
        middleware add them, in that order."""
        origin = first.get(b"origin")
        if origin is not None:
            headers.extend(self.expose)
            if self.cors.is_allowed_origin(origin=origin.decode("latin-1")):
                headers.append((b"access-control-allow-origin", origin))
        headers.append(_VARY)
        headers = self._security(scope, headers)
        headers.append((b"x-request-id", request_id.encode()))
        return headers

    def _security(
        self, scope: Scope, headers: list[tuple[bytes, bytes]]
    ) -> list[tuple[bytes, bytes]]:
        security = self.security
        extra = list(security.api_headers)
        if security.hsts is not None and security.is_https(scope):
            extra.append((b"strict-transport-security", security.hsts))
        present = {bytes(k).lower() for k, _ in headers}
        headers.extend(h for h in extra if h[0] not in present)
        return headers

    def _series_of(self, metrics: Any, route: str, method: str, status: int) -> tuple[Any, Any]:
        key = (route, method, status)
        series = self._series.get(key)
        if series is None or series[2] is not metrics:
            series = (
                metrics.requests.labels(route, method, str(status)),
                metrics.latency.labels(route, method),
                metrics,
            )
            self._series[key] = series
        return series[0], series[1]


class _Read(NamedTuple):
    """A request this path answers: first header of each name, body bytes received, the
    JSON object (None when the body timed out) and the timeout's reason."""

    first: dict[bytes, bytes]
    received: int
    document: dict[str, Any] | None
    timed_out: str | None


class _Resumed:
    """Awaits a coroutine that was started by hand and suspended on ``waiting_on`` (what it
    yielded), as ``await`` would have gone on."""

    __slots__ = ("_coro", "_waiting_on")

    def __init__(self, coro: Any, waiting_on: Any) -> None:
        self._coro = coro
        self._waiting_on = waiting_on

    def __await__(self) -> Any:
        value = self._waiting_on
        coro = self._coro
        while True:
            try:
                try:
                    sent = yield value
                except GeneratorExit:
                    coro.close()
                    raise
                except BaseException as exc:  # a cancellation (the timeout) goes in too
                    value = coro.throw(exc)
                else:
                    value = coro.send(sent)
            except StopIteration as done:
                return done.value


class _Unexpected(Exception):
    """An exception no handler of the app takes (the middleware's 500)."""


def _encode_headers(headers: dict[str, str]) -> list[tuple[bytes, bytes]]:
    return [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]


async def _forget(registrations: Registrations, pending: str | None) -> None:
    if pending is not None:
        await registrations.forget(pending)
