"""Email Bison events → contact history, status, reply sentiment and suppressions.

- email_sent, lead_first_contacted → contacted (rank 10);
- email_opened → opened (15);
- lead_replied, untracked_reply_received → replied (20), or by the reply's sentiment:
  interested / not_interested (30), unsubscribed (40, and the email is suppressed with reason
  ``unsubscribe_request``);
- lead_interested → interested (30);
- lead_unsubscribed → unsubscribed (40); the email is suppressed (``unsubscribed``);
- email_bounced → bounced (40); the email is suppressed (``bounced``);
- anything else → history only.

A status only moves to a higher rank, or to a later event of the same rank, so the order
events arrive in does not matter.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from leadstream.bison import classify
from leadstream.db.contact_events import ContactEvent
from leadstream.db.suppressions import InvalidSuppressionError, Suppression, parse_value

STATUS: dict[str, tuple[str, int]] = {
    "email_sent": ("contacted", 10),
    "manual_email_sent": ("contacted", 10),
    "lead_first_contacted": ("contacted", 10),
    "email_opened": ("opened", 15),
    "lead_replied": ("replied", 20),
    "untracked_reply_received": ("replied", 20),
    "lead_interested": ("interested", 30),
    "lead_unsubscribed": ("unsubscribed", 40),
    "email_bounced": ("bounced", 40),
}
BY_SENTIMENT: dict[str, tuple[str, int]] = {
    "interested": ("interested", 30),
    "not_interested": ("not_interested", 30),
    "unsubscribe_request": ("unsubscribed", 40),
}
REPLIES = frozenset({"lead_replied", "untracked_reply_received"})
SUPPRESS = {"email_bounced": "bounced", "lead_unsubscribed": "unsubscribed"}


@dataclass(frozen=True, slots=True)
class Feedback:
    event: ContactEvent
    suppression: Suppression | None


def when(value: Any) -> datetime | None:
    """A timestamp-millis field as decoded (datetime) or as produced (int ms)."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return datetime.fromtimestamp(int(value) / 1000, UTC)


def interpret(ev: Mapping[str, Any], contact_id: str | None) -> Feedback:
    """One BisonEvent record (decoded) → what to store and whom to suppress."""
    event_type = str(ev["event_type"]).lower()
    email = str(ev["email"]).strip().lower() if ev.get("email") else None
    status = STATUS.get(event_type)
    sentiment: str | None = None
    if event_type in REPLIES:
        sentiment = classify(
            ev.get("reply_text"),
            interested_flag=ev.get("interested"),
            automated_reply=ev.get("automated_reply"),
        )
        status = BY_SENTIMENT.get(sentiment, status)
    elif event_type == "lead_interested":
        sentiment = "interested"
    reason = SUPPRESS.get(event_type)
    if sentiment == "unsubscribe_request":
        reason = "unsubscribe_request"
    suppression = None
    if reason and email:
        try:
            kind, value = parse_value(email)
        except InvalidSuppressionError:
            kind = None
        if kind == "email":
            suppression = Suppression("email", value, reason, "bison-sync")
    occurred = when(ev.get("occurred_at")) or when(ev.get("event_time")) or datetime.now(UTC)
    event = ContactEvent(
        event_id=str(ev["event_id"]),
        event_type=event_type,
        source=str(ev.get("source") or "bison"),
        occurred_at=occurred,
        contact_id=contact_id,
        email=email,
        workspace_id=ev.get("workspace_id"),
        lead_id=ev.get("lead_id"),
        campaign_id=ev.get("campaign_id"),
        reply_id=ev.get("reply_id"),
        reply_text=ev.get("reply_text"),
        interested=ev.get("interested"),
        automated_reply=ev.get("automated_reply"),
        sentiment=sentiment,
        status=status[0] if status else None,
        status_rank=status[1] if status else 0,
        payload=ev.get("payload"),
    )
    return Feedback(event, suppression)
