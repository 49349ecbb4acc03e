"""A verified contact as the batch stage sees it: the BatchContact it becomes, and what
routing looks at."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from leadstream_batch.routing import Routable

BATCH_CONTACT_FIELDS = (
    "first_name",
    "last_name",
    "title",
    "company",
    "phone_e164",
    "website",
    "city",
    "state",
    "country",
)
SOURCE_DETAIL_FIELDS = (
    "form_id",
    "landing_page_url",
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "file_name",
)
"""Source details rules can match as fields (a custom field of the same name wins)."""


@dataclass(frozen=True, slots=True)
class Candidate:
    contact_id: str
    verified_event_id: str
    job_id: str | None
    verdict: str
    source: str
    contact: dict[str, Any]  # a BatchContact record
    details: dict[str, str] = field(default_factory=dict)
    position: str | None = None  # topic:partition:offset of the input record, if any

    @property
    def closing_key(self) -> str:
        """What a batch this contact closes remembers as ``closed_by``."""
        return self.position or f"event:{self.verified_event_id}"

    @property
    def routable(self) -> Routable:
        fields = {**self.details, **(self.contact.get("custom_fields") or {})}
        return Routable(
            source=self.source,
            tags=tuple(self.contact.get("tags") or ()),
            job_id=self.job_id,
            country=self.contact.get("country"),
            state=self.contact.get("state"),
            custom_fields=fields,
        )

    def hold_payload(self) -> dict[str, Any]:
        """What a hold keeps so the contact can be routed and batched later."""
        return {"batch_contact": self.contact, "source": self.source, "details": self.details}

    @classmethod
    def from_hold(cls, payload: Mapping[str, Any]) -> Candidate:
        contact = dict(payload["batch_contact"])
        return cls(
            contact_id=contact["contact_id"],
            verified_event_id=contact["verified_event_id"],
            job_id=contact.get("job_id"),
            verdict=contact["verdict"],
            source=str(payload.get("source") or ""),
            contact=contact,
            details=dict(payload.get("details") or {}),
        )


def from_verified(
    value: Mapping[str, Any], source: str | None, position: str | None = None
) -> Candidate:
    """A ContactVerified record → its candidate (email = the normalized one).

    ``source`` is where the contact originally came from (``api``, ``csv``,
    ``upstream:<name>``): ContactVerified's own ``source`` is the producing stage (``verify``),
    so the caller reads the origin from the ``contacts`` row the filter wrote."""
    contact: dict[str, Any] = {
        "contact_id": value["contact_id"],
        "email": value["email_normalized"],
        **{name: value.get(name) for name in BATCH_CONTACT_FIELDS},
        "tags": list(value.get("tags") or []),
        "custom_fields": dict(value.get("custom_fields") or {}),
        "verdict": value["verdict"],
        "job_id": value.get("job_id"),
        "verified_event_id": value["event_id"],
    }
    details = value.get("source_details") or {}
    return Candidate(
        contact_id=value["contact_id"],
        verified_event_id=value["event_id"],
        job_id=value.get("job_id"),
        verdict=value["verdict"],
        source=source or "",
        contact=contact,
        details={k: str(details[k]) for k in SOURCE_DETAIL_FIELDS if details.get(k) is not None},
        position=position,
    )
