"""What Email Bison tells us about contacts (tables ``contact_events``, ``bison_replies``,
and the status columns of ``bison_leads``), plus the scheduler's run log
(``bison_sync_runs``).

``record`` is idempotent under replay and redelivery: an event is stored once (its
``event_id``; a reply reported by a webhook *and* by the replies poll is one event by
``(event_type, reply_id)``), and a contact's status only moves up a fixed ranking —
contacted < replied < (not) interested < unsubscribed/bounced — or, at the same rank, to a
later event; so applying the same events again, or in another order, ends in the same row.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Engine

from leadstream.db.contacts import unavailable_as_error


@dataclass(frozen=True, slots=True)
class ContactEvent:
    """One event, resolved to a contact, with its effect on the contact's status."""

    event_id: str
    event_type: str
    source: str
    occurred_at: datetime
    contact_id: str | None
    email: str | None
    workspace_id: str | None = None
    lead_id: str | None = None
    campaign_id: str | None = None
    reply_id: str | None = None
    reply_text: str | None = None
    interested: bool | None = None
    automated_reply: bool | None = None
    sentiment: str | None = None
    status: str | None = None  # the contact status this event implies, if any
    status_rank: int = 0
    payload: str | None = None


_INSERT_EVENT = sa.text(
    """
    INSERT INTO contact_events (event_id, event_type, source, workspace_id, contact_id, email,
        lead_id, campaign_id, reply_id, sentiment, occurred_at, payload)
    VALUES (:event_id, :event_type, :source, :workspace_id, :contact_id, :email, :lead_id,
        :campaign_id, :reply_id, :sentiment, :occurred_at, :payload)
    ON CONFLICT DO NOTHING
    """
)

_INSERT_REPLY = sa.text(
    """
    INSERT INTO bison_replies (reply_id, lead_id, email, contact_id, campaign_id, text_body,
        interested, automated_reply, sentiment, source, received_at)
    VALUES (:reply_id, :lead_id, :email, :contact_id, :campaign_id, :reply_text, :interested,
        :automated_reply, :sentiment, :source, :occurred_at)
    ON CONFLICT (reply_id) DO NOTHING
    """
)

_STATUS = sa.text(
    """
    INSERT INTO bison_leads AS l (contact_id, email, lead_id, campaign_id, status, status_rank,
        status_at, last_event_type, last_event_at, sentiment, replied_at, bounced_at,
        unsubscribed_at)
    VALUES (:contact_id, :email, :lead_id, :campaign_id, COALESCE(:status, 'unknown'),
        :status_rank, :occurred_at, :event_type, :occurred_at, :sentiment,
        CASE WHEN :status IN ('replied', 'interested', 'not_interested') THEN :occurred_at END,
        CASE WHEN :status = 'bounced' THEN :occurred_at END,
        CASE WHEN :status = 'unsubscribed' THEN :occurred_at END)
    ON CONFLICT (contact_id) DO UPDATE SET
        lead_id = COALESCE(l.lead_id, EXCLUDED.lead_id),
        status = CASE WHEN EXCLUDED.status_rank > l.status_rank
            OR (EXCLUDED.status_rank = l.status_rank AND EXCLUDED.status_rank > 0
                AND EXCLUDED.status_at >= COALESCE(l.status_at, EXCLUDED.status_at))
            THEN EXCLUDED.status ELSE l.status END,
        status_at = CASE WHEN EXCLUDED.status_rank > l.status_rank
            OR (EXCLUDED.status_rank = l.status_rank AND EXCLUDED.status_rank > 0
                AND EXCLUDED.status_at >= COALESCE(l.status_at, EXCLUDED.status_at))
            THEN EXCLUDED.status_at ELSE l.status_at END,
        status_rank = GREATEST(l.status_rank, EXCLUDED.status_rank),
        last_event_type = CASE WHEN EXCLUDED.last_event_at >= COALESCE(l.last_event_at,
            EXCLUDED.last_event_at) THEN EXCLUDED.last_event_type ELSE l.last_event_type END,
        last_event_at = GREATEST(l.last_event_at, EXCLUDED.last_event_at),
        sentiment = CASE WHEN EXCLUDED.sentiment IS NOT NULL AND EXCLUDED.last_event_at >=
            COALESCE(l.replied_at, EXCLUDED.last_event_at) THEN EXCLUDED.sentiment
            ELSE l.sentiment END,
        replied_at = GREATEST(l.replied_at, EXCLUDED.replied_at),
        bounced_at = LEAST(l.bounced_at, EXCLUDED.bounced_at),
        unsubscribed_at = LEAST(l.unsubscribed_at, EXCLUDED.unsubscribed_at),
        updated_at = now()
    """
)


class ContactEventStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def resolve(self, lead_ids: Sequence[str], emails: Sequence[str]) -> dict[str, str]:
        """Contact ids of Email Bison leads (``lead:<id>``) and emails (``email:<e>``) we know:
        first our lead ids, then the contacts table."""
        out: dict[str, str] = {}
        with unavailable_as_error(), self.engine.connect() as conn:
            if lead_ids:
                rows = conn.execute(
                    sa.text(
                        "SELECT lead_id, contact_id FROM bison_leads "
                        "WHERE lead_id = ANY(CAST(:ids AS text[]))"
                    ),
                    {"ids": list(lead_ids)},
                ).all()
                out.update({f"lead:{r[0]}": r[1] for r in rows})
            if emails:
                rows = conn.execute(
                    sa.text(
                        "SELECT email_normalized, CAST(contact_id AS text) FROM contacts "
                        "WHERE email_normalized = ANY(CAST(:e AS text[]))"
                    ),
                    {"e": list(emails)},
                ).all()
                out.update({f"email:{r[0]}": r[1] for r in rows})
        return out

    def record(self, events: Sequence[ContactEvent]) -> int:
        """Store events and apply their status changes in one transaction; the number of
        events that were new."""
        if not events:
            return 0
        new = 0
        with unavailable_as_error(), self.engine.begin() as conn:
            for e in events:
                params = _params(e)
                new += conn.execute(_INSERT_EVENT, params).rowcount
                if e.reply_id and e.sentiment:
                    conn.execute(_INSERT_REPLY, params)
                if e.contact_id and e.email:
                    conn.execute(_STATUS, params)
        return new

    def known_replies(self, reply_ids: Sequence[str]) -> set[str]:
        """Which replies are already recorded (the poll skips them)."""
        if not reply_ids:
            return set()
        with unavailable_as_error(), self.engine.connect() as conn:
            rows = conn.execute(
                sa.text(
                    "SELECT reply_id FROM contact_events WHERE reply_id = ANY(CAST(:ids AS text[]))"
                ),
                {"ids": list(reply_ids)},
            ).all()
        return {r[0] for r in rows}

    def history(self, contact_id: str) -> list[dict[str, Any]]:
        with unavailable_as_error(), self.engine.connect() as conn:
            rows = conn.execute(
                sa.text(
                    "SELECT event_id, event_type, source, occurred_at, campaign_id, reply_id, "
                    "sentiment FROM contact_events WHERE contact_id = :c "
                    "ORDER BY occurred_at, event_id"
                ),
                {"c": contact_id},
            ).mappings()
            return [dict(r) for r in rows]

    def lead(self, contact_id: str) -> dict[str, Any] | None:
        with unavailable_as_error(), self.engine.connect() as conn:
            row = (
                conn.execute(
                    sa.text("SELECT * FROM bison_leads WHERE contact_id = :c"), {"c": contact_id}
                )
                .mappings()
                .first()
            )
            return None if row is None else dict(row)

    def reply(self, reply_id: str) -> dict[str, Any] | None:
        with unavailable_as_error(), self.engine.connect() as conn:
            row = (
                conn.execute(
                    sa.text("SELECT * FROM bison_replies WHERE reply_id = :r"), {"r": reply_id}
                )
                .mappings()
                .first()
            )
            return None if row is None else dict(row)


def _params(e: ContactEvent) -> dict[str, Any]:
    return {
        "event_id": e.event_id,
        "event_type": e.event_type,
        "source": e.source,
        "workspace_id": e.workspace_id,
        "contact_id": e.contact_id,
        "email": e.email,
        "lead_id": e.lead_id,
        "campaign_id": e.campaign_id,
        "reply_id": e.reply_id,
        "reply_text": e.reply_text,
        "interested": e.interested,
        "automated_reply": e.automated_reply,
        "sentiment": e.sentiment,
        "status": e.status,
        "status_rank": e.status_rank,
        "occurred_at": e.occurred_at,
        "payload": e.payload,
    }


class SyncRunStore:
    """When each scheduled job last ran (``bison_sync_runs``), shared by every instance."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def last_started(self) -> dict[str, datetime]:
        with unavailable_as_error(), self.engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT job, last_started_at FROM bison_sync_runs")).all()
        return {r[0]: r[1] for r in rows if r[1] is not None}

    def started(self, job: str) -> None:
        with unavailable_as_error(), self.engine.begin() as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO bison_sync_runs (job, last_started_at, runs) "
                    "VALUES (:j, now(), 1) "
                    "ON CONFLICT (job) DO UPDATE SET last_started_at = now(), "
                    "runs = bison_sync_runs.runs + 1"
                ),
                {"j": job},
            )

    def finished(self, job: str, status: str, error: str | None = None) -> None:
        with unavailable_as_error(), self.engine.begin() as conn:
            conn.execute(
                sa.text(
                    "UPDATE bison_sync_runs SET last_finished_at = now(), last_status = :s, "
                    "last_error = :e WHERE job = :j"
                ),
                {"j": job, "s": status, "e": error},
            )

    def runs(self) -> list[dict[str, Any]]:
        with unavailable_as_error(), self.engine.connect() as conn:
            return [
                dict(r)
                for r in conn.execute(sa.text("SELECT * FROM bison_sync_runs ORDER BY job"))
                .mappings()
                .all()
            ]


__all__ = ["ContactEvent", "ContactEventStore", "SyncRunStore"]
