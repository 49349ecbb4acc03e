"""The scheduled jobs: campaigns and stats into PostgreSQL; the replies poll (a backstop
for webhooks that never arrived)."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any, Protocol

from leadstream.bison import BisonRequestError, BisonUnavailableError, Page
from leadstream.db.campaigns import CampaignStore
from leadstream.db.contact_events import ContactEventStore
from leadstream_bison_sync.scheduler import Heartbeat

log = logging.getLogger(__name__)


class CampaignApi(Protocol):
    def campaign_page(self, page: int = 1, **filters: Any) -> Page: ...

    def campaign_stats(self, campaign_id: str, start: date, end: date) -> dict[str, Any]: ...


class RepliesApi(Protocol):
    def reply_page(self, page: int = 1, **filters: Any) -> Page: ...


class CampaignSync:
    """Every campaign (all pages) and its stats over the last ``days`` days. A page or a
    campaign that still fails after the client's retries is reported and skipped; the rest
    is stored, and the next run tries again."""

    def __init__(
        self,
        api: CampaignApi,
        store: CampaignStore,
        *,
        days: int = 30,
        today: Callable[[], date] = lambda: datetime.now(UTC).date(),
    ) -> None:
        self.api = api
        self.store = store
        self.days = days
        self.today = today

    def __call__(self, heartbeat: Heartbeat) -> str | None:
        problems: list[str] = []
        first = self.api.campaign_page(1)
        campaigns = list(first.items)
        for n in range(2, first.last_page + 1):
            if not heartbeat():
                problems.append("lost the scheduler lock")
                break
            try:
                campaigns += self.api.campaign_page(n).items
            except BisonUnavailableError as exc:
                problems.append(f"campaigns page {n}: {exc}")
        self.store.upsert_remote(campaigns)
        end = self.today()
        start = end - timedelta(days=self.days)
        for c in campaigns:
            if str(c.get("status")) == "draft":
                continue
            if not heartbeat():
                problems.append("lost the scheduler lock")
                break
            try:
                stats = self.api.campaign_stats(str(c["id"]), start, end)
            except (BisonUnavailableError, BisonRequestError) as exc:
                problems.append(f"stats of campaign {c['id']}: {exc}")
                continue
            self.store.record_stats(str(c["id"]), start, end, stats)
        log.info("campaign sync: %d campaigns, %d problems", len(campaigns), len(problems))
        return "; ".join(problems) or None


def _millis(value: Any) -> int | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def _id(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)


def event_from_reply(
    reply: dict[str, Any], workspace_id: str | None, now_ms: int
) -> dict[str, Any]:
    """A reply (or bounce) from ``GET /api/replies`` as the BisonEvent a webhook would have
    produced (``source = bison:poll``); its id depends only on the reply, so polling it twice
    produces the same event."""
    bounced = reply.get("folder") == "bounced" or reply.get("type") == "bounce"
    event_type = "email_bounced" if bounced else "lead_replied"
    reply_id = str(reply["id"])
    email = reply.get("from_email_address")
    return {
        "event_id": str(
            uuid.uuid5(
                uuid.NAMESPACE_URL, f"leadstream:bison:poll:{workspace_id}:{event_type}:{reply_id}"
            )
        ),
        "source": "bison:poll",
        "event_time": now_ms,
        "event_type": event_type,
        "workspace_id": workspace_id,
        "lead_id": _id(reply.get("lead_id")),
        "email": email.strip().lower() if isinstance(email, str) and email.strip() else None,
        "campaign_id": _id(reply.get("campaign_id")),
        "campaign_name": None,
        "scheduled_email_id": None,
        "campaign_event_id": None,
        "reply_id": reply_id,
        "reply_text": reply.get("text_body") if isinstance(reply.get("text_body"), str) else None,
        "interested": reply.get("interested")
        if isinstance(reply.get("interested"), bool)
        else None,
        "automated_reply": reply.get("automated_reply")
        if isinstance(reply.get("automated_reply"), bool)
        else None,
        "occurred_at": _millis(reply.get("date_received")),
        "payload": json.dumps(reply, default=str),
    }


class RepliesPoll:
    """Newest replies first, page by page, until a page brings nothing new (or
    ``max_pages``); unseen ones go to ``bison.events`` like webhook deliveries."""

    def __init__(
        self,
        api: RepliesApi,
        events: ContactEventStore,
        publish: Callable[[Sequence[dict[str, Any]]], None],
        *,
        workspace_id: str | None = None,
        max_pages: int = 10,
        now_ms: Callable[[], int] = lambda: int(datetime.now(UTC).timestamp() * 1000),
    ) -> None:
        self.api = api
        self.events = events
        self.publish = publish
        self.workspace_id = workspace_id
        self.max_pages = max_pages
        self.now_ms = now_ms

    def __call__(self, heartbeat: Heartbeat) -> str | None:
        found = 0
        for n in range(1, self.max_pages + 1):
            page = self.api.reply_page(n, folder="all")
            known = self.events.known_replies([str(r["id"]) for r in page.items])
            new = [r for r in page.items if str(r["id"]) not in known]
            if new:
                now = self.now_ms()
                self.publish([event_from_reply(r, self.workspace_id, now) for r in new])
                found += len(new)
            if not new or page.page >= page.last_page or not heartbeat():
                break
        if found:
            log.info("replies poll: %d replies the webhooks had not brought", found)
        return None
