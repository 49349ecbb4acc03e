"""What ingest keeps in PostgreSQL: job rows (with the API key that owns them) and the
receipts of Email Bison webhook deliveries (de-duplication by the event's natural key)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

_metadata = sa.MetaData()
jobs = sa.Table(
    "jobs",
    _metadata,
    sa.Column("job_id", sa.Text, primary_key=True),
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("source", sa.Text, nullable=False),
    sa.Column("expected_total", sa.BigInteger, nullable=True),
    sa.Column("sealed_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("meta", sa.JSON, nullable=False),
    sa.Column("api_key_id", sa.Text, nullable=True),
)
webhook_receipts = sa.Table(
    "webhook_receipts",
    _metadata,
    sa.Column("dedupe_key", sa.Text, primary_key=True),
    sa.Column("event_id", sa.Text, nullable=False),
    sa.Column("event_type", sa.Text, nullable=False),
    sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
)


@dataclass(frozen=True, slots=True)
class JobRow:
    """A job as ingest recorded it."""

    job_id: str
    kind: str
    source: str
    api_key_id: str | None
    expected_total: int | None
    sealed_at: datetime | None
    created_at: datetime
    meta: dict[str, Any]

    @property
    def name(self) -> str | None:
        name = self.meta.get("name")
        return name if isinstance(name, str) else None


def _job(row: sa.Row[tuple[object, ...]]) -> JobRow:
    m = row._mapping
    return JobRow(
        job_id=m["job_id"],
        kind=m["kind"],
        source=m["source"],
        api_key_id=m["api_key_id"],
        expected_total=m["expected_total"],
        sealed_at=m["sealed_at"],
        created_at=m["created_at"],
        meta=dict(m["meta"] or {}),
    )


class IngestStore:
    """Job rows and webhook receipts."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    # ------------------------------------------------------------------ jobs

    def create_job(
        self,
        job_id: str,
        *,
        kind: str,
        source: str,
        api_key_id: str | None,
        meta: dict[str, Any],
        expected_total: int | None = None,
        sealed: bool = False,
    ) -> JobRow:
        """Insert a job (idempotent on ``job_id``: a second call returns the first row)."""
        stmt = (
            postgresql.insert(jobs)
            .values(
                job_id=job_id,
                kind=kind,
                source=source,
                api_key_id=api_key_id,
                meta=meta,
                expected_total=expected_total,
                sealed_at=sa.func.now() if sealed else None,
                created_at=sa.func.now(),
            )
            .on_conflict_do_nothing()
        )
        with self.engine.begin() as conn:
            conn.execute(stmt)
            return _job(conn.execute(sa.select(jobs).where(jobs.c.job_id == job_id)).one())

    def seal_job(self, job_id: str, expected_total: int, meta: dict[str, Any]) -> None:
        """Record the job's final total (and merge ``meta`` into its meta)."""
        self._update(job_id, meta, expected_total=expected_total, sealed_at=sa.func.now())

    def fail_job(self, job_id: str, reason: str, meta: dict[str, Any] | None = None) -> None:
        self._update(job_id, {**(meta or {}), "status": "failed", "error": reason})

    def reopen_job(self, job_id: str) -> None:
        """Clear a failure (a retried request is producing the job again)."""
        with self.engine.begin() as conn:
            row = conn.execute(
                sa.select(jobs.c.meta).where(jobs.c.job_id == job_id).with_for_update()
            ).first()
            if row is None:
                return
            meta = {
                k: v
                for k, v in dict(row._mapping["meta"] or {}).items()
                if k not in ("status", "error")
            }
            conn.execute(jobs.update().where(jobs.c.job_id == job_id).values(meta=meta))

    def _update(self, job_id: str, meta: dict[str, Any], **values: Any) -> None:
        with self.engine.begin() as conn:
            row = conn.execute(
                sa.select(jobs.c.meta).where(jobs.c.job_id == job_id).with_for_update()
            ).first()
            if row is None:
                return
            merged = {**dict(row._mapping["meta"] or {}), **meta}
            conn.execute(jobs.update().where(jobs.c.job_id == job_id).values(meta=merged, **values))

    def get_job(self, job_id: str) -> JobRow | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(jobs).where(jobs.c.job_id == job_id)).first()
        return None if row is None else _job(row)

    def get_jobs(self, job_ids: Sequence[str]) -> list[JobRow]:
        """The rows of these jobs that exist (in no particular order)."""
        if not job_ids:
            return []
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(jobs).where(jobs.c.job_id.in_(list(job_ids)))).all()
        return [_job(r) for r in rows]

    def list_jobs(
        self, api_key_id: str | None, *, limit: int = 50, before: datetime | None = None
    ) -> list[JobRow]:
        """Newest first; ``api_key_id`` None lists every job (admin)."""
        stmt = sa.select(jobs).order_by(jobs.c.created_at.desc(), jobs.c.job_id).limit(limit)
        if api_key_id is not None:
            stmt = stmt.where(jobs.c.api_key_id == api_key_id)
        if before is not None:
            stmt = stmt.where(jobs.c.created_at < before)
        with self.engine.connect() as conn:
            return [_job(r) for r in conn.execute(stmt).all()]

    # ------------------------------------------------------------------ webhook receipts

    def lock_webhook(self, dedupe_key: str) -> WebhookReceipt:
        """Lock a delivery's natural key (until the receipt is recorded or closed) and say
        whether it was received before; see :class:`WebhookReceipt`."""
        return WebhookReceipt(self.engine, dedupe_key)

    def webhook_seen(self, dedupe_key: str) -> str | None:
        """The event id recorded for a delivery's natural key, if it was received before."""
        stmt = sa.select(webhook_receipts.c.event_id).where(
            webhook_receipts.c.dedupe_key == dedupe_key
        )
        with self.engine.connect() as conn:
            value = conn.execute(stmt).scalar()
        return None if value is None else str(value)

    def record_webhook(self, dedupe_key: str, event_id: str, event_type: str) -> None:
        """Remember a delivery (after its event was acknowledged by the broker)."""
        stmt = (
            postgresql.insert(webhook_receipts)
            .values(
                dedupe_key=dedupe_key,
                event_id=event_id,
                event_type=event_type,
                received_at=sa.func.now(),
            )
            .on_conflict_do_nothing()
        )
        with self.engine.begin() as conn:
            conn.execute(stmt)

    def purge_webhooks(self, older_than: timedelta) -> int:
        stmt = webhook_receipts.delete().where(
            webhook_receipts.c.received_at < sa.func.now() - older_than
        )
        with self.engine.begin() as conn:
            return conn.execute(stmt).rowcount


WEBHOOK_LOCK_SPACE = 0x1B150
"""First key of the PostgreSQL advisory locks on webhook natural keys (the second is the
key's ``hashtext``), so they cannot collide with another use of advisory locks."""


class WebhookReceipt:
    """One delivery being handled: its natural key locked with a transaction-scoped advisory
    lock, so copies of a delivery arriving together — at this process or another instance —
    are handled one after the other, and all but the first find it ``seen``.

    The receipt is written in the same transaction (:meth:`record`, after the broker acked
    the event), which also releases the lock; :meth:`close` releases it without a receipt (the
    event was not acknowledged: the sender's retry must be accepted). Holds one pooled
    connection from construction to :meth:`record`/:meth:`close`. Not for concurrent use.
    """

    def __init__(self, engine: sa.Engine, dedupe_key: str) -> None:
        self.dedupe_key = dedupe_key
        self._conn = engine.connect()
        try:
            self._tx = self._conn.begin()
            lock = sa.func.pg_advisory_xact_lock(WEBHOOK_LOCK_SPACE, sa.func.hashtext(dedupe_key))
            self._conn.execute(sa.select(lock))
            value = self._conn.execute(
                sa.select(webhook_receipts.c.event_id).where(
                    webhook_receipts.c.dedupe_key == dedupe_key
                )
            ).scalar()
        except BaseException:
            self._conn.close()
            raise
        self.seen: str | None = None if value is None else str(value)
        """The event id of the earlier delivery with this key, if there was one."""

    def record(self, event_id: str, event_type: str) -> None:
        """Remember the delivery and release the lock."""
        self._conn.execute(
            postgresql.insert(webhook_receipts)
            .values(
                dedupe_key=self.dedupe_key,
                event_id=event_id,
                event_type=event_type,
                received_at=sa.func.now(),
            )
            .on_conflict_do_nothing()
        )
        self._tx.commit()

    def close(self) -> None:
        """Release the lock (and the connection); a receipt not recorded is not kept."""
        try:
            if self._tx.is_active:
                self._tx.rollback()
        finally:
            self._conn.close()
