"""Put routed contacts into batches, inside one database unit of work.

Per campaign, in campaign order (the lock order every writer uses): lock the day's count,
admit what the daily cap allows and hold the rest for the next day, append the admitted
contacts to the open batch (opening one when there is none) and close every batch that
reaches the maximum size. Already-placed contacts are the caller's business (it filters them
out first), so a replay places nothing twice.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from zoneinfo import ZoneInfo

from leadstream.db.batches import BatchUnit, ClosedBatch, Hold, Member, OpenBatch
from leadstream_batch.candidate import Candidate
from leadstream_batch.closing import (
    batch_event_id,
    batch_id,
    cap_split,
    fill,
    local_day,
    next_day,
)
from leadstream_batch.routing import NoRoute, Route


@dataclass(frozen=True, slots=True)
class Policy:
    max_size: int
    zone: ZoneInfo
    default_cap: int | None = None
    caps: Mapping[str, int] = field(default_factory=dict)

    def cap(self, campaign_id: str) -> int | None:
        return self.caps.get(campaign_id, self.default_cap)


@dataclass
class Placement:
    """What one call did."""

    closed: dict[str, list[ClosedBatch]] = field(default_factory=dict)  # by closing key
    batched: dict[str, list[str]] = field(default_factory=dict)  # batch id → contact ids
    held: list[Hold] = field(default_factory=list)

    def all_closed(self) -> list[ClosedBatch]:
        return [b for group in self.closed.values() for b in group]


def place(
    unit: BatchUnit,
    routed: Sequence[tuple[Candidate, Route | NoRoute]],
    *,
    now: datetime,
    policy: Policy,
    emit_via: str,
) -> Placement:
    """Place every routed candidate (each at most once in ``routed``)."""
    result = Placement()
    by_campaign: dict[str, list[tuple[Candidate, Route]]] = {}
    for cand, decision in routed:
        if isinstance(decision, NoRoute):
            result.held.append(_hold(cand, "no_route", decision.detail))
        else:
            by_campaign.setdefault(decision.campaign_id, []).append((cand, decision))
    day = local_day(now, policy.zone)
    for campaign in sorted(by_campaign):
        items = by_campaign[campaign]
        cap = policy.cap(campaign)
        used = unit.lock_daily(campaign, day)
        admit, _excess = cap_split(used, cap, len(items))
        for cand, r in items[admit:]:
            result.held.append(
                _hold(
                    cand,
                    "daily_cap",
                    f"campaign {campaign}: daily cap of {cap} new leads reached on {day}",
                    campaign_id=campaign,
                    rule_id=r.rule_id,
                    hold_until=next_day(day),
                )
            )
        unit.add_daily(campaign, day, admit)
        _fill(unit, campaign, items[:admit], now, policy.max_size, emit_via, result)
    unit.hold(result.held)
    return result


def _fill(
    unit: BatchUnit,
    campaign: str,
    items: Sequence[tuple[Candidate, Route]],
    now: datetime,
    max_size: int,
    emit_via: str,
    result: Placement,
) -> None:
    if not items:
        return
    batch: OpenBatch | None = unit.open_batch(campaign)
    pos = 0
    for chunk in fill(batch.size if batch else 0, len(items), max_size):
        part = items[pos : pos + chunk.count]
        pos += chunk.count
        if batch is None:
            first, first_route = part[0]
            bid = batch_id(campaign, first.verified_event_id)
            batch = unit.create_batch(bid, batch_event_id(bid), campaign, first_route.rule_id, now)
        unit.add_members(
            batch,
            [Member(c.contact_id, c.verified_event_id, c.job_id, c.contact) for c, _ in part],
        )
        result.batched.setdefault(batch.batch_id, []).extend(c.contact_id for c, _ in part)
        if chunk.closes:
            closing = part[-1][0].closing_key
            closed = unit.close_batch(
                batch.batch_id, reason="size", closed_at=now, emit_via=emit_via, closed_by=closing
            )
            result.closed.setdefault(closing, []).append(closed)
            batch = None


def _hold(
    cand: Candidate,
    reason: str,
    detail: str,
    *,
    campaign_id: str | None = None,
    rule_id: str | None = None,
    hold_until: date | None = None,
) -> Hold:
    return Hold(
        contact_id=cand.contact_id,
        reason=reason,
        verified_event_id=cand.verified_event_id,
        job_id=cand.job_id,
        contact=cand.hold_payload(),
        detail=detail,
        campaign_id=campaign_id,
        rule_id=rule_id,
        hold_until=hold_until,
    )
