"""Errors of the local stack: one line naming the server, the cause and the fix."""

from __future__ import annotations

from leadstream.errors import LeadStreamError


class InfraError(LeadStreamError):
    """A server could not be prepared, started or reached."""

    def __init__(self, message: str, *, log_tail: str | None = None) -> None:
        super().__init__(message)
        self.log_tail = log_tail
