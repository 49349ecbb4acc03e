"""Admin routes (scope ``admin``) for what the batch service routes by: campaign routing rules,
daily caps, the contacts it holds, and closing open batches.

The same stores as ``leadstream campaigns`` (:class:`~leadstream.db.campaigns.CampaignStore`,
:class:`~leadstream.db.batches.BatchStore`); the batch service re-reads rules and caps every
few seconds and picks up re-routes and flushes on its next tick, so nothing needs a restart.
Every change is recorded on ``audit.events`` with the admin key as the actor.
"""

from __future__ import annotations

import time
import uuid
from datetime import date, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field, field_validator
from starlette.concurrency import run_in_threadpool

from leadstream.db.batches import BatchStore
from leadstream.db.campaigns import (
    Campaign,
    CampaignStore,
    InvalidRuleError,
    RoutingRule,
    RuleMatch,
)
from leadstream_ingest.auth import AdminKey, Principal
from leadstream_ingest.deps import ServicesDep
from leadstream_ingest.errors import InvalidInput, NotFound
from leadstream_ingest.services import Services

router = APIRouter(prefix="/v1/admin", tags=["admin: campaigns"])

AUTH_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "No valid key"},
    403: {"description": "Not an admin key"},
}
# No control characters (PostgreSQL text and jsonb refuse NUL; the others are never meant).
Text = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f]+$")]
Value = Annotated[str, Field(max_length=1000, pattern=r"^[^\x00-\x1f\x7f]*$")]
Texts = Annotated[list[Text], Field(max_length=100)]
RuleId = Annotated[str, Path(pattern=r"^r-[A-Za-z0-9_-]{1,64}$", description="A rule id (r-…).")]
CampaignId = Annotated[
    str,
    Path(
        min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f]+$", description="Email Bison id"
    ),
]
HoldReason = Literal["no_route", "daily_cap"]


class RuleConditions(BaseModel):
    """Every condition that is set must hold; none set matches everything."""

    model_config = ConfigDict(extra="forbid")

    source: Text | None = Field(None, description="The contact's source: api, csv, upstream:x")
    tags_any: Texts = Field(default_factory=list, description="At least one of these tags")
    tags_all: Texts = Field(default_factory=list, description="Every one of these tags")
    job_id: Text | None = Field(None, description="The ingest job")
    countries: Texts = Field(default_factory=list, description="One of these countries")
    states: Texts = Field(default_factory=list, description="One of these states")
    fields: dict[Text, Value] = Field(
        default_factory=dict, max_length=50, description="Custom fields that must equal these"
    )


class RuleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    campaign_id: Text = Field(description="The Email Bison campaign id")
    conditions: RuleConditions = Field(default_factory=RuleConditions)
    priority: int = Field(100, ge=-1_000_000, le=1_000_000, description="Lower is tried first")
    default: bool = Field(False, description="Takes what no other rule matched (no conditions)")
    name: Value | None = None


class RuleOut(BaseModel):
    rule_id: str
    campaign_id: str
    conditions: dict[str, Any]
    description: str
    priority: int
    default: bool
    enabled: bool
    name: str | None
    created_at: datetime | None


class RuleList(BaseModel):
    rules: list[RuleOut] = Field(description="In the order they are tried; the default last")


class CampaignOut(BaseModel):
    campaign_id: str
    name: str | None
    status: str | None
    daily_lead_cap: int | None
    synced_at: datetime | None
    stats: dict[str, Any] | None


class CampaignList(BaseModel):
    campaigns: list[CampaignOut]


class DailyCapIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    leads_per_day: int | None = Field(
        ge=0, le=10_000_000, description="New leads per day; null: the service default"
    )


class HeldOut(BaseModel):
    contact_id: str
    reason: str
    detail: str | None
    campaign_id: str | None
    rule_id: str | None
    hold_until: date | None
    job_id: str | None
    email: str | None
    held_at: datetime
    reroute_requested_at: datetime | None
    reroute_campaign_id: str | None


class HeldList(BaseModel):
    held: list[HeldOut]


class RerouteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    contact_ids: Annotated[list[Text], Field(max_length=10_000)] | None = Field(
        None, description="These held contacts; omitted: every held contact (of `reason`)"
    )
    reason: HoldReason | None = Field(None, description="Only holds with this reason")
    campaign_id: Text | None = Field(
        None, description="Put them in this campaign instead of routing them again"
    )

    @field_validator("contact_ids")
    @classmethod
    def _not_empty(cls, ids: list[str] | None) -> list[str] | None:
        if ids is not None and not ids:
            raise ValueError("give at least one contact id, or omit contact_ids for all")
        return ids


class Count(BaseModel):
    count: int


def _rule_out(rule: RoutingRule) -> RuleOut:
    return RuleOut(
        rule_id=rule.rule_id,
        campaign_id=rule.campaign_id,
        conditions=rule.match.to_json(),
        description=rule.match.describe(),
        priority=rule.priority,
        default=rule.is_default,
        enabled=rule.enabled,
        name=rule.name,
        created_at=rule.created_at,
    )


def _campaign_out(c: Campaign) -> CampaignOut:
    return CampaignOut(
        campaign_id=c.campaign_id,
        name=c.name,
        status=c.status,
        daily_lead_cap=c.daily_lead_cap,
        synced_at=c.synced_at,
        stats=dict(c.stats) if c.stats else None,
    )


def _audit(
    services: Services,
    request: Request,
    principal: Principal,
    action: str,
    target_type: str,
    target_id: str,
    details: dict[str, str],
) -> None:
    """Record an admin change on ``audit.events`` (fire and forget, like request logs: the
    change is already committed in Postgres, and the request log records the call anyway)."""
    event_id = str(uuid.uuid4())
    services.producer.send_nowait(
        "audit.events",
        {
            "event_id": event_id,
            "job_id": None,
            "source": "ingest",
            "event_time": int(time.time() * 1000),
            "actor": f"api_key:{principal.key_id}",
            "action": action,
            "target_type": target_type,
            "target_id": target_id,
            "request_id": getattr(request.state, "request_id", None),
            "outcome": "ok",
            "details": details,
        },
        event_id,
    )


@router.get(
    "/routing-rules",
    response_model=RuleList,
    responses=AUTH_ERRORS,
    summary="List campaign routing rules (admin)",
)
async def list_rules(principal: AdminKey, services: ServicesDep) -> RuleList:
    rules = await run_in_threadpool(CampaignStore(services.engine).rules)
    return RuleList(rules=[_rule_out(r) for r in rules])


@router.post(
    "/routing-rules",
    response_model=RuleOut,
    status_code=201,
    responses={**AUTH_ERRORS, 422: {"description": "Invalid rule, or a second default"}},
    summary="Add a campaign routing rule (admin)",
)
async def add_rule(
    body: RuleIn, request: Request, principal: AdminKey, services: ServicesDep
) -> RuleOut:
    """Route verified contacts that match every condition to a campaign. A rule needs at
    least one condition unless it is the (single) default rule, which has none."""
    try:
        match = RuleMatch.from_json(body.conditions.model_dump(exclude_defaults=True))
    except InvalidRuleError as exc:
        raise InvalidInput(str(exc), code="invalid_rule") from exc
    if not body.default and not match.to_json():
        raise InvalidInput(
            "give at least one condition, or make it the default rule", code="invalid_rule"
        )

    def add() -> RoutingRule:
        return CampaignStore(services.engine).add_rule(
            body.campaign_id,
            match,
            priority=body.priority,
            is_default=body.default,
            name=body.name,
        )

    try:
        rule = await run_in_threadpool(add)
    except InvalidRuleError as exc:
        raise InvalidInput(str(exc), code="invalid_rule") from exc
    _audit(
        services,
        request,
        principal,
        "rule.created",
        "routing_rule",
        rule.rule_id,
        {"campaign_id": rule.campaign_id, "conditions": match.describe()},
    )
    return _rule_out(rule)


@router.delete(
    "/routing-rules/{rule_id}",
    status_code=204,
    response_class=Response,
    responses={**AUTH_ERRORS, 404: {"description": "No such rule"}},
    summary="Remove a campaign routing rule (admin)",
)
async def remove_rule(
    rule_id: RuleId, request: Request, principal: AdminKey, services: ServicesDep
) -> Response:
    removed = await run_in_threadpool(CampaignStore(services.engine).remove_rule, rule_id)
    if not removed:
        raise NotFound(f"no routing rule {rule_id}", code="rule_not_found")
    _audit(services, request, principal, "rule.removed", "routing_rule", rule_id, {})
    return Response(status_code=204)


@router.get(
    "/campaigns",
    response_model=CampaignList,
    responses=AUTH_ERRORS,
    summary="Campaigns with their daily caps and latest stats (admin)",
)
async def list_campaigns(principal: AdminKey, services: ServicesDep) -> CampaignList:
    """Campaigns as last synced from Email Bison, plus the ones given a cap here."""
    campaigns = await run_in_threadpool(CampaignStore(services.engine).campaigns)
    return CampaignList(campaigns=[_campaign_out(c) for c in campaigns])


@router.put(
    "/campaigns/{campaign_id}/daily-cap",
    response_model=DailyCapIn,
    responses=AUTH_ERRORS,
    summary="Set a campaign's cap on new leads per day (admin)",
)
async def set_daily_cap(
    campaign_id: CampaignId,
    body: DailyCapIn,
    request: Request,
    principal: AdminKey,
    services: ServicesDep,
) -> DailyCapIn:
    """Contacts over the cap are held (reason ``daily_cap``) until the next day."""
    await run_in_threadpool(
        CampaignStore(services.engine).set_daily_cap, campaign_id, body.leads_per_day
    )
    cap = "default" if body.leads_per_day is None else str(body.leads_per_day)
    _audit(services, request, principal, "campaign.cap_set", "campaign", campaign_id, {"cap": cap})
    return body


@router.get(
    "/held",
    response_model=HeldList,
    responses=AUTH_ERRORS,
    summary="Contacts the batch service holds, and why (admin)",
)
async def list_held(
    principal: AdminKey,
    services: ServicesDep,
    reason: Annotated[HoldReason | None, Query(description="Only this reason")] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
) -> HeldList:
    """``no_route``: no rule matched and there is no default; ``daily_cap``: over the
    campaign's cap, placed again on ``hold_until``."""
    holds = await run_in_threadpool(BatchStore(services.engine).holds, reason, limit)
    out = []
    for h in holds:
        contact = h.contact.get("batch_contact") or {}
        email = contact.get("email")
        out.append(
            HeldOut(
                contact_id=h.contact_id,
                reason=h.reason,
                detail=h.detail,
                campaign_id=h.campaign_id,
                rule_id=h.rule_id,
                hold_until=h.hold_until,
                job_id=h.job_id,
                email=email if isinstance(email, str) else None,
                held_at=h.held_at,
                reroute_requested_at=h.reroute_requested_at,
                reroute_campaign_id=h.reroute_campaign_id,
            )
        )
    return HeldList(held=out)


@router.post(
    "/held/reroute",
    response_model=Count,
    status_code=202,
    responses=AUTH_ERRORS,
    summary="Place held contacts again (admin)",
)
async def reroute(
    body: RerouteIn, request: Request, principal: AdminKey, services: ServicesDep
) -> Count:
    """By the current rules, or into ``campaign_id``; the batch service does it on its next
    tick. Returns how many held contacts were marked."""

    def mark() -> int:
        return BatchStore(services.engine).request_reroute(
            body.contact_ids, reason=body.reason, campaign_id=body.campaign_id
        )

    n = await run_in_threadpool(mark)
    _audit(
        services,
        request,
        principal,
        "held.reroute_requested",
        "batch_holds",
        body.campaign_id or "rules",
        {"count": str(n), "reason": body.reason or "any"},
    )
    return Count(count=n)


@router.post(
    "/batches/flush",
    response_model=Count,
    responses=AUTH_ERRORS,
    summary="Close open batches now (admin)",
)
async def flush(
    request: Request,
    principal: AdminKey,
    services: ServicesDep,
    campaign_id: Annotated[
        str | None,
        Query(
            min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f]+$", description="Only this"
        ),
    ] = None,
) -> Count:
    """Closed with reason ``flush``; the batch service emits them on its next tick."""
    n = await run_in_threadpool(BatchStore(services.engine).request_flush, campaign_id)
    _audit(
        services,
        request,
        principal,
        "batches.flushed",
        "batches",
        campaign_id or "all",
        {"count": str(n)},
    )
    return Count(count=n)
