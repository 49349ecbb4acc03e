"""The batch stage on the real broker and PostgreSQL: routing, size and age closes (the age
close fires with no record arriving), held contacts and re-routing, daily caps, a crash
between the database and the Kafka commit, replays, and two instances at once."""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from prometheus_client import REGISTRY

from leadstream.db import make_engine
from leadstream.db.batches import BatchStore
from leadstream.db.campaigns import CampaignStore, RuleMatch
from leadstream.events import Serde
from leadstream.runtime import Record, RuntimeConfig, StageRunner
from leadstream.settings import Settings
from leadstream_batch.config import BatchSettings
from leadstream_batch.emitter import KafkaEmitter
from leadstream_batch.service import BatchService, build_service
from leadstream_batch.timer import TickReport, TimerThread
from tests.support.databases import scratch_database
from tests.support.fake_bison.harness import (
    Message,
    drop_topics,
    prepare_topics,
    publish,
    read,
    verified,
)

pytestmark = pytest.mark.integration


@dataclass
class Env:
    settings: BatchSettings
    engine: sa.Engine
    serde: Serde

    def service(self, clock: Any = None, instance: str = "t0", **overrides: Any) -> BatchService:
        settings = self.settings.model_copy(update=overrides)
        group = settings.topic(settings.consumer_group)
        emitter = KafkaEmitter(settings, self.serde, f"{group}-{instance}-timer")
        kwargs = {"clock": clock} if clock is not None else {}
        return build_service(settings, self.engine, emitter, **kwargs)

    def runner(self, service: BatchService, instance: str = "b-0", batch: int = 7) -> StageRunner:
        config = RuntimeConfig(
            instance_id=instance, batch_size=batch, poll_timeout_s=0.2, session_timeout_ms=6000
        )
        return StageRunner(service.stage, self.settings, self.serde, config)

    def publish(self, values: list[dict[str, Any]]) -> None:
        publish(self.settings, self.serde, "contacts.verified", values, lambda v: v["email"])

    def ready(self, expect: int, timeout: float = 30.0) -> list[Message]:
        return read(self.settings, self.serde, "batches.ready", expect=expect, timeout=timeout)

    def members(self) -> Counter[str]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT contact_id FROM batch_members")).all()
        return Counter(r[0] for r in rows)


@pytest.fixture
def env(settings: Settings) -> Iterator[Env]:
    with scratch_database(settings) as db:
        prepare_topics(db)
        bs = BatchSettings.model_validate(
            {
                **dict(db),
                "batch_max_size": 5,
                "batch_max_age_s": 2.0,
                "batch_tick_s": 0.2,
                "batch_rules_refresh_s": 0,
            }
        )
        engine = make_engine(bs, pool_size=6)
        serde = Serde(db)
        try:
            yield Env(bs, engine, serde)
        finally:
            serde.close()
            engine.dispose()
            drop_topics(db)


def emails(prefix: str, n: int) -> list[str]:
    tag = uuid.uuid4().hex[:6]
    return [f"{prefix}{i}.{tag}@example.com" for i in range(n)]


def contacts_of(messages: list[Message]) -> Counter[str]:
    return Counter(c["email"] for m in messages for c in m.value["contacts"])


def test_routes_closes_by_size_and_by_age_and_holds_what_has_no_route(env: Env) -> None:
    rules = CampaignStore(env.engine)
    rule_of = {
        "101": rules.add_rule("101", RuleMatch.of(tags_any=["auto"]), priority=10).rule_id,
        "202": rules.add_rule("202", RuleMatch.of(countries=["US"]), priority=20).rule_id,
    }
    auto = emails("auto", 12)
    us = emails("us", 3)
    risky = emails("risky", 2)
    lost = emails("lost", 3)
    env.publish(
        [verified(e, tags=["Auto"]) for e in auto]
        + [verified(e, job_id="job-2", country="us") for e in us]
        + [verified(e, tags=["auto"], verdict="risky") for e in risky]
        + [verified(e, country="FR") for e in lost]
    )
    service = env.service()
    timer = TimerThread(service.timer, 0.2)
    timer.start()
    try:
        result = env.runner(service).run(idle_timeout_s=4)
        assert result.records_in == 20
        first = env.ready(expect=4)
        # Nothing arrives any more; the timer still closes what waits (age) — proven above by
        # the 2-contact and 3-contact batches. Now give the unrouted ones a route.
        rule_of["303"] = rules.add_rule("303", RuleMatch(), is_default=True).rule_id
        held = BatchStore(env.engine).holds()
        assert sorted(h.contact["batch_contact"]["email"] for h in held) == sorted(lost)
        assert {h.reason for h in held} == {"no_route"}
        assert BatchStore(env.engine).request_reroute() == 3
        both = env.ready(expect=5)
    finally:
        timer.stop()
    assert timer.failures == 0
    by_campaign: dict[str, list[Message]] = {}
    for m in both:
        by_campaign.setdefault(m.value["campaign_id"], []).append(m)
    sizes = {c: sorted(len(m.value["contacts"]) for m in ms) for c, ms in by_campaign.items()}
    assert sizes == {"101": [2, 5, 5], "202": [3], "303": [3]}
    assert len(first) == 4
    reasons = Counter((m.value["campaign_id"], m.value["closed_reason"]) for m in both)
    assert reasons == Counter(
        {("101", "size"): 2, ("101", "age"): 1, ("202", "age"): 1, ("303", "age"): 1}
    )
    assert contacts_of(both) == Counter(auto + us + lost)  # each exactly once, no risky one
    for m in both:
        assert m.key == m.value["batch_id"]
        assert m.headers["count"] == str(len(m.value["contacts"])).encode()
        jobs = {c["job_id"] for c in m.value["contacts"]}
        assert m.headers["job_id"] == (jobs.pop().encode() if len(jobs) == 1 else b"")
        assert m.value["rule_id"] == rule_of[m.value["campaign_id"]]
    assert BatchStore(env.engine).holds() == []


def test_a_crash_between_the_database_and_kafka_emits_each_batch_once(env: Env) -> None:
    CampaignStore(env.engine).add_rule("404", RuleMatch(), is_default=True)
    values = [verified(e) for e in emails("crash", 12)]
    env.publish(values)
    service = env.service()
    # The first attempt: the handler wrote to PostgreSQL, then the process died before the
    # Kafka transaction committed, so its outputs never reached anyone.
    lost = service.stage.handler(_records_as_stored(env, values))
    closed = sorted(o.value["batch_id"] for outs in lost for o in outs if o.value)
    assert len(closed) == 2
    # The restarted stage reads the same records at the same offsets and decides again:
    # nothing is placed twice, and the records that closed a batch emit it.
    env.runner(service).run(idle_timeout_s=3)
    ready = env.ready(expect=2)
    assert sorted(m.value["batch_id"] for m in ready) == closed
    assert sum(env.members().values()) == 12
    assert max(env.members().values()) == 1
    # The same events again at new offsets (an upstream duplicate) change nothing.
    env.publish(values)
    env.runner(service).run(idle_timeout_s=3)
    assert sorted(m.value["batch_id"] for m in env.ready(expect=3, timeout=3)) == closed
    assert sum(env.members().values()) == 12


class DiesAfterKafka:
    """The timer's emitter, but the process 'dies' right after the Kafka commit (or before
    it): the exception ends the tick's database transaction without the emitted mark."""

    def __init__(self, inner: KafkaEmitter, *, commit: bool) -> None:
        self.inner = inner
        self.commit = commit

    def emit(self, outputs: Any) -> None:
        if self.commit:
            self.inner.emit(outputs)
        raise RuntimeError("killed")

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


@pytest.mark.parametrize("committed", [True, False], ids=["after-commit", "before-commit"])
def test_a_timer_crash_around_its_kafka_commit_emits_each_batch_once(
    env: Env, committed: bool
) -> None:
    CampaignStore(env.engine).add_rule("505", RuleMatch(), is_default=True)
    env.publish([verified(e) for e in emails("tick", 8)])  # one batch of 5 closes by size
    service = env.service(batch_max_age_s=3600.0)
    env.runner(service).run(idle_timeout_s=3)
    assert len(env.ready(expect=1)) == 1
    store = BatchStore(env.engine)
    assert store.request_flush() == 1  # the open batch of 3 goes out through the outbox
    timer = service.timer
    real = timer.emitter
    assert isinstance(real, KafkaEmitter)
    timer.emitter = DiesAfterKafka(real, commit=committed)
    with pytest.raises(RuntimeError, match="killed"):
        timer.tick()
    timer.emitter = real  # the restarted process
    report = timer.tick()
    assert report.emitted == 1
    assert timer.tick().emitted == 0
    ready = env.ready(expect=3, timeout=5)
    assert len(ready) == 2, [m.value["batch_id"] for m in ready]  # not 3: emitted once
    assert sorted(len(m.value["contacts"]) for m in ready) == [3, 5]
    with env.engine.connect() as conn:
        unmarked = conn.execute(
            sa.text("SELECT count(*) FROM batches WHERE emit_via = 'outbox' AND emitted_at IS NULL")
        ).scalar_one()
        notes = conn.execute(sa.text("SELECT count(*) FROM batch_emit_attempts")).scalar_one()
    assert (unmarked, notes) == (0, 0)


def _records_as_stored(env: Env, values: list[dict[str, Any]]) -> list[Record]:
    """The records of ``values`` as the stage will read them (topic, partition, offset)."""
    from confluent_kafka import Consumer

    want = {v["event_id"] for v in values}
    topic = env.settings.topic("contacts.verified")
    consumer = Consumer(
        {
            "bootstrap.servers": env.settings.kafka_bootstrap,
            "group.id": f"peek-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    out: list[Record] = []
    try:
        for _ in range(100):
            for m in consumer.consume(500, 0.2):
                value = env.serde.deserialize(m.value() or b"", topic)
                if value["event_id"] in want:
                    out.append(
                        Record(topic, m.partition() or 0, m.offset() or 0, m.key(), value, {}, 0)
                    )
            if len(out) == len(want):
                break
    finally:
        consumer.close()
    assert len(out) == len(want)
    return out


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def test_a_daily_cap_holds_the_excess_for_the_next_day(env: Env) -> None:
    campaigns = CampaignStore(env.engine)
    campaigns.add_rule("505", RuleMatch.of(tags_any=["capped"]))
    campaigns.set_daily_cap("505", 3)
    clock = Clock(datetime(2026, 11, 23, 22, 0, tzinfo=UTC))
    service = env.service(clock=clock)
    group = [verified(e, tags=["capped"]) for e in emails("cap", 5)]
    env.publish(group)
    env.runner(service).run(idle_timeout_s=3)
    held = BatchStore(env.engine).holds("daily_cap")
    assert len(held) == 2
    assert {str(h.hold_until) for h in held} == {"2026-11-24"}
    assert sum(env.members().values()) == 3
    clock.now += timedelta(hours=1)  # the same day: nothing is released; the 3 age out
    before = _timer_counts()
    assert service.timer.tick() == TickReport(closed_by_age=1, released=0, emitted=1)
    clock.now += timedelta(hours=2)  # the next day
    assert service.timer.tick() == TickReport(closed_by_age=0, released=2, emitted=0)
    after = _timer_counts()
    assert {k: after[k] - before[k] for k in after} == {
        "closed_by_age": 1,
        "holds_released": 2,
        "outbox_emitted": 1,
    }
    assert BatchStore(env.engine).holds() == []
    clock.now += timedelta(seconds=3)
    assert service.timer.tick() == TickReport(closed_by_age=1, released=0, emitted=1)
    ready = env.ready(expect=2)
    assert sorted(len(m.value["contacts"]) for m in ready) == [2, 3]
    assert contacts_of(ready) == Counter(v["email"] for v in group)
    with env.engine.connect() as conn:
        days = conn.execute(
            sa.text("SELECT day, leads FROM campaign_daily_counts WHERE campaign_id = '505'")
        ).all()
    assert sorted((str(d), n) for d, n in days) == [("2026-11-23", 3), ("2026-11-24", 2)]


def test_two_instances_batch_every_contact_once(env: Env) -> None:
    CampaignStore(env.engine).add_rule("606", RuleMatch(), is_default=True)
    values = [verified(e) for e in emails("pair", 203)]
    env.publish(values)
    services = [env.service(instance=f"t{i}") for i in range(2)]
    runners = [env.runner(s, instance=f"b-{i}", batch=20) for i, s in enumerate(services)]
    threads = [threading.Thread(target=r.run, kwargs={"idle_timeout_s": 5}) for r in runners]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    closed = env.ready(expect=40)
    assert [len(m.value["contacts"]) for m in closed] == [5] * 40
    members = env.members()
    assert sum(members.values()) == 203
    assert max(members.values()) == 1
    assert contacts_of(closed).most_common(1)[0][1] == 1


def _timer_counts() -> dict[str, float]:
    """The batch timer's counters as /metrics shows them."""
    names = ("closed_by_age", "holds_released", "outbox_emitted")
    return {n: REGISTRY.get_sample_value(f"leadstream_batch_{n}_total") or 0.0 for n in names}
