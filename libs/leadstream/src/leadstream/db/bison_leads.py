"""Email Bison uploads and lead ids (tables ``bison_uploads``, ``bison_upload_items``,
``bison_leads``, ``bison_dry_run_requests``).

Every remote call of an upload is bracketed by writes here, keyed by the batch id and the
contact id, so an upload that is run again (a crash, a retry, a replay) knows exactly what
already happened:

- ``upsert_status`` set → Email Bison has the lead and ``lead_id`` is its id;
- ``attach_status = 'pending'`` → an attach call carrying the lead was *sent* and its answer
  never recorded: find out at Email Bison before sending it again;
- ``attach_status = 'attached' | 'skipped' | 'failed'`` → done, never sent again.

An upload runs under a PostgreSQL advisory lock on its batch id, so two instances (during a
rebalance) never upload the same batch at once.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Engine

from leadstream.db.contacts import unavailable_as_error


@dataclass(frozen=True, slots=True)
class UploadItem:
    contact_id: str
    email: str
    position: int
    lead_id: str | None
    upsert_status: str | None
    attach_status: str | None
    error: str | None


@dataclass(frozen=True, slots=True)
class Upload:
    batch_id: str
    campaign_id: str
    dry_run: bool
    status: str
    attempts: int
    same_source: bool  # this input record is the one that started the upload
    result: Mapping[str, Any] | None
    items: list[UploadItem]


@dataclass(frozen=True, slots=True)
class LeadRef:
    contact_id: str
    email: str
    lead_id: str


def _lock_key(batch_id: str) -> int:
    return int.from_bytes(hashlib.sha256(batch_id.encode()).digest()[:8], "big", signed=True)


class UploadStore:
    """Upload bookkeeping over an engine; every method is its own short transaction."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @contextmanager
    def exclusive(self, batch_id: str) -> Iterator[bool]:
        """Hold the batch's advisory lock for the block; yields False if another session has
        it (the caller retries later)."""
        with unavailable_as_error(), self.engine.connect() as conn:
            key = _lock_key(batch_id)
            got = bool(
                conn.execute(sa.text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar()
            )
            conn.commit()
            try:
                yield got
            finally:
                if got:
                    conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                    conn.commit()

    def begin(
        self,
        *,
        batch_id: str,
        campaign_id: str,
        dry_run: bool,
        source: tuple[str, int, int],
        contacts: Sequence[Mapping[str, Any]],
    ) -> Upload:
        """Start (or resume) the upload of a batch: one row per contact, lead ids already known
        filled in. Counts the attempt unless the upload is done."""
        topic, partition, offset = source
        with unavailable_as_error(), self.engine.begin() as conn:
            conn.execute(
                sa.text(
                    """
                    INSERT INTO bison_uploads (batch_id, campaign_id, dry_run, source_topic,
                    source_partition, source_offset) VALUES (:b, :c, :d, :t, :p, :o) ON CONFLICT
                    DO NOTHING
                    """
                ),
                {
                    "b": batch_id,
                    "c": campaign_id,
                    "d": dry_run,
                    "t": topic,
                    "p": partition,
                    "o": offset,
                },
            )
            head = conn.execute(
                sa.text(
                    """
                    UPDATE bison_uploads SET attempts = attempts + CASE WHEN status = 'done'
                    THEN 0 ELSE 1 END WHERE batch_id = :b RETURNING campaign_id, dry_run,
                    status, attempts, source_topic = :t AND source_partition = :p AND
                    source_offset = :o, result
                    """
                ),
                {"b": batch_id, "t": topic, "p": partition, "o": offset},
            ).one()
            if head[2] != "done":
                conn.execute(
                    sa.text(
                        """
                        INSERT INTO bison_upload_items (batch_id, contact_id, email, position,
                        lead_id) SELECT :b, t.contact_id, t.email, t.position, l.lead_id FROM
                        unnest(CAST(:ids AS text[]), CAST(:emails AS text[]), CAST(:pos AS
                        int[])) AS t(contact_id, email, position) LEFT JOIN bison_leads l ON
                        l.contact_id = t.contact_id ON CONFLICT DO NOTHING
                        """
                    ),
                    {
                        "b": batch_id,
                        "ids": [c["contact_id"] for c in contacts],
                        "emails": [c["email"] for c in contacts],
                        "pos": list(range(len(contacts))),
                    },
                )
            items = self._items(conn, batch_id)
        return Upload(batch_id, head[0], head[1], head[2], head[3], bool(head[4]), head[5], items)

    def items(self, batch_id: str) -> list[UploadItem]:
        with unavailable_as_error(), self.engine.connect() as conn:
            return self._items(conn, batch_id)

    @staticmethod
    def _items(conn: sa.Connection, batch_id: str) -> list[UploadItem]:
        rows = conn.execute(
            sa.text(
                """
                SELECT contact_id, email, position, lead_id, upsert_status, attach_status, error
                FROM bison_upload_items WHERE batch_id = :b ORDER BY position
                """
            ),
            {"b": batch_id},
        ).all()
        return [UploadItem(*r) for r in rows]

    def record_leads(
        self, batch_id: str, campaign_id: str, leads: Sequence[tuple[str, str, str, str]]
    ) -> None:
        """(contact id, email, lead id, upsert status) after a successful upsert call."""
        if not leads:
            return
        with unavailable_as_error(), self.engine.begin() as conn:
            params = {
                "b": batch_id,
                "c": campaign_id,
                "ids": [x[0] for x in leads],
                "emails": [x[1] for x in leads],
                "leads": [x[2] for x in leads],
                "st": [x[3] for x in leads],
            }
            conn.execute(
                sa.text(
                    """
                    UPDATE bison_upload_items i SET lead_id = t.lead_id, upsert_status = t.st,
                    error = NULL, updated_at = now() FROM unnest(CAST(:ids AS text[]),
                    CAST(:leads AS text[]), CAST(:st AS text[])) AS t(contact_id, lead_id, st)
                    WHERE i.batch_id = :b AND i.contact_id = t.contact_id
                    """
                ),
                params,
            )
            conn.execute(
                sa.text(
                    """
                    INSERT INTO bison_leads AS l (contact_id, email, lead_id, campaign_id)
                    SELECT t.contact_id, t.email, t.lead_id, :c FROM unnest(CAST(:ids AS
                    text[]), CAST(:emails AS text[]), CAST(:leads AS text[])) AS t(contact_id,
                    email, lead_id) ON CONFLICT (contact_id) DO UPDATE SET lead_id =
                    EXCLUDED.lead_id, campaign_id = EXCLUDED.campaign_id, updated_at = now()
                    """
                ),
                params,
            )

    def mark(
        self,
        batch_id: str,
        contact_ids: Sequence[str],
        *,
        upsert: str | None = None,
        attach: str | None = None,
        error: str | None = None,
        clear_attach: bool = False,
    ) -> None:
        """Set the upsert and/or attach status (and error) of some items."""
        if not contact_ids:
            return
        with unavailable_as_error(), self.engine.begin() as conn:
            conn.execute(
                sa.text(
                    """
                    UPDATE bison_upload_items SET upsert_status = COALESCE(CAST(:u AS text),
                    upsert_status), attach_status = CASE WHEN :clear THEN NULL ELSE
                    COALESCE(CAST(:a AS text), attach_status) END, error = COALESCE(CAST(:e AS
                    text), error), updated_at = now() WHERE batch_id = :b AND contact_id =
                    ANY(CAST(:ids AS text[]))
                    """
                ),
                {
                    "b": batch_id,
                    "ids": list(contact_ids),
                    "u": upsert,
                    "a": attach,
                    "e": error,
                    "clear": clear_attach,
                },
            )

    def mark_each(
        self, batch_id: str, failures: Mapping[str, str], *, column: str, status: str
    ) -> None:
        """One error message per contact (per-lead 422s)."""
        if column not in ("upsert_status", "attach_status"):
            raise ValueError(column)
        if not failures:
            return
        with unavailable_as_error(), self.engine.begin() as conn:
            conn.execute(
                sa.text(
                    """
                    UPDATE bison_upload_items i SET upsert_status = CASE WHEN :col =
                    'upsert_status' THEN :st ELSE upsert_status END, attach_status = CASE WHEN
                    :col = 'attach_status' THEN :st ELSE attach_status END, error = t.err,
                    updated_at = now() FROM unnest(CAST(:ids AS text[]), CAST(:errs AS text[]))
                    AS t(cid, err) WHERE i.batch_id = :b AND i.contact_id = t.cid
                    """
                ),
                {
                    "b": batch_id,
                    "col": column,
                    "st": status,
                    "ids": list(failures),
                    "errs": list(failures.values()),
                },
            )

    def finish(self, batch_id: str, result: Mapping[str, Any]) -> None:
        with unavailable_as_error(), self.engine.begin() as conn:
            conn.execute(
                sa.text(
                    """
                    UPDATE bison_uploads SET status = 'done', finished_at = now(), result =
                    CAST(:r AS jsonb) WHERE batch_id = :b
                    """
                ),
                {"b": batch_id, "r": json.dumps(result)},
            )

    def record_dry_run(self, batch_id: str, requests: Sequence[tuple[str, str, Any]]) -> None:
        """What a dry run would have sent: (method, path, JSON body), numbered in order."""
        with unavailable_as_error(), self.engine.begin() as conn:
            conn.execute(
                sa.text(
                    """
                    INSERT INTO bison_dry_run_requests (batch_id, seq, method, path, body)
                    VALUES (:b, :seq, :m, :p, CAST(:body AS jsonb)) ON CONFLICT DO NOTHING
                    """
                ),
                [
                    {"b": batch_id, "seq": i, "m": m, "p": p, "body": json.dumps(body)}
                    for i, (m, p, body) in enumerate(requests)
                ],
            )

    def dry_run_requests(self, batch_id: str) -> list[dict[str, Any]]:
        with unavailable_as_error(), self.engine.connect() as conn:
            rows = conn.execute(
                sa.text(
                    """
                    SELECT seq, method, path, body FROM bison_dry_run_requests WHERE batch_id =
                    :b ORDER BY seq
                    """
                ),
                {"b": batch_id},
            ).mappings()
            return [dict(r) for r in rows]

    def failures(self, limit: int = 100) -> list[dict[str, Any]]:
        """Per-lead failures and refusals, newest first (for operators)."""
        with unavailable_as_error(), self.engine.connect() as conn:
            rows = conn.execute(
                sa.text(
                    """
                    SELECT batch_id, contact_id, email, upsert_status, attach_status, error,
                    updated_at FROM bison_upload_items WHERE error IS NOT NULL ORDER BY
                    updated_at DESC LIMIT :n
                    """
                ),
                {"n": limit},
            ).mappings()
            return [dict(r) for r in rows]


__all__ = ["LeadRef", "Upload", "UploadItem", "UploadStore"]
