"""Errors of the job-state read API."""

from __future__ import annotations

from typing import TYPE_CHECKING

from leadstream.errors import LeadStreamError

if TYPE_CHECKING:
    from leadstream.jobs.state import JobState


class JobStateError(LeadStreamError):
    """Base class of the job-state read API's errors."""


class JobStateTimeout(JobStateError, TimeoutError):
    """A wait on the job state ran out of time; ``last`` is the state last seen, if any."""

    def __init__(self, message: str, *, last: JobState | None = None) -> None:
        super().__init__(message)
        self.last = last
