"""Events → MongoDB documents (pure). ``_id`` is the event id, so storing is idempotent.

FerretDB refuses field names with ``.`` or a leading ``$`` and nested arrays: free-form maps
(``details``) are stored as JSON text, never as sub-documents.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

REQUEST_LOGS = "request_logs"
AUDIT_EVENTS = "audit_events"

COLLECTIONS: dict[str, str] = {"audit.requests": REQUEST_LOGS, "audit.events": AUDIT_EVENTS}
"""Logical topic → collection."""

_REQUEST_FIELDS = (
    "request_id", "job_id", "source", "method", "path", "query", "status", "latency_ms",
    "ip_address", "user_agent", "referrer", "api_key_id", "request_bytes", "response_bytes",
    "error",
)  # fmt: skip
_AUDIT_FIELDS = (
    "job_id", "source", "actor", "action", "target_type", "target_id", "request_id", "outcome",
)  # fmt: skip


def _time(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return datetime.fromtimestamp(int(value) / 1000, UTC)


def request_log_document(value: Mapping[str, Any], stored_at: datetime) -> dict[str, Any]:
    doc: dict[str, Any] = {"_id": value["event_id"], "event_time": _time(value["event_time"])}
    doc.update({name: value.get(name) for name in _REQUEST_FIELDS})
    doc["stored_at"] = stored_at
    return doc


def audit_event_document(value: Mapping[str, Any], stored_at: datetime) -> dict[str, Any]:
    doc: dict[str, Any] = {"_id": value["event_id"], "event_time": _time(value["event_time"])}
    doc.update({name: value.get(name) for name in _AUDIT_FIELDS})
    doc["details"] = json.dumps(dict(value.get("details") or {}), sort_keys=True)
    doc["stored_at"] = stored_at
    return doc


BUILDERS = {REQUEST_LOGS: request_log_document, AUDIT_EVENTS: audit_event_document}
