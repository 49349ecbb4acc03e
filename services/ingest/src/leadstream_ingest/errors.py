"""Domain errors of ingest. They say what went wrong, never how to answer it over HTTP:
``problems.py`` maps each class to a status code at the edge.

Every error has a short machine ``code`` and a human ``reason`` safe to show a client (no
SQL, no stack, no internal host names); ``details`` is optional JSON-able context.
"""

from __future__ import annotations

from typing import Any

from leadstream.errors import LeadStreamError


class IngestError(LeadStreamError):
    """Root of ingest's deliberate errors."""

    default_code = "error"

    def __init__(
        self, reason: str, *, code: str | None = None, details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code or self.default_code
        self.details = details or {}


class MalformedRequest(IngestError):
    """The body cannot be parsed at all (bad JSON)."""

    default_code = "malformed_request"


class InvalidInput(IngestError):
    """Parsed, but not acceptable (missing email, too many contacts, no email column...)."""

    default_code = "invalid_input"


class UnsupportedMedia(IngestError):
    """A content type the route does not read."""

    default_code = "unsupported_media_type"


class TooLarge(IngestError):
    """A body, upload or row count over its limit."""

    default_code = "too_large"


class RequestTimeout(IngestError):
    """The client did not send its request in time (a body trickled in too slowly)."""

    default_code = "request_timeout"


class Unauthenticated(IngestError):
    """No credentials, or credentials that are not (or no longer) valid."""

    default_code = "unauthenticated"


class Forbidden(IngestError):
    """Valid credentials without the right to do this."""

    default_code = "forbidden"


class NotFound(IngestError):
    """No such object, or not one the caller may see."""

    default_code = "not_found"


class Conflict(IngestError):
    """The request clashes with an earlier one (idempotency key reuse)."""

    default_code = "conflict"


class TooManyRequests(IngestError):
    """The client is over a limit; it may retry after ``retry_after_s`` seconds."""

    default_code = "rate_limited"

    def __init__(self, reason: str, *, retry_after_s: int, code: str | None = None) -> None:
        super().__init__(reason, code=code)
        self.retry_after_s = retry_after_s


class Unavailable(IngestError):
    """A dependency (broker, database, registry) did not answer: retry later."""

    default_code = "unavailable"
