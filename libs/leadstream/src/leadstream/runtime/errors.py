"""How a handler tells the runtime what to do with a record that it cannot output."""

from __future__ import annotations

from leadstream.errors import LeadStreamError


class StageError(LeadStreamError):
    """Base of the stage runtime's errors."""


class RetryLater(StageError):
    """A transient failure (DNS timeout, 429, database down): process the batch again later.

    The runtime aborts the batch's transaction, rewinds its partitions and pauses them for a
    backoff with jitter; after ``max_attempts`` the records still failing are dead-lettered,
    so a partition is never blocked forever.
    """

    def __init__(self, reason: str, *, delay_s: float | None = None) -> None:
        super().__init__(reason)
        self.delay_s = delay_s


class BadRecord(StageError):
    """This record can never be processed (not a business rejection): dead-letter it."""


class UndecodableRecord(StageError):
    """The bytes on the topic could not be decoded into a record."""


class FatalStageError(StageError):
    """The stage cannot go on (misconfiguration, lost credentials): stop the process."""
