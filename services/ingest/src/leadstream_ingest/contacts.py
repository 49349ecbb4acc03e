"""The JSON contact the API accepts, and its ``ContactSubmitted`` event (pure, no I/O).

Ingest checks shape and size only (an email with an ``@``, bounded lengths); the filter stage
does the real normalization and validation.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    StringConstraints,
    Tag,
    field_validator,
)

MAX_BATCH = 1000


def _has_at(value: str) -> str:
    local, at, domain = value.rpartition("@")
    if not at or not local or not domain:
        raise ValueError("an email address needs a local part, an @ and a domain")
    return value


def _to_text(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return value


Email = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=3, max_length=320, pattern=r"^.+@[^@]+$"),
    AfterValidator(_has_at),
]
Short = Annotated[str | None, StringConstraints(strip_whitespace=True, max_length=256)]
Url = Annotated[str | None, StringConstraints(strip_whitespace=True, max_length=2048)]
TagText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
FieldName = Annotated[str, StringConstraints(min_length=1, max_length=128)]
FieldValue = Annotated[str, BeforeValidator(_to_text), StringConstraints(max_length=2048)]


def refuse_nul(value: Any) -> Any:
    """``value`` as is, or ``ValueError`` if a text in it (keys included) holds NUL, which
    PostgreSQL text and JSONB refuse: a contact carrying one would only fail downstream."""
    if isinstance(value, str):
        if "\x00" in value:
            raise ValueError("text must not contain NUL characters")
    elif isinstance(value, dict):
        for key, item in value.items():
            refuse_nul(key)
            refuse_nul(item)
    elif isinstance(value, list | tuple):
        for item in value:
            refuse_nul(item)
    return value


class _Model(BaseModel):
    """Unknown fields are refused (no mass assignment of server-owned fields such as
    ``job_id``, ``source`` or ``event_id``); no text may hold NUL."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    @field_validator("*")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        return refuse_nul(value)


class SourceDetailsIn(_Model):
    """Where the contact came from (the server adds IP, user agent, referrer and key id)."""

    form_id: Short = None
    landing_page_url: Url = None
    utm_source: Short = None
    utm_medium: Short = None
    utm_campaign: Short = None
    utm_term: Short = None
    utm_content: Short = None
    upstream_record_id: Short = None


class ConsentIn(_Model):
    granted: bool
    method: Short = None
    text: Annotated[str | None, StringConstraints(max_length=5000)] = None
    captured_at: datetime | None = None
    ip_address: Annotated[str | None, StringConstraints(max_length=64)] = None
    source_url: Url = None


class ContactIn(_Model):
    """One contact. Only ``email`` is required."""

    email: Email
    first_name: Short = None
    last_name: Short = None
    phone: Annotated[str | None, StringConstraints(strip_whitespace=True, max_length=64)] = None
    company: Short = None
    website: Url = None
    title: Short = None
    city: Short = None
    state: Short = None
    postal_code: Annotated[str | None, StringConstraints(strip_whitespace=True, max_length=32)] = (
        None
    )
    country: Short = None
    tags: list[TagText] = Field(default_factory=list, max_length=50)
    custom_fields: dict[FieldName, FieldValue] = Field(default_factory=dict, max_length=100)
    source_details: SourceDetailsIn | None = None
    consent: ConsentIn | None = None


class ContactBatchIn(_Model):
    """Up to 1,000 contacts; the batch becomes a job."""

    contacts: list[ContactIn] = Field(min_length=1, max_length=MAX_BATCH)
    name: Short = Field(default=None, description="A name for the job.")


def _discriminate(value: Any) -> Literal["batch", "single"]:
    if isinstance(value, dict) and "contacts" in value:
        return "batch"
    if isinstance(value, BaseModel):
        return "batch" if isinstance(value, ContactBatchIn) else "single"
    return "single"


ContactsBody = Annotated[
    Annotated[ContactIn, Tag("single")] | Annotated[ContactBatchIn, Tag("batch")],
    Discriminator(_discriminate),
]


@dataclass(frozen=True, slots=True)
class RequestContext:
    """What the server knows about the request that submitted contacts."""

    request_id: str
    api_key_id: str | None
    ip_address: str | None
    user_agent: str | None
    referrer: str | None


def contact_key(email: str) -> str:
    """The partition key of a contact: the email, trimmed and lower-cased."""
    return email.strip().lower()


def now_ms() -> int:
    return int(time.time() * 1000)


def contact_event(
    contact: ContactIn,
    *,
    event_id: str,
    job_id: str | None,
    ctx: RequestContext,
    source: str = "api",
    event_time: int | None = None,
) -> dict[str, Any]:
    """The ``ContactSubmitted`` record of a JSON contact."""
    details = contact.source_details
    consent = contact.consent
    return {
        "event_id": event_id,
        "job_id": job_id,
        "source": source,
        "event_time": event_time if event_time is not None else now_ms(),
        "request_id": ctx.request_id,
        "email": contact.email,
        "first_name": contact.first_name,
        "last_name": contact.last_name,
        "phone": contact.phone,
        "company": contact.company,
        "website": contact.website,
        "title": contact.title,
        "city": contact.city,
        "state": contact.state,
        "postal_code": contact.postal_code,
        "country": contact.country,
        "tags": list(contact.tags),
        "custom_fields": dict(contact.custom_fields),
        "source_details": {
            **(details.model_dump() if details else {}),
            "referrer": ctx.referrer,
            "ip_address": ctx.ip_address,
            "user_agent": ctx.user_agent,
            "api_key_id": ctx.api_key_id,
            "file_name": None,
            "row_number": None,
        },
        "consent": None
        if consent is None
        else {
            "granted": consent.granted,
            "method": consent.method,
            "text": consent.text,
            "captured_at": consent.captured_at,
            "ip_address": consent.ip_address,
            "source_url": consent.source_url,
        },
    }


def event_ids(count: int, *, seed: str | None) -> list[str]:
    """Ids of the events of one request: random, or derived from ``seed`` (an idempotency key
    scoped by API key) so that a retried request produces the same ids."""
    if seed is None:
        return [str(uuid.uuid4()) for _ in range(count)]
    return [
        str(uuid.uuid5(uuid.NAMESPACE_URL, f"leadstream:ingest:{seed}:{i}")) for i in range(count)
    ]


def job_id_for(seed: str | None) -> str:
    if seed is None:
        return str(uuid.uuid4())
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"leadstream:ingest-job:{seed}"))
