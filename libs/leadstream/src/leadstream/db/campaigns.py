"""Campaigns and their routing rules (tables ``campaigns``, ``campaign_stats``,
``campaign_rules``).

A rule sends verified contacts to one Email Bison campaign when every condition of its
:class:`RuleMatch` holds; rules are tried by ``priority`` (lower first), then age; the one
``is_default`` rule takes what no other rule matched. The matching itself is the batch
service's (pure) business; this module stores, validates and lists — the CLI and the ingest
admin API use it the same way.

``campaigns`` mirrors what bison-sync pulls from Email Bison (name, status, the remote object,
stats) and holds LeadStream's own ``daily_lead_cap`` per campaign.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError

from leadstream.db.contacts import unavailable_as_error
from leadstream.errors import LeadStreamError


class InvalidRuleError(LeadStreamError):
    """A routing rule that cannot be stored (bad condition, second default, unknown id)."""


def _texts(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(sorted({v.strip().lower() for v in values if v.strip()}))


@dataclass(frozen=True, slots=True)
class RuleMatch:
    """Conditions of a rule; every one that is set must hold (an empty match matches all).

    - ``source``: the contact's ``source`` (``api``, ``csv``, ``upstream:crm`` …), exact;
    - ``tags_any`` / ``tags_all``: at least one / every one of these tags (case-insensitive);
    - ``job_id``: the ingest job;
    - ``countries`` / ``states``: one of these (case-insensitive, as submitted);
    - ``fields``: custom fields that must equal these values (case-insensitive).
    """

    source: str | None = None
    tags_any: tuple[str, ...] = ()
    tags_all: tuple[str, ...] = ()
    job_id: str | None = None
    countries: tuple[str, ...] = ()
    states: tuple[str, ...] = ()
    fields: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def of(
        cls,
        *,
        source: str | None = None,
        tags_any: Iterable[str] = (),
        tags_all: Iterable[str] = (),
        job_id: str | None = None,
        countries: Iterable[str] = (),
        states: Iterable[str] = (),
        fields: Mapping[str, str] | None = None,
    ) -> RuleMatch:
        """A match with values normalized (lower-cased, de-duplicated, sorted)."""
        clean: dict[str, str] = {}
        for name, value in (fields or {}).items():
            if not name.strip():
                raise InvalidRuleError("a custom-field condition needs a field name")
            clean[name.strip()] = value.strip().lower()
        return cls(
            source=source.strip() if source and source.strip() else None,
            tags_any=_texts(tags_any),
            tags_all=_texts(tags_all),
            job_id=job_id.strip() if job_id and job_id.strip() else None,
            countries=_texts(countries),
            states=_texts(states),
            fields=clean,
        )

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RuleMatch:
        unknown = set(data) - {
            "source",
            "tags_any",
            "tags_all",
            "job_id",
            "countries",
            "states",
            "fields",
        }
        if unknown:
            raise InvalidRuleError(f"unknown rule conditions: {', '.join(sorted(unknown))}")
        return cls.of(
            source=data.get("source"),
            tags_any=data.get("tags_any") or (),
            tags_all=data.get("tags_all") or (),
            job_id=data.get("job_id"),
            countries=data.get("countries") or (),
            states=data.get("states") or (),
            fields=data.get("fields") or {},
        )

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.source:
            out["source"] = self.source
        for name in ("tags_any", "tags_all", "countries", "states"):
            if getattr(self, name):
                out[name] = list(getattr(self, name))
        if self.job_id:
            out["job_id"] = self.job_id
        if self.fields:
            out["fields"] = dict(self.fields)
        return out

    def describe(self) -> str:
        """One line for people: ``source=csv tags_any=auto,home country=us``."""
        parts = [
            f"{k}={','.join(v) if isinstance(v, list) else v}" for k, v in self.to_json().items()
        ]
        return " ".join(parts) or "(everything)"


@dataclass(frozen=True, slots=True)
class RoutingRule:
    rule_id: str
    campaign_id: str
    match: RuleMatch
    priority: int = 100
    is_default: bool = False
    enabled: bool = True
    name: str | None = None
    created_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Campaign:
    campaign_id: str
    name: str | None
    status: str | None
    daily_lead_cap: int | None
    synced_at: datetime | None
    stats: Mapping[str, Any] | None = None


def _rule(row: Sequence[Any]) -> RoutingRule:
    return RoutingRule(
        rule_id=row[0],
        campaign_id=row[1],
        match=RuleMatch.from_json(row[2] or {}),
        priority=row[3],
        is_default=row[4],
        enabled=row[5],
        name=row[6],
        created_at=row[7],
    )


class CampaignStore:
    """Rules and campaigns over an engine."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # ------------------------------------------------------------------ rules

    def add_rule(
        self,
        campaign_id: str,
        match: RuleMatch,
        *,
        priority: int = 100,
        is_default: bool = False,
        name: str | None = None,
        rule_id: str | None = None,
    ) -> RoutingRule:
        """Store a rule (a default rule may have no conditions; only one default exists)."""
        campaign_id = campaign_id.strip()
        if not campaign_id:
            raise InvalidRuleError("a rule needs an Email Bison campaign id")
        if is_default and match.to_json():
            raise InvalidRuleError(
                "the default rule takes what nothing else matched: it has no conditions"
            )
        rid = rule_id or f"r-{uuid.uuid4().hex[:10]}"
        try:
            with unavailable_as_error(), self.engine.begin() as conn:
                row = conn.execute(
                    sa.text(
                        """
                        INSERT INTO campaign_rules (rule_id, campaign_id, match, priority,
                        is_default, name) VALUES (:rid, :cid, CAST(:match AS jsonb), :prio,
                        :dflt, :name) RETURNING rule_id, campaign_id, match, priority,
                        is_default, enabled, name, created_at
                        """
                    ),
                    {
                        "rid": rid,
                        "cid": campaign_id,
                        "match": json.dumps(match.to_json()),
                        "prio": priority,
                        "dflt": is_default,
                        "name": name,
                    },
                ).one()
        except IntegrityError as exc:
            what = "a default rule already exists" if is_default else f"rule {rid} exists"
            raise InvalidRuleError(f"{what}; remove it first") from exc
        return _rule(row)

    def remove_rule(self, rule_id: str) -> bool:
        with unavailable_as_error(), self.engine.begin() as conn:
            done = conn.execute(
                sa.text(
                    """
                    DELETE FROM campaign_rules WHERE rule_id = :r
                    """
                ),
                {"r": rule_id},
            )
            return done.rowcount > 0

    def rules(self, *, enabled_only: bool = False) -> list[RoutingRule]:
        """Rules in evaluation order (priority, then creation); the default one last."""
        with unavailable_as_error(), self.engine.connect() as conn:
            rows = conn.execute(
                sa.text(
                    """
                    SELECT rule_id, campaign_id, match, priority, is_default, enabled, name,
                    created_at FROM campaign_rules WHERE enabled OR NOT :enabled_only ORDER BY
                    is_default, priority, created_at, rule_id
                    """
                ),
                {"enabled_only": enabled_only},
            ).all()
        return [_rule(r) for r in rows]

    # ------------------------------------------------------------------ campaigns

    def upsert_remote(self, campaigns: Sequence[Mapping[str, Any]]) -> int:
        """Store campaign objects as Email Bison returns them (keyed by ``id``)."""
        if not campaigns:
            return 0
        rows = [
            {
                "cid": str(c["id"]),
                "name": c.get("name"),
                "status": None if c.get("status") is None else str(c.get("status")),
                "type": None if c.get("type") is None else str(c.get("type")),
                "remote": json.dumps(c, default=str),
            }
            for c in campaigns
        ]
        with unavailable_as_error(), self.engine.begin() as conn:
            conn.execute(
                sa.text(
                    """
                    INSERT INTO campaigns AS c (campaign_id, name, status, type, remote,
                    synced_at) VALUES (:cid, :name, :status, :type, CAST(:remote AS jsonb),
                    now()) ON CONFLICT (campaign_id) DO UPDATE SET name = EXCLUDED.name, status
                    = EXCLUDED.status, type = EXCLUDED.type, remote = EXCLUDED.remote, synced_at
                    = now(), updated_at = now()
                    """
                ),
                rows,
            )
        return len(rows)

    def record_stats(
        self, campaign_id: str, start: date, end: date, stats: Mapping[str, Any]
    ) -> None:
        with unavailable_as_error(), self.engine.begin() as conn:
            conn.execute(
                sa.text(
                    """
                    INSERT INTO campaign_stats (campaign_id, start_date, end_date, stats) VALUES
                    (:cid, :start, :end, CAST(:stats AS jsonb)) ON CONFLICT (campaign_id,
                    start_date, end_date) DO UPDATE SET stats = EXCLUDED.stats, fetched_at =
                    now()
                    """
                ),
                {"cid": campaign_id, "start": start, "end": end, "stats": json.dumps(stats)},
            )

    def set_daily_cap(self, campaign_id: str, cap: int | None) -> None:
        """LeadStream's cap on new leads per day for a campaign (None: the service default)."""
        if cap is not None and cap < 0:
            raise InvalidRuleError("a daily cap is zero or more")
        with unavailable_as_error(), self.engine.begin() as conn:
            conn.execute(
                sa.text(
                    """
                    INSERT INTO campaigns (campaign_id, daily_lead_cap) VALUES (:cid, :cap) ON
                    CONFLICT (campaign_id) DO UPDATE SET daily_lead_cap =
                    EXCLUDED.daily_lead_cap, updated_at = now()
                    """
                ),
                {"cid": campaign_id, "cap": cap},
            )

    def daily_caps(self) -> dict[str, int]:
        """Campaigns that have a cap of their own."""
        with unavailable_as_error(), self.engine.connect() as conn:
            rows = conn.execute(
                sa.text(
                    """
                    SELECT campaign_id, daily_lead_cap FROM campaigns WHERE daily_lead_cap IS
                    NOT NULL
                    """
                )
            ).all()
        return {r[0]: r[1] for r in rows}

    def campaigns(self) -> list[Campaign]:
        """Every known campaign with its latest stats."""
        with unavailable_as_error(), self.engine.connect() as conn:
            rows = conn.execute(
                sa.text(
                    """
                    SELECT c.campaign_id, c.name, c.status, c.daily_lead_cap, c.synced_at,
                    s.stats FROM campaigns c LEFT JOIN LATERAL ( SELECT stats FROM
                    campaign_stats cs WHERE cs.campaign_id = c.campaign_id ORDER BY fetched_at
                    DESC LIMIT 1 ) s ON true ORDER BY c.campaign_id
                    """
                )
            ).all()
        return [Campaign(*r) for r in rows]


__all__ = ["Campaign", "CampaignStore", "InvalidRuleError", "RoutingRule", "RuleMatch"]
