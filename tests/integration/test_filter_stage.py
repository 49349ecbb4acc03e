"""The filter stage on the real broker, registry and PostgreSQL: decisions, keys and headers;
replay after an offset reset; two instances in one group; a suppression added mid-run."""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from typing import Any

import pytest
import sqlalchemy as sa
from confluent_kafka import Consumer, ConsumerGroupTopicPartitions, TopicPartition
from confluent_kafka.admin import AdminClient

from leadstream.db import make_engine, upgrade
from leadstream.db.suppressions import Suppression, SuppressionStore
from leadstream.events import Serde, contact_id, derived_event_id, register_schemas
from leadstream.runtime import RunResult, RuntimeConfig, StageRunner
from leadstream.settings import Settings
from leadstream.topics import TopicSettings, apply
from leadstream_filter.app import build_stage
from leadstream_filter.config import FilterSettings
from tests.support.databases import scratch_database
from tests.support.kafka import produce

pytestmark = pytest.mark.integration
PARTITIONS = 6


@pytest.fixture
def db(settings: Settings) -> Iterator[Settings]:
    """Settings of a fresh database with the contacts tables."""
    with scratch_database(settings, revision=None) as fresh:
        yield fresh


@pytest.fixture
def env(db: Settings) -> Iterator[tuple[FilterSettings, sa.Engine, Serde]]:
    upgrade(db, "contacts@head")
    assert apply(TopicSettings.of(db, topic_partitions=PARTITIONS)).ok
    assert all(r.ok for r in register_schemas(db))
    fs = FilterSettings.model_validate({**dict(db), "suppression_refresh_s": 0.5})
    engine = make_engine(fs, pool_size=4)
    serde = Serde(db)
    yield fs, engine, serde
    serde.close()
    engine.dispose()


def submitted(email: str, **fields: Any) -> dict[str, Any]:
    return {
        "event_id": str(uuid.uuid4()),
        "job_id": "job-9",
        "source": "api",
        "event_time": int(time.time() * 1000),
        "email": email,
        **fields,
    }


def publish(settings: Settings, serde: Serde, contacts: Sequence[dict[str, Any]]) -> None:
    topic = settings.topic("contacts.raw")
    produce(
        settings,
        topic,
        [
            (c["email"].strip().lower().encode(), serde.serialize(c, topic), [("job_id", b"job-9")])
            for c in contacts
        ],
    )


def runner(fs: FilterSettings, engine: sa.Engine, serde: Serde, instance: str) -> StageRunner:
    config = RuntimeConfig(
        instance_id=instance, batch_size=500, poll_timeout_s=0.2, session_timeout_ms=6000
    )
    return StageRunner(build_stage(fs, engine), fs, serde, config)


def outputs(
    settings: Settings, serde: Serde, expect: int, timeout: float = 30.0
) -> list[tuple[str, str, dict[str, Any], dict[str, bytes]]]:
    """(topic, key, value, headers) of everything committed on contacts.filtered and
    contacts.rejected: read until ``expect`` are in, then one more second for extras."""
    names = {settings.topic(n): n for n in ("contacts.filtered", "contacts.rejected")}
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka_bootstrap,
            "group.id": f"reader-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
        }
    )
    consumer.subscribe(list(names))
    out: list[tuple[str, str, dict[str, Any], dict[str, bytes]]] = []
    deadline = time.monotonic() + timeout
    settle: float | None = None
    try:
        while settle is None or time.monotonic() < settle:
            if settle is None and (len(out) >= expect or time.monotonic() > deadline):
                settle = time.monotonic() + 1.0
            for m in consumer.consume(500, 0.2):
                assert m.error() is None, m.error()
                topic = m.topic() or ""
                value = serde.deserialize(m.value() or b"", topic)
                headers = {k: v or b"" for k, v in m.headers() or []}
                out.append((names[topic], (m.key() or b"").decode(), value, headers))
    finally:
        consumer.close()
    return out


def test_decisions_keys_headers_and_replay(env: tuple[FilterSettings, sa.Engine, Serde]) -> None:
    fs, engine, serde = env
    SuppressionStore(engine).add([Suppression("domain", "spam.example")])
    jane = submitted(" Jane.Doe@Example.COM ", first_name="JANE", phone="+44 20 7946 0958")
    batch = [
        jane,
        submitted("JANE.DOE@EXAMPLE.COM"),  # same person, same partition, later
        submitted("not-an-email"),
        submitted(""),
        submitted("bob@mail.spam.example"),
        submitted("info@gmail.com"),
    ]
    publish(fs, serde, batch)
    first = runner(fs, engine, serde, "f-0").run(idle_timeout_s=3)
    assert (first.records_in, first.records_out, first.dead_lettered) == (6, 6, 0)
    got = outputs(fs, serde, expect=6)
    by_raw = {v["raw_event_id"]: (t, k, v, h) for t, k, v, h in got}
    topic, key, value, headers = by_raw[jane["event_id"]]
    assert (topic, key) == ("contacts.filtered", "jane.doe@example.com")
    assert value["event_id"] == derived_event_id("filter", jane["event_id"])
    assert (value["first_name"], value["phone_e164"]) == ("Jane", "+442079460958")
    assert headers["job_id"] == b"job-9"
    reasons = {c["email"]: by_raw[c["event_id"]][3].get("reason", b"").decode() for c in batch}
    assert reasons == {
        jane["email"]: "",
        "JANE.DOE@EXAMPLE.COM": "duplicate",
        "not-an-email": "invalid_email",
        "": "missing_email",
        "bob@mail.spam.example": "suppressed_domain",
        "info@gmail.com": "",
    }
    info = next(v for t, k, v, h in got if k == "info@gmail.com")
    assert (info["role_account"], info["free_provider"]) == (True, True)
    dup = by_raw[batch[1]["event_id"]]
    assert dup[1] == "jane.doe@example.com"
    assert dup[2]["contact_id"] == contact_id("jane.doe@example.com")

    # Replay: the operator resets the group to the start of contacts.raw.
    group = fs.topic("leadstream-filter")
    raw = fs.topic("contacts.raw")
    admin = AdminClient({"bootstrap.servers": fs.kafka_bootstrap})
    reset = ConsumerGroupTopicPartitions(
        group, [TopicPartition(raw, p, 0) for p in range(PARTITIONS)]
    )
    for f in admin.alter_consumer_group_offsets([reset]).values():
        f.result(30)
    second = runner(fs, engine, serde, "f-0").run(idle_timeout_s=3)
    assert (second.records_in, second.records_out) == (6, 6)
    again = outputs(fs, serde, expect=12)
    assert len(again) == 12
    decisions = Counter((t, k, v["event_id"], h.get("reason")) for t, k, v, h in again)
    assert set(decisions.values()) == {2}, "the replay must decide exactly as the first run"
    assert sum(1 for t, *_ in again if t == "contacts.filtered") == 4


def test_two_instances_in_one_group(env: tuple[FilterSettings, sa.Engine, Serde]) -> None:
    """300 people submitted 3 times each under different raw keys (so different partitions
    and instances see them): one contact each, two duplicates each, nothing lost."""
    fs, engine, serde = env
    people = 300
    contacts = []
    for i in range(people):
        contacts += [
            submitted(f"p{i}@acme.example"),
            submitted(f"<P{i}@acme.example>"),
            submitted(f'"P {i}" <p{i}@ACME.example>'),
        ]
    runners = {f"f-{n}": runner(fs, engine, serde, f"f-{n}") for n in range(2)}
    results: dict[str, RunResult] = {}

    def run(instance: str) -> None:
        results[instance] = runners[instance].run(idle_timeout_s=8)

    threads = [threading.Thread(target=run, args=(name,)) for name in runners]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 30
    while not all(len(r.assigned) for r in runners.values()) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert all(len(r.assigned) for r in runners.values()), "both instances should own partitions"
    publish(fs, serde, contacts)
    for t in threads:
        t.join(120)
    assert all(r.records_in > 0 for r in results.values()), results
    assert sum(r.records_in for r in results.values()) >= len(contacts)
    got = outputs(fs, serde, expect=len(contacts))
    by_raw: dict[str, list[tuple[str, str | None]]] = {}
    for t, _k, v, h in got:
        by_raw.setdefault(v["raw_event_id"], []).append((t, h.get("reason", b"").decode() or None))
    # every input decided, once (a rebalance may redo a batch, but read_committed sees one)
    assert sorted(by_raw) == sorted(c["event_id"] for c in contacts)
    assert all(len(v) == 1 for v in by_raw.values())
    per_person = Counter(k for t, k, *_ in got if t == "contacts.filtered")
    assert len(per_person) == people
    assert set(per_person.values()) == {1}
    assert Counter(r[0][1] for r in by_raw.values()) == {None: people, "duplicate": 2 * people}
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM contacts")).scalar() == people


def test_suppression_added_mid_run_takes_effect(
    env: tuple[FilterSettings, sa.Engine, Serde],
) -> None:
    fs, engine, serde = env
    run = runner(fs, engine, serde, "f-0")
    result: list[RunResult] = []
    thread = threading.Thread(target=lambda: result.append(run.run(idle_timeout_s=60)))
    thread.start()
    try:
        publish(fs, serde, [submitted(f"a{i}@mid.example") for i in range(10)])
        before = outputs(fs, serde, expect=10)
        assert {t for t, *_ in before} == {"contacts.filtered"}
        SuppressionStore(engine).add([Suppression("domain", "mid.example", "complaint")])
        added_at = time.monotonic()
        publish(fs, serde, [submitted(f"b{i}@mid.example") for i in range(10)])
        after = outputs(fs, serde, expect=20)
        took = time.monotonic() - added_at
    finally:
        run.stop()
        thread.join(30)
    late = [h.get("reason") for t, k, v, h in after if k.startswith("b")]
    assert late == [b"suppressed_domain"] * 10
    assert took < 10
