"""Email Bison events → contact status, suppressions; BatchSynced results; dry-run settings."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from leadstream.db.bison_leads import UploadItem
from leadstream.errors import ConfigError
from leadstream_bison_sync.config import BisonSyncSettings
from leadstream_bison_sync.feedback import interpret, when
from leadstream_bison_sync.jobs import event_from_reply
from leadstream_bison_sync.synced import synced_output, synced_value


def event(event_type: str, **kw: Any) -> dict[str, Any]:
    return {
        "event_id": f"ev-{event_type}",
        "source": "bison:webhook",
        "event_time": 1_790_000_000_000,
        "event_type": event_type,
        "email": "Jane@Acme.example",
        "lead_id": "42",
        **kw,
    }


FEEDBACK = [
    # event type, extra fields → status, rank, sentiment, suppression reason
    ("email_sent", {}, "contacted", 10, None, None),
    ("lead_first_contacted", {}, "contacted", 10, None, None),
    ("email_opened", {}, "opened", 15, None, None),
    ("lead_replied", {"reply_text": "Who is this?"}, "replied", 20, "neutral", None),
    ("lead_replied", {"reply_text": "Yes, send more info"}, "interested", 30, "interested", None),
    ("lead_replied", {"reply_text": "No thanks"}, "not_interested", 30, "not_interested", None),
    ("lead_replied", {"reply_text": "Out of office"}, "replied", 20, "out_of_office", None),
    (
        "lead_replied",
        {"reply_text": "Please unsubscribe me"},
        "unsubscribed",
        40,
        "unsubscribe_request",
        "unsubscribe_request",
    ),
    ("lead_interested", {}, "interested", 30, "interested", None),
    ("lead_unsubscribed", {}, "unsubscribed", 40, None, "unsubscribed"),
    ("email_bounced", {"reply_text": "550 user unknown"}, "bounced", 40, None, "bounced"),
    ("tag_attached", {}, None, 0, None, None),
]


@pytest.mark.parametrize(("kind", "extra", "status", "rank", "sentiment", "suppress"), FEEDBACK)
def test_feedback_table(
    kind: str,
    extra: dict[str, Any],
    status: str | None,
    rank: int,
    sentiment: str | None,
    suppress: str | None,
) -> None:
    done = interpret(event(kind, **extra), "c-1")
    assert (done.event.status, done.event.status_rank, done.event.sentiment) == (
        status,
        rank,
        sentiment,
    )
    assert done.event.email == "jane@acme.example"
    if suppress is None:
        assert done.suppression is None
    else:
        assert done.suppression is not None
        assert (done.suppression.kind, done.suppression.value) == ("email", "jane@acme.example")
        assert (done.suppression.reason, done.suppression.source) == (suppress, "bison-sync")


def test_a_bounce_without_an_email_suppresses_nothing() -> None:
    assert interpret(event("email_bounced", email=None), None).suppression is None


def test_times_decode_from_avro_or_millis() -> None:
    moment = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
    assert when(moment) == moment
    assert when(int(moment.timestamp() * 1000)) == moment
    assert when(None) is None
    occurred = interpret(event("email_sent", occurred_at=moment), None).event.occurred_at
    assert occurred == moment


def test_polled_replies_and_bounces_have_stable_ids() -> None:
    reply = {
        "id": 7,
        "from_email_address": "A@B.example",
        "text_body": "hi",
        "lead_id": 3,
        "campaign_id": 9,
        "folder": "inbox",
        "date_received": "2026-11-23T10:00:00Z",
    }
    one = event_from_reply(reply, "1", 1)
    assert one == {**event_from_reply(reply, "1", 1), "event_time": 1}
    assert (one["event_type"], one["email"], one["reply_id"], one["source"]) == (
        "lead_replied",
        "a@b.example",
        "7",
        "bison:poll",
    )
    assert one["occurred_at"] == int(datetime(2026, 11, 23, 10, tzinfo=UTC).timestamp() * 1000)
    bounced = event_from_reply({**reply, "folder": "bounced"}, "1", 1)
    assert bounced["event_type"] == "email_bounced"
    assert bounced["event_id"] != one["event_id"]


def _item(n: int, attach: str | None, error: str | None = None) -> UploadItem:
    return UploadItem(f"c{n}", f"p{n}@x.example", n, f"{100 + n}", "created", attach, error)


def test_synced_results_and_headers() -> None:
    ready = {
        "event_id": "ready-1",
        "batch_id": "b1",
        "campaign_id": "7",
        "job_id": None,
        "contacts": [
            {"contact_id": f"c{n}", "job_id": j} for n, j in enumerate(["j1", "j2", "j1"])
        ],
    }
    items = [
        _item(0, "attached"),
        _item(1, "skipped", "in another sequence"),
        _item(2, None, "bad"),
    ]
    value = synced_value(ready, items, dry_run=False, attempt=2)
    assert [r["status"] for r in value["results"]] == ["attached", "skipped", "failed"]
    assert value["results"][1]["error"] == "in another sequence"
    out = synced_output(value)
    assert out.key == "b1"
    assert out.headers == {"count": "1", "job_id": "", "job_counts": '{"j1":1}'}
    assert synced_value(ready, items, dry_run=True, attempt=1)["results"][2]["status"] == "dry_run"


def test_dry_run_is_explicit() -> None:
    assert BisonSyncSettings().dry_run
    creds = {"bison_base_url": "https://b.example", "bison_api_key": "1|x"}
    assert not BisonSyncSettings.model_validate(creds).dry_run
    assert BisonSyncSettings.model_validate({**creds, "bison_dry_run": True}).dry_run
    with pytest.raises(ConfigError):
        BisonSyncSettings(bison_dry_run=False)
    with pytest.raises(ConfigError):
        BisonSyncSettings(env="prod", database_password="a-real-secret")
    assert BisonSyncSettings(env="prod", database_password="a-real-secret", bison_dry_run=True)
    with pytest.raises(ConfigError):
        BisonSyncSettings(bison_attach_chunk=501)


def test_rate_key_is_per_instance_and_key_id_never_the_secret() -> None:
    a = BisonSyncSettings.model_validate({"bison_base_url": "https://b", "bison_api_key": "1|s1"})
    b = BisonSyncSettings.model_validate({"bison_base_url": "https://b", "bison_api_key": "1|s2"})
    c = BisonSyncSettings.model_validate({"bison_base_url": "https://b", "bison_api_key": "2|s1"})
    assert a.rate_key == b.rate_key != c.rate_key
    assert "s1" not in a.rate_key
