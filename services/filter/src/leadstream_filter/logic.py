"""The filter stage's decisions: a pure function of a batch of ContactSubmitted records and
the ports it is handed (contact registry, suppression list).

For every input exactly one output, keyed by the normalized email:

- ``contacts.filtered`` (ContactFiltered) when the contact is new;
- ``contacts.rejected`` (ContactRejected, header ``reason=<code>``) otherwise, with the first
  reason that applies: ``missing_email``, ``invalid_email``, ``blocked_domain``,
  ``suppressed_email``, ``suppressed_domain``, ``role_account`` / ``free_provider`` (only when
  policy rejects them; otherwise they pass with a flag), ``duplicate``.

De-duplication asks the registry once per batch. The first record of an email in the batch
claims it; the registry answers which event created each contact, so the replay of the
creating event passes again (same output, same deterministic event id) while every other
record of that email is a ``duplicate``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Any

from leadstream.events import contact_id, derived_event_id
from leadstream.runtime import Output, Record
from leadstream_filter.address import Address, AddressError, normalize_email
from leadstream_filter.fields import (
    clean_name,
    clean_text,
    phone_e164,
    region_of,
    website_domain,
)
from leadstream_filter.policy import Policy, Rejection, Screening
from leadstream_filter.ports import ContactRegistry, NewContact, SuppressionList

STAGE = "filter"
FILTERED = "contacts.filtered"
REJECTED = "contacts.rejected"
REASON_HEADER = "reason"
_AS_SUBMITTED = (
    "email", "first_name", "last_name", "phone", "company", "website", "title", "city",
    "state", "postal_code", "country", "tags", "custom_fields", "source_details", "consent",
)  # fmt: skip


class FilterLogic:
    """The stage handler (``Stage("filter", ["contacts.raw"], FilterLogic(...))``)."""

    def __init__(
        self,
        policy: Policy,
        registry: ContactRegistry,
        suppressions: SuppressionList,
        *,
        default_region: str = "GB",
        allow_smtputf8: bool = True,
        strict_phones: bool = True,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.policy = policy
        self.registry = registry
        self.suppressions = suppressions
        self.default_region = default_region.upper()
        self.allow_smtputf8 = allow_smtputf8
        self.strict_phones = strict_phones
        self.clock = clock

    def __call__(self, records: Sequence[Record]) -> list[list[Output]]:
        now_ms = int(self.clock() * 1000)
        self.suppressions.refresh()
        outputs: list[list[Output]] = [[] for _ in records]
        passing: list[tuple[int, dict[str, Any], NewContact]] = []
        claims: dict[str, NewContact] = {}
        for i, record in enumerate(records):
            value = record.value
            try:
                address = normalize_email(value.get("email"), allow_smtputf8=self.allow_smtputf8)
            except AddressError as exc:
                key = (value.get("email") or "").strip().lower() or record.key
                outputs[i] = [_rejected(value, now_ms, Rejection(exc.reason, exc.detail), key)]
                continue
            suppressed = self.suppressions.match(address.normalized, address.domain)
            screening = self.policy.screen(address, suppressed)
            if screening.rejection is not None:
                outputs[i] = [_rejected(value, now_ms, screening.rejection, address.normalized)]
                continue
            filtered = self._filtered(value, address, screening, now_ms)
            contact = _new_contact(filtered, address, value)
            claims.setdefault(address.normalized, contact)  # the batch's first record of it
            passing.append((i, filtered, contact))
        owners = self.registry.claim(list(claims.values())) if claims else {}
        for i, filtered, contact in passing:
            owner = owners[contact.email_normalized]
            if owner == contact.event_id:
                outputs[i] = [Output(FILTERED, filtered, key=contact.email_normalized)]
            else:
                duplicate = Rejection("duplicate", f"contact created by event {owner}")
                outputs[i] = [
                    _rejected(records[i].value, now_ms, duplicate, contact.email_normalized)
                ]
        return outputs

    def _filtered(
        self, value: dict[str, Any], address: Address, screening: Screening, now_ms: int
    ) -> dict[str, Any]:
        get = value.get
        event_id = value["event_id"]
        country = get("country")
        phone = get("phone")
        region = region_of(country, self.default_region)
        return {
            "event_id": derived_event_id(STAGE, event_id),
            "job_id": get("job_id"),
            "source": STAGE,
            "event_time": now_ms,
            "raw_event_id": event_id,
            "request_id": get("request_id"),
            "contact_id": contact_id(address.normalized),
            "email_normalized": address.normalized,
            "domain": address.domain,
            "phone_e164": phone_e164(phone, region, self.strict_phones),
            "role_account": screening.role_account,
            "free_provider": screening.free_provider,
            "email": value["email"],
            "first_name": clean_name(get("first_name")),
            "last_name": clean_name(get("last_name")),
            "phone": phone,
            "company": _clean(get("company")),
            "website": website_domain(get("website")),
            "title": _clean(get("title")),
            "city": _clean(get("city")),
            "state": _clean(get("state")),
            "postal_code": _postal(get("postal_code")),
            "country": _clean(country),
            "tags": _tags(get("tags")),
            "custom_fields": get("custom_fields") or {},
            "source_details": get("source_details"),
            "consent": get("consent"),
        }


def _new_contact(filtered: dict[str, Any], address: Address, value: dict[str, Any]) -> NewContact:
    return NewContact(
        contact_id=filtered["contact_id"],
        email_normalized=address.normalized,
        domain=address.domain,
        email=address.display,
        first_name=filtered["first_name"],
        last_name=filtered["last_name"],
        phone_e164=filtered["phone_e164"],
        company=filtered["company"],
        website_domain=filtered["website"],
        role_account=filtered["role_account"],
        free_provider=filtered["free_provider"],
        source=value["source"],
        job_id=value.get("job_id"),
        event_id=value["event_id"],
    )


def _rejected(
    value: dict[str, Any], now_ms: int, rejection: Rejection, key: str | bytes | None
) -> Output:
    normalized = key if rejection.reason not in ("missing_email", "invalid_email") else None
    out: dict[str, Any] = {
        "event_id": derived_event_id(STAGE, value["event_id"]),
        "job_id": value.get("job_id"),
        "source": STAGE,
        "event_time": now_ms,
        "raw_event_id": value["event_id"],
        "request_id": value.get("request_id"),
        "stage": STAGE,
        "reason": rejection.reason,
        "detail": rejection.detail,
        "contact_id": contact_id(normalized) if isinstance(normalized, str) else None,
        "email_normalized": normalized if isinstance(normalized, str) else None,
    }
    for name in _AS_SUBMITTED:
        out[name] = value.get(name)
    out["email"] = value.get("email") or ""
    out["tags"] = out["tags"] or []
    out["custom_fields"] = out["custom_fields"] or {}
    return Output(REJECTED, out, key=key, headers={REASON_HEADER: rejection.reason})


# clean_text of the short fields, cached: titles, cities, states, countries and companies repeat
_clean = lru_cache(maxsize=65_536)(clean_text)


@lru_cache(maxsize=65_536)
def _postal(raw: str | None) -> str | None:
    text = clean_text(raw, limit=32)
    return text.upper() if text is not None else None


def _tags(raw: list[str] | None) -> list[str]:
    seen: dict[str, None] = {}
    for tag in raw or ():
        t = clean_text(tag, limit=100)
        if t is not None:
            seen.setdefault(t, None)
    return list(seen)


__all__ = ["FILTERED", "REASON_HEADER", "REJECTED", "STAGE", "FilterLogic"]
