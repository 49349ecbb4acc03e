"""End to end on the real broker with Avro: contacts.raw → filter → contacts.filtered → verify
→ contacts.verified, with a loopback DNS server, Redis and a fresh PostgreSQL database."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from leadstream.db import make_engine
from leadstream.db.contacts import ContactStore
from leadstream.devtools.dns_server import NXDOMAIN, SILENT, AOnly, DnsServer, Mx
from leadstream.events import Serde, register_schemas
from leadstream.runtime import RuntimeConfig, StageRunner
from leadstream.settings import Settings
from leadstream.topics import TopicSettings, apply
from leadstream_filter.app import build_stage
from leadstream_filter.config import FilterSettings
from leadstream_verify.app import verify_stage
from leadstream_verify.config import VerifySettings
from tests.support.databases import scratch_database
from tests.support.kafka import produce, read_all

pytestmark = pytest.mark.integration


@pytest.fixture
def db(settings: Settings) -> Iterator[Settings]:
    with scratch_database(settings, "contacts@head") as fresh:
        yield fresh


def submitted(email: str, **fields: Any) -> dict[str, Any]:
    return {
        "event_id": str(uuid.uuid4()),
        "job_id": "job-e2e",
        "source": "csv",
        "event_time": int(time.time() * 1000),
        "email": email,
        **fields,
    }


def test_filter_then_verify(db: Settings) -> None:
    assert apply(TopicSettings.of(db, topic_partitions=3)).ok
    assert all(r.ok for r in register_schemas(db))
    zones = {
        "acme.example": Mx("mx1.acme.example"),
        "aonly.example": AOnly(),
        "gone.example": NXDOMAIN,
        "slow.example": SILENT,
        "mailinator.com": Mx("mail.mailinator.com"),
    }
    namespace = f"test:{uuid.uuid4().hex[:8]}:mx:"
    contacts = [
        submitted("Jane.Doe@acme.example", first_name="JANE", tags=["auto"]),
        submitted("sales@acme.example"),
        submitted("bob@aonly.example"),
        submitted("carol@gone.example"),
        submitted("dave@slow.example"),
        submitted("eve@mailinator.com"),
        submitted("jane.doe@ACME.example"),  # duplicate: never reaches verify
        submitted("broken@"),  # invalid: never reaches verify
    ]
    expected = {
        "jane.doe@acme.example": ("deliverable", ["mx_found"], "mx1.acme.example"),
        "sales@acme.example": ("risky", ["mx_found", "role_account"], "mx1.acme.example"),
        "bob@aonly.example": ("risky", ["a_fallback"], "aonly.example"),
        "carol@gone.example": ("undeliverable", ["domain_not_found"], None),
        "dave@slow.example": ("unknown", ["dns_timeout"], None),
        "eve@mailinator.com": (
            "risky",
            ["mx_found", "disposable", "free_provider"],
            "mail.mailinator.com",
        ),
    }
    serde = Serde(db)
    raw = db.topic("contacts.raw")
    produce(
        db,
        raw,
        [
            (c["email"].strip().lower().encode(), serde.serialize(c, raw), [("job_id", b"job-e2e")])
            for c in contacts
        ],
    )
    config = RuntimeConfig(instance_id="e2e", batch_size=100, poll_timeout_s=0.2)
    fs = FilterSettings.model_validate(
        {**dict(db), "free_providers": ["mailinator.com", "gmail.com"]}
    )
    engine = make_engine(db, pool_size=2)
    client = redis.Redis.from_url(db.redis_url)
    try:
        filtered = StageRunner(build_stage(fs, engine), fs, serde, config).run(idle_timeout_s=3)
        assert (filtered.records_in, filtered.records_out) == (8, 8)
        with DnsServer(zones) as dns:
            vs = VerifySettings.model_validate(
                {
                    **dict(db),
                    "dns_nameservers": [dns.address],
                    "dns_timeout_s": 1.0,
                    "dns_attempts": 2,
                    "dns_backoff_s": 0.05,
                    "dns_cache_namespace": namespace,
                }
            )
            with verify_stage(vs, engine) as stage:
                verified = StageRunner(stage, vs, serde, config).run(idle_timeout_s=3)
        assert (verified.records_in, verified.records_out, verified.dead_lettered) == (6, 6, 0)
        topic = db.topic("contacts.verified")
        out = read_all(db, topic, expect=6, timeout=20, settle=1)
        got = {}
        for m in out:
            v = serde.deserialize(m.value(), topic)
            headers = dict(m.headers())
            assert m.key().decode() == v["email_normalized"]
            assert headers["verdict"].decode() == v["verdict"]
            assert headers["job_id"] == b"job-e2e"
            assert v["disposable_list_version"]
            got[v["email_normalized"]] = (v["verdict"], v["reasons"], v["mx_host"])
        assert got == expected
        store = ContactStore(engine)
        for email, (verdict, reasons, mx_host) in expected.items():
            row = store.get(email)
            assert row is not None
            assert (row["verdict"], row["verdict_reasons"], row["mx_host"]) == (
                verdict,
                reasons,
                mx_host,
            )
        assert client.get(f"{namespace}acme.example") is not None
    finally:
        keys = list(client.scan_iter(f"{namespace}*"))
        if keys:
            client.delete(*keys)
        client.close()
        engine.dispose()
        serde.close()
