"""``leadstream campaigns``: routing rules, daily caps, held contacts, batches, and what
Email Bison refused.

The batch service re-reads rules and caps every few seconds
(``LEADSTREAM_BATCH_RULES_REFRESH_S``); re-routes and flushes are picked up by its timer
(``LEADSTREAM_BATCH_TICK_S``). Nothing here needs a restart.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy import Engine

from leadstream.db.batches import BatchStore
from leadstream.db.bison_leads import UploadStore
from leadstream.db.campaigns import CampaignStore, InvalidRuleError, RuleMatch
from leadstream.db.contacts import DatabaseUnavailableError
from leadstream.db.engine import make_engine
from leadstream.settings import Settings

campaigns_app = typer.Typer(
    help="Email Bison campaigns: routing rules, caps, held contacts, batches.",
    no_args_is_help=True,
)
rules_app = typer.Typer(help="Which campaign a verified contact goes to.", no_args_is_help=True)
campaigns_app.add_typer(rules_app, name="rules")
console = Console()
err = Console(stderr=True)


@contextmanager
def _engine() -> Iterator[Engine]:
    engine = make_engine(Settings(), pool_size=1)
    try:
        yield engine
    except DatabaseUnavailableError as exc:
        err.print(f"[bold red]error:[/] {exc}", highlight=False)
        raise typer.Exit(code=1) from exc
    except InvalidRuleError as exc:
        err.print(f"[bold red]error:[/] {exc}", highlight=False)
        raise typer.Exit(code=2) from exc
    finally:
        engine.dispose()


def _fields(pairs: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            err.print(f"[bold red]error:[/] --field takes name=value, not {pair!r}")
            raise typer.Exit(code=2)
        out[name.strip()] = value
    return out


@rules_app.command("add")
def add_rule(
    campaign_id: Annotated[str, typer.Argument(help="Email Bison campaign id.")],
    source: Annotated[str | None, typer.Option(help="Contact source: api, csv, upstream:x")] = None,
    tag: Annotated[list[str] | None, typer.Option("--tag", help="Any of these tags.")] = None,
    all_tag: Annotated[
        list[str] | None, typer.Option("--all-tag", help="Every one of these tags.")
    ] = None,
    job: Annotated[str | None, typer.Option(help="Ingest job id.")] = None,
    country: Annotated[list[str] | None, typer.Option(help="One of these countries.")] = None,
    state: Annotated[list[str] | None, typer.Option(help="One of these states.")] = None,
    field: Annotated[
        list[str] | None, typer.Option(help="Custom field that must equal: name=value.")
    ] = None,
    priority: Annotated[int, typer.Option(help="Lower is tried first.")] = 100,
    default: Annotated[
        bool, typer.Option("--default", help="Take what no other rule matched.")
    ] = False,
    name: Annotated[str | None, typer.Option(help="A label for people.")] = None,
) -> None:
    """Route contacts that match every given condition to a campaign."""
    match = RuleMatch.of(
        source=source,
        tags_any=tag or (),
        tags_all=all_tag or (),
        job_id=job,
        countries=country or (),
        states=state or (),
        fields=_fields(field or []),
    )
    if not default and not match.to_json():
        err.print("[bold red]error:[/] give at least one condition, or --default")
        raise typer.Exit(code=2)
    with _engine() as engine:
        rule = CampaignStore(engine).add_rule(
            campaign_id, match, priority=priority, is_default=default, name=name
        )
    console.print(f"added rule {rule.rule_id}: {match.describe()} → campaign {campaign_id}")


@rules_app.command("list")
def list_rules() -> None:
    """Rules in the order they are tried."""
    with _engine() as engine:
        rules = CampaignStore(engine).rules()
    table = Table("rule", "priority", "conditions", "campaign", "name", "enabled")
    for r in rules:
        table.add_row(
            r.rule_id,
            "default" if r.is_default else str(r.priority),
            r.match.describe(),
            r.campaign_id,
            r.name or "",
            "yes" if r.enabled else "no",
        )
    console.print(table)
    console.print(f"{len(rules)} rules")


@rules_app.command("remove")
def remove_rule(rule_id: Annotated[str, typer.Argument(help="The rule id (r-…).")]) -> None:
    """Delete a rule."""
    with _engine() as engine:
        removed = CampaignStore(engine).remove_rule(rule_id)
    if not removed:
        err.print(f"[bold red]error:[/] no rule {rule_id}")
        raise typer.Exit(code=1)
    console.print(f"removed rule {rule_id}")


@campaigns_app.command("list")
def list_campaigns() -> None:
    """Campaigns known from Email Bison (synced every 15 minutes) and their latest stats."""
    with _engine() as engine:
        campaigns = CampaignStore(engine).campaigns()
    table = Table("campaign", "name", "status", "daily cap", "sent", "replied", "bounced", "synced")
    for c in campaigns:
        s = c.stats or {}
        table.add_row(
            c.campaign_id,
            c.name or "",
            c.status or "",
            "" if c.daily_lead_cap is None else str(c.daily_lead_cap),
            str(s.get("emails_sent", "")),
            str(s.get("unique_replies_per_contact", "")),
            str(s.get("bounced", "")),
            f"{c.synced_at:%Y-%m-%d %H:%M}" if c.synced_at else "never",
        )
    console.print(table)
    console.print(f"{len(campaigns)} campaigns")


@campaigns_app.command("cap")
def set_cap(
    campaign_id: Annotated[str, typer.Argument(help="Email Bison campaign id.")],
    leads_per_day: Annotated[
        int | None, typer.Argument(help="New leads per day; omit to use the default.")
    ] = None,
) -> None:
    """Cap the new leads a campaign gets per day (the excess is held for the next day)."""
    with _engine() as engine:
        CampaignStore(engine).set_daily_cap(campaign_id, leads_per_day)
    what = "the service default" if leads_per_day is None else f"{leads_per_day} per day"
    console.print(f"campaign {campaign_id}: daily cap {what}")


@campaigns_app.command("held")
def held(
    reason: Annotated[str | None, typer.Option(help="no_route or daily_cap")] = None,
    limit: Annotated[int, typer.Option(help="At most this many.")] = 100,
) -> None:
    """Contacts the batch stage holds, and why."""
    with _engine() as engine:
        holds = BatchStore(engine).holds(reason, limit)
    table = Table("contact", "email", "reason", "detail", "until", "held", "re-route asked")
    for h in holds:
        contact = h.contact.get("batch_contact") or {}
        table.add_row(
            h.contact_id,
            str(contact.get("email", "")),
            h.reason,
            h.detail or "",
            str(h.hold_until or ""),
            f"{h.held_at:%Y-%m-%d %H:%M}",
            "yes" if h.reroute_requested_at else "",
        )
    console.print(table)
    console.print(f"{len(holds)} held")


@campaigns_app.command("reroute")
def reroute(
    contact_ids: Annotated[
        list[str] | None, typer.Argument(help="Contact ids; none = every held contact.")
    ] = None,
    reason: Annotated[str | None, typer.Option(help="Only holds with this reason.")] = None,
    campaign: Annotated[
        str | None, typer.Option(help="Put them in this campaign instead of routing again.")
    ] = None,
) -> None:
    """Place held contacts again: by the current rules, or into --campaign."""
    with _engine() as engine:
        n = BatchStore(engine).request_reroute(
            contact_ids or None, reason=reason, campaign_id=campaign
        )
    console.print(f"{n} held contacts will be placed again by the batch service's next tick")


@campaigns_app.command("flush")
def flush(
    campaign: Annotated[str | None, typer.Option(help="Only this campaign's open batch.")] = None,
) -> None:
    """Close open batches now (reason ``flush``); the batch service emits them."""
    with _engine() as engine:
        n = BatchStore(engine).request_flush(campaign)
    console.print(f"closed {n} open batches")


@campaigns_app.command("batches")
def batches(
    status: Annotated[str | None, typer.Option(help="open or closed")] = None,
    limit: Annotated[int, typer.Option(help="At most this many.")] = 50,
) -> None:
    """Recent batches."""
    with _engine() as engine:
        rows = BatchStore(engine).batches(status, limit)
    table = Table("batch", "campaign", "status", "size", "opened", "closed", "reason", "emitted")
    for b in rows:
        table.add_row(
            b["batch_id"],
            b["campaign_id"],
            b["status"],
            str(b["size"]),
            f"{b['opened_at']:%Y-%m-%d %H:%M:%S}",
            f"{b['closed_at']:%Y-%m-%d %H:%M:%S}" if b["closed_at"] else "",
            b["closed_reason"] or "",
            b["emit_via"] or "",
        )
    console.print(table)


@campaigns_app.command("failures")
def failures(
    limit: Annotated[int, typer.Option(help="At most this many.")] = 100,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
) -> None:
    """Leads Email Bison refused (per-lead 422s, other sequences, bounced): not retried."""
    with _engine() as engine:
        rows = UploadStore(engine).failures(limit)
    if as_json:
        for r in rows:
            console.print(json.dumps(r, default=str), highlight=False, soft_wrap=True)
        return
    table = Table("batch", "email", "upsert", "attach", "error")
    for r in rows:
        table.add_row(
            r["batch_id"],
            r["email"],
            r["upsert_status"] or "",
            r["attach_status"] or "",
            r["error"],
        )
    console.print(table)
    console.print(f"{len(rows)} refused leads")
