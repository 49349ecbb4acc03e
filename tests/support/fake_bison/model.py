"""The fake Email Bison's data: workspaces and keys, leads, campaigns, custom variables,
replies, webhook subscriptions — and what tests count (creations, attach sends)."""

from __future__ import annotations

import itertools
import re
import secrets
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


@dataclass
class Lead:
    id: int
    workspace_id: int
    email: str
    first_name: str | None = None
    last_name: str | None = None
    title: str | None = None
    company: str | None = None
    notes: str | None = None
    status: str = "verified"
    custom_variables: dict[str, str] = field(default_factory=dict)
    campaigns: dict[int, str] = field(default_factory=dict)  # campaign id → lead status there
    created_at: str = field(default_factory=now_iso)
    updated_at: str = field(default_factory=now_iso)

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "uuid": f"lead-{self.id:08d}",
            "first_name": self.first_name,
            "last_name": self.last_name,
            "email": self.email,
            "title": self.title,
            "company": self.company,
            "notes": self.notes,
            "status": self.status,
            "custom_variables": [{"name": k, "value": v} for k, v in self.custom_variables.items()],
            "tags": [],
            "lead_campaign_data": [
                {"campaign_id": cid, "status": st} for cid, st in sorted(self.campaigns.items())
            ],
            "overall_stats": {"emails_sent": 0, "opens": 0, "replies": 0},
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }


@dataclass
class Campaign:
    id: int
    workspace_id: int
    name: str
    status: str = "active"  # draft | active | paused | completed
    lead_ids: list[int] = field(default_factory=list)
    stats: dict[str, int] = field(default_factory=dict)
    max_new_leads_per_day: int = 100

    def as_json(self) -> dict[str, Any]:
        s = self.stats
        return {
            "id": self.id,
            "uuid": f"camp-{self.id:06d}",
            "name": self.name,
            "type": "outbound",
            "status": self.status,
            # some numbers come back as strings, like the real thing
            "emails_sent": str(s.get("emails_sent", 0)),
            "opened": s.get("opened", 0),
            "unique_opens": s.get("opened", 0),
            "replied": s.get("replied", 0),
            "unique_replies": s.get("replied", 0),
            "bounced": str(s.get("bounced", 0)),
            "unsubscribed": s.get("unsubscribed", 0),
            "interested": s.get("interested", 0),
            "total_leads_contacted": s.get("contacted", 0),
            "total_leads": len(self.lead_ids),
            "max_emails_per_day": 1000,
            "max_new_leads_per_day": self.max_new_leads_per_day,
            "tags": [],
            "created_at": "2026-11-01T00:00:00Z",
            "updated_at": now_iso(),
        }


@dataclass
class Data:
    """Everything the fake stores (guarded by the server's lock)."""

    workspaces: dict[int, str] = field(default_factory=dict)
    keys: dict[str, int] = field(default_factory=dict)
    leads: dict[int, Lead] = field(default_factory=dict)
    lead_by_email: dict[tuple[int, str], int] = field(default_factory=dict)
    campaigns: dict[int, Campaign] = field(default_factory=dict)
    variables: dict[int, dict[str, int]] = field(default_factory=dict)
    replies: list[dict[str, Any]] = field(default_factory=list)
    webhooks: dict[int, dict[str, Any]] = field(default_factory=dict)
    created: Counter[tuple[int, str]] = field(default_factory=Counter)
    attach_sends: Counter[tuple[int, int]] = field(default_factory=Counter)
    ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def next_id(self) -> int:
        return next(self.ids)

    def add_workspace(self, name: str) -> tuple[int, str]:
        ws = self.next_id()
        self.workspaces[ws] = name
        self.variables[ws] = {}
        return ws, self.add_key(ws)

    def add_key(self, workspace_id: int) -> str:
        key = f"{self.next_id()}|{secrets.token_hex(20)}"
        self.keys[key] = workspace_id
        return key

    def add_campaign(self, workspace_id: int, name: str, status: str = "active") -> int:
        cid = self.next_id()
        self.campaigns[cid] = Campaign(cid, workspace_id, name, status)
        return cid

    def lead_for(self, workspace_id: int, email: str) -> Lead | None:
        lid = self.lead_by_email.get((workspace_id, email.lower()))
        return None if lid is None else self.leads[lid]
