"""Things that happen at the fake Email Bison after leads are uploaded — sends, replies,
bounces, unsubscribes — and the webhooks they deliver to the subscribed URLs."""

from __future__ import annotations

from typing import Any

import httpx

from tests.support.fake_bison.fake import FakeBison
from tests.support.fake_bison.model import Lead, now_iso

NAMES = {
    "email_sent": "Email Sent",
    "lead_first_contacted": "Lead First Contacted",
    "lead_replied": "Lead Replied",
    "lead_interested": "Lead Interested",
    "lead_unsubscribed": "Lead Unsubscribed",
    "email_bounced": "Email Bounced",
}


class WebhookSender:
    """Acts on the fake's data and delivers webhooks synchronously (``deliveries`` keeps
    every payload with the HTTP status each subscriber answered)."""

    def __init__(self, fake: FakeBison, timeout_s: float = 15.0) -> None:
        self.fake = fake
        self._http = httpx.Client(timeout=timeout_s)
        self.deliveries: list[tuple[str, dict[str, Any], int | None]] = []

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> WebhookSender:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ happenings

    def email_sent(self, ws: int, email: str, campaign_id: int) -> dict[str, Any]:
        with self.fake.lock:
            lead = self._lead(ws, email)
            stats = self.fake.data.campaigns[campaign_id].stats
            stats["emails_sent"] = stats.get("emails_sent", 0) + 1
            stats["contacted"] = stats.get("contacted", 0) + 1
            lead.campaigns[campaign_id] = "contacted"
        self._emit(ws, "lead_first_contacted", lead, campaign_id)
        return self._emit(ws, "email_sent", lead, campaign_id)

    def reply(
        self,
        ws: int,
        email: str,
        text: str,
        *,
        campaign_id: int | None = None,
        interested: bool = False,
        automated: bool = False,
    ) -> dict[str, Any]:
        with self.fake.lock:
            lead = self._lead(ws, email)
            reply = self._add_reply(ws, lead, campaign_id, text, "inbox", interested, automated)
            if campaign_id:
                stats = self.fake.data.campaigns[campaign_id].stats
                stats["replied"] = stats.get("replied", 0) + 1
        payload = self._emit(ws, "lead_replied", lead, campaign_id, reply)
        if interested:
            self._emit(ws, "lead_interested", lead, campaign_id, reply)
        return payload

    def bounce(self, ws: int, email: str, campaign_id: int | None = None) -> dict[str, Any]:
        with self.fake.lock:
            lead = self._lead(ws, email)
            lead.status = "bounced"
            text = f"Delivery to {email} failed permanently: 550 5.1.1 user unknown"
            reply = self._add_reply(ws, lead, campaign_id, text, "bounced", False, True)
            if campaign_id:
                stats = self.fake.data.campaigns[campaign_id].stats
                stats["bounced"] = stats.get("bounced", 0) + 1
        return self._emit(ws, "email_bounced", lead, campaign_id, reply)

    def unsubscribe(self, ws: int, email: str, campaign_id: int | None = None) -> dict[str, Any]:
        with self.fake.lock:
            lead = self._lead(ws, email)
            lead.status = "unsubscribed"
        return self._emit(ws, "lead_unsubscribed", lead, campaign_id)

    # ------------------------------------------------------------------ plumbing

    def _lead(self, ws: int, email: str) -> Lead:
        lead = self.fake.data.lead_for(ws, email)
        if lead is None:
            raise KeyError(f"no lead {email} in workspace {ws}")
        return lead

    def _add_reply(
        self,
        ws: int,
        lead: Lead,
        campaign_id: int | None,
        text: str,
        folder: str,
        interested: bool,
        automated: bool,
    ) -> dict[str, Any]:
        rid = self.fake.data.next_id()
        reply = {
            "id": rid,
            "uuid": f"reply-{rid:08d}",
            "subject": "Re: our conversation",
            "text_body": text,
            "html_body": f"<p>{text}</p>",
            "interested": interested,
            "automated_reply": automated,
            "from_email_address": lead.email,
            "campaign_id": campaign_id,
            "lead_id": lead.id,
            "folder": folder,
            "type": "bounce" if folder == "bounced" else "reply",
            "date_received": now_iso(),
            "workspace_id": ws,
        }
        self.fake.data.replies.append(reply)
        return reply

    def _emit(
        self,
        ws: int,
        event_type: str,
        lead: Lead,
        campaign_id: int | None,
        reply: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        with self.fake.lock:
            data = self.fake.data
            campaign = data.campaigns.get(campaign_id) if campaign_id else None
            body: dict[str, Any] = {
                "lead": {
                    "id": lead.id,
                    "email": lead.email,
                    "first_name": lead.first_name,
                    "last_name": lead.last_name,
                    "status": lead.status,
                },
                "campaign": None
                if campaign is None
                else {"id": campaign.id, "name": campaign.name},
                "scheduled_email": {"id": data.next_id()},
                "campaign_event": {
                    "id": data.next_id(),
                    "type": event_type,
                    "created_at": now_iso(),
                },
                "sender_email": {"id": 1, "email": "sender@agency.example"},
            }
            if reply is not None:
                body["reply"] = {k: v for k, v in reply.items() if k != "workspace_id"}
            payload = {
                "event": {
                    "type": event_type.upper(),
                    "name": NAMES.get(event_type, event_type),
                    "instance_url": self.fake.instance_url,
                    "workspace_id": ws,
                    "workspace_name": data.workspaces[ws],
                },
                "data": body,
            }
            targets = [
                w["url"]
                for w in data.webhooks.values()
                if w["workspace_id"] == ws and event_type in w["events"]
            ]
        for url in targets:
            try:
                status: int | None = self._http.post(url, json=payload).status_code
            except httpx.HTTPError:
                status = None
            self.deliveries.append((url, payload, status))
        if not targets:
            self.deliveries.append(("", payload, None))
        return payload
