"""What the filter's logic is handed: the contact registry and the suppression list.

Adapters raise :class:`leadstream.runtime.RetryLater` when their store cannot be reached.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import NamedTuple, Protocol

from leadstream_filter.policy import Rejection


class NewContact(NamedTuple):
    """A contact the filter wants to create (the row the registry stores). A named tuple:
    one per passing record, and a tuple is built several times faster than a frozen
    dataclass."""

    contact_id: str
    email_normalized: str
    domain: str
    email: str  # display form: local part as typed, normalized domain
    first_name: str | None
    last_name: str | None
    phone_e164: str | None
    company: str | None
    website_domain: str | None
    role_account: bool
    free_provider: bool
    source: str
    job_id: str | None
    event_id: str  # the ContactSubmitted that creates it


class ContactRegistry(Protocol):
    """Every contact ever accepted, one per normalized email."""

    def claim(self, contacts: Sequence[NewContact]) -> Mapping[str, str]:
        """Create missing contacts (emails distinct); per email, the event id that created
        its row (the caller's own one when this call created it)."""
        ...


class SuppressionList(Protocol):
    """Emails and domains that must not pass."""

    def refresh(self) -> None:
        """Bring the list up to date if it is due (called once per batch)."""
        ...

    def match(self, email_normalized: str, domain: str) -> Rejection | None:
        """``suppressed_email`` / ``suppressed_domain`` when an entry applies."""
        ...


__all__ = ["ContactRegistry", "NewContact", "SuppressionList"]
