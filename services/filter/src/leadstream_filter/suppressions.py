"""The suppression list as an in-memory snapshot, kept current by polling for changes.

Each batch calls :meth:`SuppressionSnapshot.refresh`; when ``refresh_s`` has passed it asks
the source for the changes after the last version it saw (one indexed query that returns
nothing most of the time), so an entry added while the pipeline runs applies within
``refresh_s`` (0 = poll before every batch). Lookups are then set look-ups: an email, the
domain and each parent domain (``mail.acme.com`` is covered by ``acme.com``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from typing import Protocol

from leadstream_filter.policy import Rejection, parents


class SuppressionChangeLike(Protocol):
    @property
    def kind(self) -> str: ...
    @property
    def value(self) -> str: ...
    @property
    def active(self) -> bool: ...


class SuppressionSource(Protocol):
    """Where the entries live (``leadstream.db.suppressions.SuppressionStore`` fits)."""

    def changes_since(self, version: int) -> tuple[Sequence[SuppressionChangeLike], int]: ...


class SuppressionSnapshot:
    """A :class:`~leadstream_filter.ports.SuppressionList` held in memory."""

    def __init__(
        self,
        source: SuppressionSource,
        *,
        refresh_s: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.source = source
        self.refresh_s = refresh_s
        self.clock = clock
        self.emails: set[str] = set()
        self.domains: set[str] = set()
        self.version = 0
        self._due = -math.inf

    def refresh(self) -> None:
        now = self.clock()
        if now < self._due:
            return
        changes, version = self.source.changes_since(self.version)
        for change in changes:
            target = self.emails if change.kind == "email" else self.domains
            if change.active:
                target.add(change.value)
            else:
                target.discard(change.value)
        self.version = version
        self._due = now + self.refresh_s

    def match(self, email_normalized: str, domain: str) -> Rejection | None:
        if email_normalized in self.emails:
            return Rejection("suppressed_email", "the email is on the suppression list")
        if self.domains:
            for d in parents(domain):
                if d in self.domains:
                    return Rejection("suppressed_domain", f"domain {d} is on the suppression list")
        return None


__all__ = ["SuppressionSnapshot", "SuppressionSource"]
