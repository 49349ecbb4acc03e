"""Open and closed batches, their members, held contacts and daily counts (tables
``batches``, ``batch_members``, ``batch_holds``, ``campaign_daily_counts``).

The batch service decides; this module only reads and writes, always inside one
:class:`BatchUnit` (one database transaction), so that a placement either happens whole or not
at all. Rows are locked in a fixed order — a campaign's daily count, then its open batch — so
instances that place contacts of the same campaign queue instead of deadlocking; the timer path
takes batches and holds with ``SKIP LOCKED`` so two instances never close or emit the same one.

Invariants the tables enforce: a contact is a member of at most one batch, ever
(``batch_members`` primary key); a campaign has at most one open batch (partial unique index).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection, Engine

from leadstream.db.contacts import unavailable_as_error


@dataclass(slots=True)
class OpenBatch:
    batch_id: str
    event_id: str
    campaign_id: str
    rule_id: str | None
    opened_at: datetime
    size: int


@dataclass(frozen=True, slots=True)
class ClosedBatch:
    batch_id: str
    event_id: str
    campaign_id: str
    rule_id: str | None
    opened_at: datetime
    closed_at: datetime
    closed_reason: str
    campaign_name: str | None


@dataclass(frozen=True, slots=True)
class Member:
    contact_id: str
    verified_event_id: str
    job_id: str | None
    contact: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Hold:
    contact_id: str
    reason: str  # no_route | daily_cap
    verified_event_id: str
    job_id: str | None
    contact: Mapping[str, Any]
    detail: str | None = None
    campaign_id: str | None = None
    rule_id: str | None = None
    hold_until: date | None = None


@dataclass(frozen=True, slots=True)
class HeldContact:
    contact_id: str
    reason: str
    detail: str | None
    campaign_id: str | None
    rule_id: str | None
    hold_until: date | None
    verified_event_id: str
    job_id: str | None
    contact: Mapping[str, Any]
    held_at: datetime
    reroute_requested_at: datetime | None
    reroute_campaign_id: str | None


class BatchUnit:
    """The batch tables inside one open transaction."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    # ------------------------------------------------------------------ reads

    def placed(self, contact_ids: Sequence[str]) -> dict[str, str]:
        """Which of these contacts are already a batch member (→ ``member``) or held
        (→ ``held``)."""
        if not contact_ids:
            return {}
        rows = self.conn.execute(
            sa.text(
                """
                SELECT contact_id, 'member' FROM batch_members WHERE contact_id = ANY(CAST(:ids
                AS text[])) UNION ALL SELECT contact_id, 'held' FROM batch_holds WHERE
                contact_id = ANY(CAST(:ids AS text[])) AND released_at IS NULL
                """
            ),
            {"ids": list(contact_ids)},
        ).all()
        out: dict[str, str] = {}
        for cid, kind in rows:
            out[cid] = "member" if kind == "member" or cid not in out else out[cid]
        return out

    def origins(self, contact_ids: Sequence[str]) -> dict[str, str]:
        """Where each contact originally came from (``contacts.source``, written by the filter
        from the ContactSubmitted; ``verify`` when only the verify stage wrote the row)."""
        ids = [c for c in contact_ids if _is_uuid(c)]
        if not ids:
            return {}
        rows = self.conn.execute(
            sa.text(
                """
                SELECT CAST(contact_id AS text), source FROM contacts WHERE contact_id =
                ANY(CAST(:ids AS uuid[]))
                """
            ),
            {"ids": ids},
        ).all()
        return {r[0]: r[1] for r in rows}

    def closed_by(self, positions: Sequence[str]) -> dict[str, list[ClosedBatch]]:
        """Batches the handler closed while handling the input records at these positions
        (``topic:partition:offset``), for replays of those records."""
        if not positions:
            return {}
        rows = self.conn.execute(
            sa.text(
                """
                SELECT b.closed_by, b.batch_id, b.event_id, b.campaign_id, b.rule_id,
                b.opened_at, b.closed_at, b.closed_reason, c.name FROM batches b LEFT JOIN
                campaigns c ON c.campaign_id = b.campaign_id WHERE b.closed_by =
                ANY(CAST(:ids AS text[])) AND b.emit_via = 'handler'
                """
            ),
            {"ids": list(positions)},
        ).all()
        out: dict[str, list[ClosedBatch]] = {}
        for row in rows:
            out.setdefault(row[0], []).append(ClosedBatch(*row[1:]))
        return out

    def members(self, batch_id: str) -> list[dict[str, Any]]:
        """The BatchContact records of a batch, in the order they joined (one JSON array, so
        the client parses once rather than once per row)."""
        text = self.conn.execute(
            sa.text(
                """
                SELECT CAST(COALESCE(jsonb_agg(contact ORDER BY position), '[]') AS text) FROM
                batch_members WHERE batch_id = :b
                """
            ),
            {"b": batch_id},
        ).scalar_one()
        members: list[dict[str, Any]] = json.loads(text)
        return members

    def campaign_name(self, campaign_id: str) -> str | None:
        row = self.conn.execute(
            sa.text(
                """
                SELECT name FROM campaigns WHERE campaign_id = :c
                """
            ),
            {"c": campaign_id},
        ).first()
        return None if row is None else row[0]

    # ------------------------------------------------------------------ daily counts

    def lock_daily(self, campaign_id: str, day: date) -> int:
        """New leads already admitted for the campaign on ``day``; the row stays locked."""
        self.conn.execute(
            sa.text(
                """
                INSERT INTO campaign_daily_counts (campaign_id, day) VALUES (:c, :d) ON CONFLICT
                DO NOTHING
                """
            ),
            {"c": campaign_id, "d": day},
        )
        used = self.conn.execute(
            sa.text(
                """
                SELECT leads FROM campaign_daily_counts WHERE campaign_id = :c AND day = :d FOR
                UPDATE
                """
            ),
            {"c": campaign_id, "d": day},
        ).scalar_one()
        return int(used)

    def add_daily(self, campaign_id: str, day: date, n: int) -> None:
        if n:
            self.conn.execute(
                sa.text(
                    """
                    UPDATE campaign_daily_counts SET leads = leads + :n WHERE campaign_id = :c
                    AND day = :d
                    """
                ),
                {"c": campaign_id, "d": day, "n": n},
            )

    # ------------------------------------------------------------------ open batches

    def open_batch(self, campaign_id: str) -> OpenBatch | None:
        """The campaign's open batch, locked, or None."""
        row = self.conn.execute(
            sa.text(
                """
                SELECT batch_id, event_id, campaign_id, rule_id, opened_at, size FROM batches
                WHERE campaign_id = :c AND status = 'open' FOR UPDATE
                """
            ),
            {"c": campaign_id},
        ).first()
        return None if row is None else OpenBatch(*row)

    def create_batch(
        self,
        batch_id: str,
        event_id: str,
        campaign_id: str,
        rule_id: str | None,
        opened_at: datetime,
    ) -> OpenBatch:
        """Open a batch; if a concurrent instance opened one for the campaign first, that one
        (locked) is returned instead."""
        self.conn.execute(
            sa.text(
                """
                INSERT INTO batches (batch_id, event_id, campaign_id, rule_id, opened_at) VALUES
                (:b, :e, :c, :r, :o) ON CONFLICT DO NOTHING
                """
            ),
            {"b": batch_id, "e": event_id, "c": campaign_id, "r": rule_id, "o": opened_at},
        )
        found = self.open_batch(campaign_id)
        if found is None:  # our id existed already, closed (a replay placing nothing new)
            raise RuntimeError(f"batch {batch_id} exists and is closed")
        return found

    def add_members(self, batch: OpenBatch, members: Sequence[Member]) -> None:
        """Append members at the end of an open batch (and count them in ``batch.size``)."""
        if not members:
            return
        # One JSON document, unpacked by the server: a text[] of JSON strings would be escaped
        # element by element on the client, which costs more than the insert itself.
        rows = [
            {
                "contact_id": m.contact_id,
                "position": batch.size + i,
                "event_id": m.verified_event_id,
                "job_id": m.job_id,
                "contact": m.contact,
            }
            for i, m in enumerate(members)
        ]
        self.conn.execute(
            sa.text(
                """
                INSERT INTO batch_members (contact_id, batch_id, campaign_id, position,
                verified_event_id, job_id, contact) SELECT t.contact_id, :b, :c, t.position,
                t.event_id, t.job_id, t.contact FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS
                t(contact_id text, position int, event_id text, job_id text, contact jsonb)
                """
            ),
            {"b": batch.batch_id, "c": batch.campaign_id, "rows": json.dumps(rows)},
        )
        batch.size += len(members)
        self.conn.execute(
            sa.text(
                """
                UPDATE batches SET size = :n WHERE batch_id = :b
                """
            ),
            {"n": batch.size, "b": batch.batch_id},
        )

    def close_batch(
        self,
        batch_id: str,
        *,
        reason: str,
        closed_at: datetime,
        emit_via: str,
        closed_by: str | None = None,
    ) -> ClosedBatch:
        row = self.conn.execute(
            sa.text(
                """
                UPDATE batches SET status = 'closed', closed_reason = :reason, closed_at = :at,
                emit_via = :via, closed_by = :by WHERE batch_id = :b RETURNING
                batch_id, event_id, campaign_id, rule_id, opened_at, closed_at, closed_reason
                """
            ),
            {
                "b": batch_id,
                "reason": reason,
                "at": closed_at,
                "via": emit_via,
                "by": closed_by,
            },
        ).one()
        return ClosedBatch(
            batch_id=row[0],
            event_id=row[1],
            campaign_id=row[2],
            rule_id=row[3],
            opened_at=row[4],
            closed_at=row[5],
            closed_reason=row[6],
            campaign_name=self.campaign_name(row[2]),
        )

    def aged_open_batches(self, opened_before: datetime, limit: int = 100) -> list[OpenBatch]:
        """Open batches older than the cut-off that no other instance is closing right now."""
        rows = self.conn.execute(
            sa.text(
                """
                SELECT batch_id, event_id, campaign_id, rule_id, opened_at, size FROM batches
                WHERE status = 'open' AND size > 0 AND opened_at <= :cut ORDER BY opened_at
                LIMIT :n FOR UPDATE SKIP LOCKED
                """
            ),
            {"cut": opened_before, "n": limit},
        ).all()
        return [OpenBatch(*r) for r in rows]

    def open_batches(self, campaign_id: str | None = None) -> list[OpenBatch]:
        """Open, non-empty batches (locked, skipping those another instance holds)."""
        rows = self.conn.execute(
            sa.text(
                """
                SELECT batch_id, event_id, campaign_id, rule_id, opened_at, size FROM batches
                WHERE status = 'open' AND size > 0 AND (CAST(:c AS text) IS NULL OR campaign_id
                = :c) ORDER BY opened_at FOR UPDATE SKIP LOCKED
                """
            ),
            {"c": campaign_id},
        ).all()
        return [OpenBatch(*r) for r in rows]

    # ------------------------------------------------------------------ outbox

    def outbox(self, limit: int = 50) -> list[ClosedBatch]:
        """Closed batches the timer path must emit, locked until this unit ends."""
        rows = self.conn.execute(
            sa.text(
                """
                SELECT b.batch_id, b.event_id, b.campaign_id, b.rule_id, b.opened_at,
                b.closed_at, b.closed_reason, c.name FROM batches b LEFT JOIN campaigns c ON
                c.campaign_id = b.campaign_id WHERE b.emit_via = 'outbox' AND b.emitted_at IS
                NULL AND b.status = 'closed' ORDER BY b.closed_at LIMIT :n FOR UPDATE OF b SKIP
                LOCKED
                """
            ),
            {"n": limit},
        ).all()
        return [ClosedBatch(*r) for r in rows]

    def mark_emitted(self, batch_ids: Sequence[str]) -> None:
        if batch_ids:
            self.conn.execute(
                sa.text(
                    """
                    UPDATE batches SET emitted_at = now() WHERE batch_id = ANY(CAST(:ids AS
                    text[]))
                    """
                ),
                {"ids": list(batch_ids)},
            )
            self.conn.execute(
                sa.text(
                    "DELETE FROM batch_emit_attempts WHERE batch_id = ANY(CAST(:ids AS text[]))"
                ),
                {"ids": list(batch_ids)},
            )

    def emit_attempts(self, batch_ids: Sequence[str]) -> dict[str, dict[int, int]]:
        """Earlier emissions of these batches that were not marked: batch id → where
        ``batches.ready`` ended (partition → offset) before that emission."""
        if not batch_ids:
            return {}
        rows = self.conn.execute(
            sa.text(
                "SELECT batch_id, offsets FROM batch_emit_attempts WHERE batch_id = "
                "ANY(CAST(:ids AS text[]))"
            ),
            {"ids": list(batch_ids)},
        ).all()
        return {r[0]: {int(p): int(o) for p, o in r[1].items()} for r in rows}

    # ------------------------------------------------------------------ holds

    def hold(self, holds: Sequence[Hold]) -> None:
        """Hold contacts (a hold that exists is updated: new reason, day, detail)."""
        for h in holds:
            self.conn.execute(
                sa.text(
                    """
                    INSERT INTO batch_holds (contact_id, reason, detail, campaign_id, rule_id,
                    hold_until, verified_event_id, job_id, contact) VALUES (:cid, :reason,
                    :detail, :camp, :rule, :until, :ev, :job, CAST(:contact AS jsonb)) ON
                    CONFLICT (contact_id) DO UPDATE SET reason = EXCLUDED.reason, detail =
                    EXCLUDED.detail, campaign_id = EXCLUDED.campaign_id, rule_id =
                    EXCLUDED.rule_id, hold_until = EXCLUDED.hold_until, updated_at = now(),
                    reroute_requested_at = NULL, reroute_campaign_id = NULL WHERE
                    batch_holds.released_at IS NULL
                    """
                ),
                {
                    "cid": h.contact_id,
                    "reason": h.reason,
                    "detail": h.detail,
                    "camp": h.campaign_id,
                    "rule": h.rule_id,
                    "until": h.hold_until,
                    "ev": h.verified_event_id,
                    "job": h.job_id,
                    "contact": json.dumps(h.contact),
                },
            )

    def release(self, contact_ids: Sequence[str], batch_id: str) -> None:
        if contact_ids:
            self.conn.execute(
                sa.text(
                    """
                    UPDATE batch_holds SET released_at = now(), released_batch_id = :b,
                    updated_at = now() WHERE contact_id = ANY(CAST(:ids AS text[]))
                    """
                ),
                {"ids": list(contact_ids), "b": batch_id},
            )

    def due_holds(self, today: date, limit: int = 1000) -> list[HeldContact]:
        """Held contacts to place again: capped ones whose day has come, and those an
        operator asked to re-route. Locked (another instance skips them)."""
        rows = self.conn.execute(
            sa.text(
                """
                SELECT contact_id, reason, detail, campaign_id, rule_id, hold_until,
                verified_event_id, job_id, contact, held_at, reroute_requested_at,
                reroute_campaign_id FROM batch_holds WHERE released_at IS NULL AND ((reason =
                'daily_cap' AND hold_until <= :today) OR reroute_requested_at IS NOT NULL) ORDER
                BY held_at, contact_id LIMIT :n FOR UPDATE SKIP LOCKED
                """
            ),
            {"today": today, "n": limit},
        ).all()
        return [HeldContact(*r) for r in rows]


class BatchStore:
    """Entry point: units of work for the service, plain queries for operators."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @contextmanager
    def unit(self) -> Iterator[BatchUnit]:
        """One transaction; committed when the block ends without an exception."""
        with unavailable_as_error(), self.engine.begin() as conn:
            yield BatchUnit(conn)

    def note_emit_attempt(self, batch_ids: Sequence[str], offsets: Mapping[int, int]) -> None:
        """Record, committed at once on a connection of its own, that these batches are about
        to be emitted while ``batches.ready`` ends at ``offsets`` (kept until marked emitted)."""
        if not batch_ids:
            return
        data = json.dumps({str(p): o for p, o in offsets.items()})
        with unavailable_as_error(), self.engine.begin() as conn:
            conn.execute(
                sa.text(
                    """
                    INSERT INTO batch_emit_attempts (batch_id, offsets) SELECT b,
                    CAST(:o AS jsonb) FROM unnest(CAST(:ids AS text[])) AS b ON CONFLICT
                    (batch_id) DO UPDATE SET offsets = excluded.offsets, attempted_at = now()
                    """
                ),
                {"ids": list(batch_ids), "o": data},
            )

    def holds(self, reason: str | None = None, limit: int = 1000) -> list[HeldContact]:
        with unavailable_as_error(), self.engine.connect() as conn:
            rows = conn.execute(
                sa.text(
                    """
                    SELECT contact_id, reason, detail, campaign_id, rule_id, hold_until,
                    verified_event_id, job_id, contact, held_at, reroute_requested_at,
                    reroute_campaign_id FROM batch_holds WHERE released_at IS NULL AND (CAST(:r
                    AS text) IS NULL OR reason = :r) ORDER BY held_at, contact_id LIMIT :n
                    """
                ),
                {"r": reason, "n": limit},
            ).all()
        return [HeldContact(*r) for r in rows]

    def request_reroute(
        self,
        contact_ids: Sequence[str] | None = None,
        *,
        reason: str | None = None,
        campaign_id: str | None = None,
    ) -> int:
        """Ask the batch service to place held contacts again (by the rules, or into
        ``campaign_id``). ``contact_ids`` None: every active hold (of ``reason``)."""
        with unavailable_as_error(), self.engine.begin() as conn:
            done = conn.execute(
                sa.text(
                    """
                    UPDATE batch_holds SET reroute_requested_at = now(), reroute_campaign_id =
                    :camp, updated_at = now() WHERE released_at IS NULL AND (CAST(:ids AS
                    text[]) IS NULL OR contact_id = ANY(CAST(:ids AS text[]))) AND (CAST(:r AS
                    text) IS NULL OR reason = :r)
                    """
                ),
                {
                    "ids": None if contact_ids is None else list(contact_ids),
                    "r": reason,
                    "camp": campaign_id,
                },
            )
            return done.rowcount

    def request_flush(self, campaign_id: str | None = None) -> int:
        """Close open batches now (reason ``flush``); the service's timer emits them."""
        with self.unit() as unit:
            batches = unit.open_batches(campaign_id)
            for b in batches:
                unit.close_batch(
                    b.batch_id, reason="flush", closed_at=_now(unit.conn), emit_via="outbox"
                )
            return len(batches)

    def batches(self, status: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        with unavailable_as_error(), self.engine.connect() as conn:
            rows = conn.execute(
                sa.text(
                    """
                    SELECT batch_id, campaign_id, status, size, opened_at, closed_at,
                    closed_reason, emit_via, emitted_at FROM batches WHERE CAST(:s AS text) IS
                    NULL OR status = :s ORDER BY opened_at DESC LIMIT :n
                    """
                ),
                {"s": status, "n": limit},
            ).mappings()
            return [dict(r) for r in rows]


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


def _now(conn: Connection) -> datetime:
    value: datetime = conn.execute(
        sa.text(
            """
            SELECT now()
            """
        )
    ).scalar_one()
    return value


__all__ = [
    "BatchStore",
    "BatchUnit",
    "ClosedBatch",
    "HeldContact",
    "Hold",
    "Member",
    "OpenBatch",
]
