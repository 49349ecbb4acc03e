"""The feedback loop: Email Bison's webhooks (and the replies poll) → bison.events →
bison-sync → contact status, history, reply sentiment and suppressions — and the filter
rejecting a bounced address when it is submitted again."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from leadstream.bison import BisonClient
from leadstream.db.contact_events import ContactEventStore
from leadstream.db.suppressions import SuppressionStore
from leadstream.events import contact_id
from leadstream.runtime import RuntimeConfig, StageRunner
from leadstream.settings import Settings
from leadstream_bison_sync.jobs import event_from_reply
from leadstream_filter.app import build_stage
from leadstream_filter.config import FilterSettings
from leadstream_ingest.bison import parse_delivery
from leadstream_ingest.config import IngestSettings
from tests.integration.test_ingest_fixtures import Server
from tests.support.fake_bison import WebhookSender
from tests.support.fake_bison.harness import batch_contact, batch_ready, publish, read
from tests.support.fake_bison.sync_env import SyncEnv, sync_env

pytestmark = pytest.mark.integration
SECRET = "whsec-" + "b1s0n" * 6


@pytest.fixture
def env(settings: Settings) -> Iterator[SyncEnv]:
    with sync_env(settings) as e:
        yield e


def submitted(email: str) -> dict[str, Any]:
    return {
        "event_id": str(uuid.uuid4()),
        "job_id": None,
        "source": "api",
        "event_time": int(time.time() * 1000),
        "email": email,
        "first_name": "Jane",
        "last_name": "Doe",
    }


def run_filter(env: SyncEnv, fs: FilterSettings) -> None:
    config = RuntimeConfig(instance_id="f-0", batch_size=50, poll_timeout_s=0.2)
    StageRunner(build_stage(fs, env.engine), fs, env.serde, config).run(idle_timeout_s=3)


def upload(env: SyncEnv, campaign: int, emails: list[str]) -> None:
    env.publish_ready(batch_ready(str(campaign), [batch_contact(e) for e in emails]))
    env.run(env.service())
    synced = env.synced(expect=1)
    assert {r["status"] for m in synced for r in m.value["results"]} == {"attached"}


def test_a_bounce_webhook_suppresses_and_the_filter_rejects_the_contact_again(
    env: SyncEnv,
) -> None:
    email = f"jane.{uuid.uuid4().hex[:6]}@bounce.example"
    fs = FilterSettings.model_validate({**dict(env.settings), "suppression_refresh_s": 0.2})
    publish(fs, env.serde, "contacts.raw", [submitted(email)], lambda v: v["email"])
    run_filter(env, fs)
    [filtered] = read(fs, env.serde, "contacts.filtered", expect=1)
    assert filtered.value["contact_id"] == contact_id(email)

    campaign = env.fake.add_campaign(env.workspace, "Q4")
    upload(env, campaign, [email])

    ingest = IngestSettings.model_validate({**dict(env.settings), "bison_webhook_secret": SECRET})
    with Server(ingest) as server, WebhookSender(env.fake) as sender:
        with BisonClient(env.server.url, env.key) as client:
            client.request(
                "POST",
                "/webhook-url",
                json={
                    "name": "leadstream",
                    "url": f"{server.url}/v1/webhooks/bison/{SECRET}",
                    "events": ["email_bounced"],
                },
            )
        sender.bounce(env.workspace, email, campaign)
        sender.bounce(env.workspace, email, campaign)  # a second bounce of another send
        assert [status for _url, _p, status in sender.deliveries] == [200, 200]
    env.run(env.service())

    [entry] = SuppressionStore(env.engine).entries("email")
    assert (entry.value, entry.reason, entry.source) == (email, "bounced", "bison-sync")
    events = ContactEventStore(env.engine)
    lead = events.lead(contact_id(email))
    assert lead is not None
    assert (lead["status"], lead["last_event_type"]) == ("bounced", "email_bounced")
    history = events.history(contact_id(email))
    assert [(h["event_type"], h["source"]) for h in history] == [
        ("email_bounced", "bison:webhook"),
        ("email_bounced", "bison:webhook"),
    ]

    publish(fs, env.serde, "contacts.raw", [submitted(email.upper())], lambda v: v["email"])
    run_filter(env, fs)
    [rejected] = read(fs, env.serde, "contacts.rejected", expect=1)
    assert rejected.headers["reason"] == b"suppressed_email"
    assert rejected.value["email"] == email.upper()


def as_event(payload: dict[str, Any]) -> dict[str, Any]:
    """What the ingest receiver produces for a webhook body."""
    return parse_delivery(json.dumps(payload).encode(), now_ms=int(time.time() * 1000)).record


def test_replies_from_webhooks_and_the_poll_are_recorded_once_with_sentiment(
    env: SyncEnv,
) -> None:
    run = uuid.uuid4().hex[:6]
    a, b, c = (f"{n}.{run}@reply.example" for n in ("ann", "bob", "cat"))
    campaign = env.fake.add_campaign(env.workspace, "Replies")
    upload(env, campaign, [a, b, c])
    with WebhookSender(env.fake) as sender:
        sender.email_sent(env.workspace, a, campaign)
        hi = sender.reply(env.workspace, a, "Sounds good, send me more info", campaign_id=campaign)
        no = sender.reply(env.workspace, b, "Please remove me from your list", campaign_id=campaign)
        sender.reply(env.workspace, c, "I am out of the office until Monday", campaign_id=campaign)
        payloads = [p for _url, p, _status in sender.deliveries]
    # Webhooks deliver everything but the reply of c (lost); a's reply is delivered twice
    # (Email Bison retries) and also found by a poll that ran before the webhook was handled.
    delivered = [p for p in payloads if p["data"]["lead"]["email"] != c]
    env.publish_events(*[as_event(p) for p in [*delivered, hi]])
    env.publish_events(event_from_reply(hi["data"]["reply"], str(env.workspace), 1))
    env.run(env.service())
    service = env.service(poll=True)
    assert service.scheduler is not None
    assert service.scheduler.tick() == ["campaigns", "replies"]  # the poll finds c's reply
    env.run(env.service())

    events = ContactEventStore(env.engine)
    replies = {
        email: events.reply(str(p["data"]["reply"]["id"])) for email, p in ((a, hi), (b, no))
    }
    assert (replies[a] or {}).get("sentiment") == "interested"
    assert (replies[b] or {}).get("sentiment") == "unsubscribe_request"
    statuses = {e: (events.lead(contact_id(e)) or {}).get("status") for e in (a, b, c)}
    assert statuses == {a: "interested", b: "unsubscribed", c: "replied"}
    history = {
        e: sorted((h["event_type"], h["source"]) for h in events.history(contact_id(e)))
        for e in (a, b, c)
    }
    assert history[a] == [
        ("email_sent", "bison:webhook"),
        ("lead_first_contacted", "bison:webhook"),
        ("lead_replied", "bison:webhook"),  # once, whatever delivered it
    ]
    assert history[b] == [("lead_replied", "bison:webhook")]
    assert history[c] == [("lead_replied", "bison:poll")]
    sentiment_c = (events.lead(contact_id(c)) or {}).get("sentiment")
    assert sentiment_c == "out_of_office"
    [entry] = SuppressionStore(env.engine).entries("email")
    assert (entry.value, entry.reason) == (b, "unsubscribe_request")
