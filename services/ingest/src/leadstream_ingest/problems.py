"""The edge: domain errors → HTTP status codes and bodies. Every error body is
``{"error": <code>, "reason": <text>, "request_id": <id>}`` (+ ``details`` when useful);
nothing internal (no SQL, no stack trace, no host names) is ever in it."""

from __future__ import annotations

import logging
from typing import Any

from confluent_kafka import KafkaException
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError, InterfaceError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from leadstream.db.contacts import DatabaseUnavailableError
from leadstream.events import EventError, RegistryUnavailableError
from leadstream_ingest.errors import (
    Conflict,
    Forbidden,
    IngestError,
    InvalidInput,
    MalformedRequest,
    NotFound,
    RequestTimeout,
    TooLarge,
    TooManyRequests,
    Unauthenticated,
    Unavailable,
    UnsupportedMedia,
)

log = logging.getLogger(__name__)

STATUS: dict[type[IngestError], int] = {
    MalformedRequest: 400,
    Unauthenticated: 401,
    Forbidden: 403,
    NotFound: 404,
    Conflict: 409,
    RequestTimeout: 408,
    TooLarge: 413,
    UnsupportedMedia: 415,
    InvalidInput: 422,
    TooManyRequests: 429,
    Unavailable: 503,
}


def status_of(error: IngestError) -> int:
    for cls in type(error).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 400


def error_body(request: Request, code: str, reason: str, **extra: Any) -> dict[str, Any]:
    request.state.error = code
    return {
        "error": code,
        "reason": reason,
        "request_id": getattr(request.state, "request_id", None),
        **extra,
    }


def ingest_error_answer(exc: IngestError) -> tuple[int, str, str, dict[str, Any], dict[str, str]]:
    """status, code, reason, extra body fields and headers of a domain error (the HTTP
    edge's one mapping, shared by the exception handler and the registrations fast path)."""
    status = status_of(exc)
    extra: dict[str, Any] = {"details": exc.details} if exc.details else {}
    headers: dict[str, str] = {}
    if status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    if status == 503:
        headers["Retry-After"] = "5"
    if isinstance(exc, TooManyRequests):
        headers["Retry-After"] = str(exc.retry_after_s)
    return status, exc.code, exc.reason, extra, headers


async def _ingest_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, IngestError)
    status, code, reason, extra, headers = ingest_error_answer(exc)
    body = error_body(request, code, reason, **extra)
    return JSONResponse(body, status_code=status, headers=headers)


def _loc(loc: tuple[int | str, ...]) -> str:
    parts = [str(p) for p in loc if p != "body"]
    return ".".join(parts) or "body"


def validation_answer(errors: list[Any]) -> tuple[int, str, str, dict[str, Any]]:
    """status, code, reason and extra body fields of FastAPI validation errors."""
    if any(e.get("type") == "json_invalid" for e in errors):
        first = next(e for e in errors if e.get("type") == "json_invalid")
        detail = first.get("ctx", {}).get("error", "invalid JSON")
        return 400, "malformed_json", f"the body is not valid JSON: {detail}", {}
    shown = [
        {"loc": _loc(tuple(e.get("loc", ()))), "message": e.get("msg", ""), "type": e.get("type")}
        for e in errors[:50]
    ]
    first = shown[0] if shown else {"loc": "body", "message": "invalid request"}
    reason = f"{first['loc']}: {first['message']}"
    return 422, "invalid_request", reason, {"errors": shown}


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    status, code, reason, extra = validation_answer(list(exc.errors()))
    return JSONResponse(error_body(request, code, reason, **extra), status_code=status)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    codes = {404: "not_found", 405: "method_not_allowed"}
    code = codes.get(exc.status_code, "http_error")
    reason = exc.detail if isinstance(exc.detail, str) else "request refused"
    if exc.status_code == 400 and reason == "There was an error parsing the body":
        code, reason = "malformed_request", "the request body could not be read"
    body = error_body(request, code, reason)
    return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)


def unavailable_answer(exc: Exception) -> tuple[int, str, str, dict[str, str]]:
    """status, code, reason and headers of a dependency that did not answer (logged)."""
    what = {
        OperationalError: "the database",
        DatabaseUnavailableError: "the database",
        InterfaceError: "the database",
        RegistryUnavailableError: "the schema registry",
        KafkaException: "the event broker",
    }
    name = next((v for k, v in what.items() if isinstance(exc, k)), "a dependency")
    log.warning("%s unavailable: %s: %s", name, type(exc).__name__, exc)
    return 503, "unavailable", f"{name} is unavailable; retry later", {"Retry-After": "5"}


async def _unavailable(request: Request, exc: Exception) -> JSONResponse:
    status, code, reason, headers = unavailable_answer(exc)
    return JSONResponse(error_body(request, code, reason), status_code=status, headers=headers)


async def _unstorable(request: Request, exc: Exception) -> JSONResponse:
    """A value PostgreSQL refuses (a NUL character, a lone Unicode surrogate): the client's
    input, not our failure; the SQL stays in our log."""
    log.info("value refused by the database: %s", exc)
    reason = "a value cannot be stored (NUL characters and invalid Unicode are refused)"
    body = error_body(request, "invalid_input", reason)
    return JSONResponse(body, status_code=422)


async def _client_gone(request: Request, exc: Exception) -> JSONResponse:
    log.info("client went away during %s %s", request.method, request.url.path)
    body = error_body(request, "client_disconnected", "the client closed the connection")
    return JSONResponse(body, status_code=400)


async def _event_error(request: Request, exc: Exception) -> JSONResponse:
    log.error("event contract error: %s", exc)
    body = error_body(request, "internal", "internal error")
    return JSONResponse(body, status_code=500)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(IngestError, _ingest_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(OperationalError, _unavailable)
    app.add_exception_handler(DataError, _unstorable)
    app.add_exception_handler(InterfaceError, _unavailable)
    app.add_exception_handler(DatabaseUnavailableError, _unavailable)
    app.add_exception_handler(RegistryUnavailableError, _unavailable)
    app.add_exception_handler(KafkaException, _unavailable)
    app.add_exception_handler(EventError, _event_error)
    app.add_exception_handler(ClientDisconnect, _client_gone)
