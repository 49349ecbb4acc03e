"""Idempotency keys, kept in PostgreSQL (durable; Redis is never the only copy of anything).

A request with an ``Idempotency-Key`` first *claims* the key with the fingerprint of its body:

- a new (or expired) key is claimed and the request is served; its response is then
  :meth:`IdempotencyStore.complete`\\ d, or the claim is :meth:`IdempotencyStore.release`\\ d when
  the request failed, so a retry can run it again;
- the same key with the same fingerprint and a stored response replays that response;
- the same key with another fingerprint is a conflict;
- the same key while the first request is still being served is "in progress" (the claim
  expires after ``lock_timeout`` so a crashed server does not hold a key for 24 h).

Keys are scoped by API key, so two clients never collide.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

_metadata = sa.MetaData()
idempotency_keys = sa.Table(
    "idempotency_keys",
    _metadata,
    sa.Column("api_key_id", sa.Text, primary_key=True),
    sa.Column("idempotency_key", sa.Text, primary_key=True),
    sa.Column("fingerprint", sa.Text, nullable=False),
    sa.Column("status_code", sa.Integer, nullable=True),
    sa.Column("response", postgresql.JSONB, nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("locked_until", sa.DateTime(timezone=True), nullable=False),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
)


class ClaimOutcome(enum.Enum):
    CLAIMED = "claimed"
    REPLAY = "replay"
    CONFLICT = "conflict"
    IN_PROGRESS = "in_progress"


@dataclass(frozen=True, slots=True)
class Claim:
    outcome: ClaimOutcome
    status_code: int | None = None
    response: dict[str, Any] | None = None


class IdempotencyStore:
    """Claim / complete / release idempotency keys."""

    def __init__(
        self,
        engine: sa.Engine,
        *,
        ttl: timedelta = timedelta(hours=24),
        lock_timeout: timedelta = timedelta(minutes=2),
    ) -> None:
        self.engine = engine
        self.ttl = ttl
        self.lock_timeout = lock_timeout

    def claim(self, api_key_id: str, key: str, fingerprint: str) -> Claim:
        t = idempotency_keys
        now = sa.func.now()
        fresh = {
            "fingerprint": fingerprint,
            "status_code": None,
            "response": None,
            "created_at": now,
            "locked_until": now + self.lock_timeout,
            "expires_at": now + self.ttl,
        }
        insert = (
            postgresql.insert(t)
            .values(api_key_id=api_key_id, idempotency_key=key, **fresh)
            .on_conflict_do_nothing()
            .returning(t.c.api_key_id)
        )
        where = (t.c.api_key_id == api_key_id) & (t.c.idempotency_key == key)
        with self.engine.begin() as conn:
            if conn.execute(insert).first() is not None:
                return Claim(ClaimOutcome.CLAIMED)
            row = conn.execute(
                sa.select(
                    t.c.fingerprint,
                    t.c.status_code,
                    t.c.response,
                    (t.c.expires_at < now).label("expired"),
                    (t.c.locked_until < now).label("stale"),
                )
                .where(where)
                .with_for_update()
            ).first()
            if row is None:  # deleted (released or purged) between the two statements
                conn.execute(insert)
                return Claim(ClaimOutcome.CLAIMED)
            m = row._mapping
            if m["expired"] or (m["status_code"] is None and m["stale"]):
                conn.execute(t.update().where(where).values(**fresh))
                return Claim(ClaimOutcome.CLAIMED)
            if m["fingerprint"] != fingerprint:
                return Claim(ClaimOutcome.CONFLICT)
            if m["status_code"] is None:
                return Claim(ClaimOutcome.IN_PROGRESS)
            return Claim(ClaimOutcome.REPLAY, m["status_code"], m["response"])

    def complete(
        self, api_key_id: str, key: str, status_code: int, response: dict[str, Any]
    ) -> None:
        t = idempotency_keys
        with self.engine.begin() as conn:
            conn.execute(
                t.update()
                .where((t.c.api_key_id == api_key_id) & (t.c.idempotency_key == key))
                .values(status_code=status_code, response=response)
            )

    def release(self, api_key_id: str, key: str) -> None:
        """Forget an unfinished claim (the request failed; a retry may run it again)."""
        t = idempotency_keys
        with self.engine.begin() as conn:
            conn.execute(
                t.delete().where(
                    (t.c.api_key_id == api_key_id)
                    & (t.c.idempotency_key == key)
                    & t.c.status_code.is_(None)
                )
            )

    def purge(self) -> int:
        """Delete expired keys; the number deleted."""
        t = idempotency_keys
        with self.engine.begin() as conn:
            return conn.execute(t.delete().where(t.c.expires_at < sa.func.now())).rowcount
