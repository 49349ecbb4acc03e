"""LeadStream contacts → Email Bison lead objects."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

STANDARD_FIELDS = ("first_name", "last_name", "title", "company")
EXTRA_VARIABLES = {
    "phone_e164": "phone",
    "website": "website",
    "city": "city",
    "state": "state",
    "country": "country",
}
"""Contact fields Email Bison has no column for: sent as custom variables of these names."""


def lead_payload(contact: Mapping[str, Any]) -> dict[str, Any]:
    """A BatchContact → the lead object of ``create-or-update/multiple``.

    Only fields that have a value are sent: with ``existing_lead_behavior: patch`` what is not
    sent is left alone at Email Bison. Custom fields and the extra fields above go out as
    ``custom_variables`` (which must exist first: see :func:`variable_names`)."""
    lead: dict[str, Any] = {"email": contact["email"]}
    for name in STANDARD_FIELDS:
        value = contact.get(name)
        if value not in (None, ""):
            lead[name] = value
    variables = {
        **{
            label: str(contact[field])
            for field, label in EXTRA_VARIABLES.items()
            if contact.get(field) not in (None, "")
        },
        **{str(k): str(v) for k, v in (contact.get("custom_fields") or {}).items()},
    }
    if variables:
        lead["custom_variables"] = [{"name": k, "value": v} for k, v in sorted(variables.items())]
    return lead


def variable_names(leads: Iterable[Mapping[str, Any]]) -> set[str]:
    """Every custom variable name the leads use."""
    return {v["name"] for lead in leads for v in lead.get("custom_variables") or ()}
