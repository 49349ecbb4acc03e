"""Deterministic ids shared by the stages."""

from __future__ import annotations

import uuid


def contact_id(email_normalized: str) -> str:
    """The contact id of a normalized email: ``uuid5(NAMESPACE_URL, "mailto:" + email)``."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"mailto:{email_normalized}"))


def derived_event_id(stage: str, input_event_id: str) -> str:
    """The id of the event a stage derives from an input event: the same on every replay."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"leadstream:{stage}:{input_event_id}"))
