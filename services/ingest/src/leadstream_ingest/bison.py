"""Email Bison webhook deliveries → ``BisonEvent`` records (pure, no I/O).

Payload (see ``shared/reference/email-bison-api.md``)::

    {"event": {"type": "LEAD_REPLIED", "name", "instance_url", "workspace_id", "workspace_name"},
     "data": {"lead": {"id", "email", ...}, "campaign": {"id", "name"},
              "scheduled_email": {"id", ...}, "campaign_event": {"id", "type", "created_at"},
              "reply": {"id", "uuid", "text_body", "interested", "automated_reply", ...}}}

Ids may arrive as numbers or strings; anything but ``event.type`` may be missing. The
natural key — workspace id + event type + scheduled email id + campaign event id (+ reply
id) — identifies a delivery across Email Bison's retries, and the event id is derived from it.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from leadstream_ingest.errors import InvalidInput, MalformedRequest


@dataclass(frozen=True, slots=True)
class BisonDelivery:
    dedupe_key: str
    event_id: str
    event_type: str
    key: str
    record: dict[str, Any]


def _obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _clean(text: str) -> str:
    """Text that every store downstream takes: no NUL (PostgreSQL refuses it), and lone
    surrogates (JSON ``\\ud800`` escapes, not encodable as UTF-8) replaced. A delivery is
    never refused for its text: Email Bison would only retry it."""
    if "\x00" in text:
        text = text.replace("\x00", "")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "replace").decode("utf-8")
    return text


def _id(value: Any) -> str | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | str):
        text = _clean(str(value)).strip()
        return text[:200] or None
    return None


def _text(value: Any, limit: int = 100_000) -> str | None:
    return _clean(value[:limit]) or None if isinstance(value, str) and value else None


def _flag(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if value in (0, 1, "0", "1"):
        return str(value) == "1"
    return None


def _millis(value: Any) -> int | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def parse_delivery(body: bytes, *, now_ms: int) -> BisonDelivery:
    """The event a webhook body carries; :class:`MalformedRequest` for bad JSON and
    :class:`InvalidInput` for JSON that is not an Email Bison event."""
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError):  # RecursionError: nested too deep
        raise MalformedRequest("the webhook body is not valid JSON", code="bad_json") from None
    if not isinstance(payload, dict):
        raise InvalidInput("the webhook body must be a JSON object", code="bad_webhook")
    event = _obj(payload.get("event"))
    raw_type = event.get("type")
    if not isinstance(raw_type, str) or not raw_type.strip() or len(raw_type) > 100:
        raise InvalidInput("the webhook body has no event.type", code="bad_webhook")
    event_type = _clean(raw_type).strip().lower()
    if not event_type:
        raise InvalidInput("the webhook body has no event.type", code="bad_webhook")
    data = _obj(payload.get("data"))
    lead = _obj(data.get("lead"))
    campaign = _obj(data.get("campaign"))
    scheduled = _obj(data.get("scheduled_email"))
    campaign_event = _obj(data.get("campaign_event"))
    reply = _obj(data.get("reply"))
    workspace_id = _id(event.get("workspace_id"))
    scheduled_id = _id(scheduled.get("id"))
    campaign_event_id = _id(campaign_event.get("id"))
    reply_id = _id(reply.get("id"))
    email = lead.get("email")
    email = _text(email, 320) if isinstance(email, str) else None
    email = email.strip().lower() or None if email else None
    parts = [workspace_id, event_type, scheduled_id, campaign_event_id, reply_id]
    if scheduled_id is None and campaign_event_id is None and reply_id is None:
        # No natural key in this payload (e.g. account events): the body itself identifies it.
        parts.append("sha256:" + hashlib.sha256(body).hexdigest())
    dedupe_key = "|".join(p or "" for p in parts)
    event_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"leadstream:bison:{dedupe_key}"))
    record = {
        "event_id": event_id,
        "source": "bison:webhook",
        "event_time": now_ms,
        "event_type": event_type,
        "workspace_id": workspace_id,
        "lead_id": _id(lead.get("id")),
        "email": email,
        "campaign_id": _id(campaign.get("id")),
        "campaign_name": _text(campaign.get("name"), 1000),
        "scheduled_email_id": scheduled_id,
        "campaign_event_id": campaign_event_id,
        "reply_id": reply_id,
        "reply_text": _text(reply.get("text_body")),
        "interested": _flag(reply.get("interested")),
        "automated_reply": _flag(reply.get("automated_reply")),
        "occurred_at": _millis(campaign_event.get("created_at")),
        "payload": body.decode("utf-8", "replace"),
    }
    key = email or workspace_id or "unknown"
    return BisonDelivery(dedupe_key, event_id, event_type, key, record)
