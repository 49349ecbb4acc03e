"""``leadstream replay`` on the real broker, PostgreSQL, Redis and the fake Email Bison:
a verify replay after a DNS change changes verdicts and duplicates no contact, batch or upload;
the method chosen (group reset when the stage is stopped, re-publish when it runs or a job is
selected); dry-run counts; a crashed re-publish resumes without publishing anything twice."""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import redis
from confluent_kafka import Consumer, ConsumerGroupTopicPartitions, Producer, TopicPartition
from confluent_kafka.admin import AdminClient
from typer.testing import CliRunner, Result

from leadstream.cli.main import app
from leadstream.db.campaigns import CampaignStore, RuleMatch
from leadstream.devtools.dns_server import NXDOMAIN, DnsServer, Mx
from leadstream.infra import Stack
from leadstream.ops import replay as rp
from leadstream.runtime import RuntimeConfig, StageRunner
from leadstream.settings import Settings
from leadstream_batch.config import BatchSettings
from leadstream_batch.emitter import KafkaEmitter
from leadstream_batch.service import build_service as build_batch
from leadstream_filter.app import build_stage as build_filter
from leadstream_filter.config import FilterSettings
from leadstream_jobs.counting import count_records
from leadstream_verify.app import verify_stage
from leadstream_verify.config import VerifySettings
from tests.integration.test_ingest_fixtures import running_world
from tests.support.fake_bison.harness import Message, read
from tests.support.fake_bison.sync_env import SyncEnv, sync_env
from tests.support.kafka import create_topics, produce, read_all

pytestmark = pytest.mark.integration
JOB = "job-replay"


def submitted(email: str) -> dict[str, Any]:
    return {
        "event_id": str(uuid.uuid4()),
        "job_id": JOB,
        "source": "csv",
        "event_time": int(time.time() * 1000),
        "email": email,
        "first_name": "Ann",
        "last_name": "Lee",
    }


class Pipeline:
    """filter → verify → batch → bison-sync, each run bounded (until idle) in this process."""

    def __init__(self, env: SyncEnv, dns: DnsServer, namespace: str) -> None:
        self.env = env
        s = env.settings
        self.config = RuntimeConfig(
            instance_id="r-0", batch_size=50, poll_timeout_s=0.2, session_timeout_ms=6000
        )
        self.filter = FilterSettings.model_validate(dict(s))
        self.verify = VerifySettings.model_validate(
            {
                **dict(s),
                "dns_nameservers": [dns.address],
                "dns_timeout_s": 1.0,
                "dns_attempts": 1,
                "dns_cache_namespace": namespace,
            }
        )
        self.batch = BatchSettings.model_validate(
            {**dict(s), "batch_max_size": 2, "batch_max_age_s": 3600, "batch_rules_refresh_s": 0}
        )
        self.bison = env.service()

    def run(self, stage: str) -> int:
        env, serde = self.env, self.env.serde
        if stage == "filter":
            r = StageRunner(build_filter(self.filter, env.engine), self.filter, serde, self.config)
            return r.run(idle_timeout_s=2).records_in
        if stage == "verify":
            with verify_stage(self.verify, env.engine) as st:
                return (
                    StageRunner(st, self.verify, serde, self.config)
                    .run(idle_timeout_s=2)
                    .records_in
                )
        if stage == "batch":
            group = self.batch.topic(self.batch.consumer_group)
            emitter = KafkaEmitter(self.batch, serde, f"{group}-r-0-timer")
            service = build_batch(self.batch, env.engine, emitter)
            r = StageRunner(service.stage, self.batch, serde, self.config)
            return r.run(idle_timeout_s=2).records_in
        return env.run(self.bison, idle_s=2).records_in

    def read(self, topic: str, expect: int, settle: float = 0.5) -> list[Message]:
        return read(
            self.env.settings, self.env.serde, topic, expect=expect, timeout=20, settle=settle
        )


@pytest.fixture
def env(settings: Settings) -> Iterator[SyncEnv]:
    with sync_env(settings) as e:
        yield e


def test_verify_replay_after_a_dns_change_changes_verdicts_and_duplicates_nothing(
    env: SyncEnv,
) -> None:
    s = env.settings
    tag = uuid.uuid4().hex[:6]
    ok = [f"ok{i}.{tag}@ok.example" for i in range(2)]
    fade = [f"fade{i}.{tag}@fade.example" for i in range(2)]  # deliverable, then not
    flip = [f"flip{i}.{tag}@flip.example" for i in range(2)]  # undeliverable, then deliverable
    everyone = ok + fade + flip
    campaign = env.fake.add_campaign(env.workspace, "Replay")
    CampaignStore(env.engine).add_rule(str(campaign), RuleMatch(), is_default=True)
    raw = s.topic("contacts.raw")
    produce(
        s,
        raw,
        [(e.encode(), env.serde.serialize(submitted(e), raw), [("job_id", JOB.encode())])
         for e in everyone],
    )  # fmt: skip
    namespace = f"test:{uuid.uuid4().hex[:8]}:mx:"
    cache = redis.Redis.from_url(s.redis_url)
    zones = {"ok.example": Mx("mx.ok.example"), "fade.example": Mx("mx.fade.example")}
    try:
        with DnsServer({**zones, "flip.example": NXDOMAIN}) as dns:
            p = Pipeline(env, dns, namespace)
            assert [p.run(st) for st in ("filter", "verify", "batch", "bison-sync")] == [6, 6, 6, 2]
            first = {
                m.value["email_normalized"]: m.value["verdict"]
                for m in p.read("contacts.verified", 6)
            }
            assert first == {
                **dict.fromkeys(ok + fade, "deliverable"),
                **dict.fromkeys(flip, "undeliverable"),
            }

            # The rules changed: flip.example now has mail, fade.example is gone; cached
            # answers expire.
            dns.set("flip.example", Mx("mx.flip.example"))
            dns.set("fade.example", NXDOMAIN)
            cache.delete(*cache.scan_iter(f"{namespace}*"))

            # verify is stopped: the plan rewinds its group (and counts right).
            plan = rp.plan(s, "verify", rp.Selection())
            assert plan.method == "reset", plan.reason
            assert "stopped" in plan.reason
            filtered = _records_by_partition(s, s.topic("contacts.filtered"))
            assert {r.partition: r.records for r in plan.partitions if r.records} == filtered
            assert plan.total == 6
            assert any("counts their outcomes again" in w for w in plan.warnings)
            result = rp.execute(s, plan)
            assert (result.method, result.records) == ("reset", 6)

            assert [p.run(st) for st in ("verify", "batch", "bison-sync")] == [6, 6, 1]
            verified = p.read("contacts.verified", 12)
            assert len(verified) == 12
            assert _last_verdicts(verified) == {
                **dict.fromkeys(ok + flip, "deliverable"),
                **dict.fromkeys(fade, "undeliverable"),
            }
            # PostgreSQL: one row per contact, with the new verdict.
            rows = env.rows("SELECT email_normalized, verdict FROM contacts")
            assert sorted(r[0] for r in rows) == sorted(everyone)
            assert dict(rows) == _last_verdicts(verified)
            # Batches: every batched contact once; the newly deliverable ones in a new batch;
            # the ones no longer deliverable stay where they were (nothing is withdrawn).
            members = env.rows("SELECT contact_id FROM batch_members")
            assert len(members) == len({m[0] for m in members}) == 6
            ready = p.read("batches.ready", 3)
            assert len(ready) == 3
            batched = Counter(c["email"] for m in ready for c in m.value["contacts"])
            assert batched == Counter(everyone)
            groups = {frozenset(c["email"] for c in m.value["contacts"]) for m in ready}
            assert frozenset(flip) in groups  # the newly deliverable, batched together
            # Email Bison: each lead created once, attached once.
            assert all(env.fake.created_count(e) == 1 for e in everyone)
            assert sorted(env.fake.attach_sends(campaign).values()) == [1] * 6
            assert len(p.read("batches.synced", 3)) == 3

            # A job-filtered replay while nothing changed: re-published (marked), the stage's
            # outputs carry replay.id, nothing new downstream.
            job_plan = rp.plan(s, "verify", rp.Selection(job_id=JOB))
            assert job_plan.method == "republish"
            assert "job filter" in job_plan.reason
            assert job_plan.total == 6
            assert rp.execute(s, job_plan).records == 6
            assert [p.run(st) for st in ("verify", "batch")] == [6, 6]
            verified = p.read("contacts.verified", 18)
            marked = [m for m in verified if m.headers.get("replay.id")]
            assert len(marked) == 6
            assert {m.headers["replay.id"].decode() for m in marked} == {job_plan.replay_id}
            assert len(env.rows("SELECT 1 FROM batch_members")) == 6
            assert len(p.read("batches.ready", 3, settle=1)) == 3  # so bison-sync has nothing
            # The job tracker: the reset pass (unmarked) is counted again, the re-published
            # one is not — what docs/operations.md says.
            deltas = count_records(
                ("contacts.verified", list(m.headers.items()), 0) for m in verified
            )
            assert deltas[JOB].counts["contacts.verified"] == 12
            # Running the same replay again publishes nothing.
            again = rp.plan(s, "verify", rp.Selection(job_id=JOB), replay_id=job_plan.replay_id)
            assert (again.total, again.resumed) == (0, True)
            assert rp.execute(s, again).records == 0
            assert rp.plan(s, "verify", rp.Selection(job_id=JOB)).total == 6  # a new replay
    finally:
        keys = list(cache.scan_iter(f"{namespace}*"))
        if keys:
            cache.delete(*keys)
        cache.close()


def _last_verdicts(messages: list[Message]) -> dict[str, str]:
    by_email: dict[str, str] = {}
    for m in messages:  # per key, partition order is event order
        by_email[m.value["email_normalized"]] = m.value["verdict"]
    return by_email


def _records_by_partition(settings: Settings, topic: str) -> dict[int, int]:
    """Records per partition, read_committed (transaction markers are not records)."""
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka_bootstrap,
            "group.id": f"reader-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
        }
    )
    consumer.subscribe([topic])
    out: Counter[int] = Counter()
    idle = 0
    try:
        while idle < 4:
            msgs = consumer.consume(500, 0.5)
            idle = 0 if msgs else idle + 1
            for m in msgs:
                out[m.partition() or 0] += 1
    finally:
        consumer.close()
    return dict(out)


# --------------------------------------------------------------------------- method and counts

T0 = int(time.time() * 1000) - 3_600_000  # record i has timestamp T0 + i s


@pytest.fixture
def filtered(settings: Settings) -> str:
    """contacts.filtered (3 partitions) with 30 records, 10 per partition (record i on
    partition i % 3, job ``j-even``/``j-odd``), and verify's group at the end of each."""
    topic = settings.topic("contacts.filtered")
    create_topics(settings, [topic], partitions=3)
    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap, "acks": "all"})
    for i in range(30):
        job = b"j-even" if i % 2 == 0 else b"j-odd"
        producer.produce(
            topic,
            key=f"k{i}".encode(),
            value=f"v{i}".encode(),
            partition=i % 3,
            timestamp=T0 + i * 1000,
            headers=[("job_id", job), ("trace", f"t{i}".encode())],
        )
    assert producer.flush(30) == 0
    group = settings.topic("leadstream-verify")
    admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap})
    ends = [TopicPartition(topic, p, 10) for p in range(3)]
    admin.alter_consumer_group_offsets([ConsumerGroupTopicPartitions(group, ends)])[group].result(
        30
    )
    return topic


def _cli(settings: Settings, *args: str) -> Result:
    env = {
        "LEADSTREAM_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
        "LEADSTREAM_SCHEMA_REGISTRY_URL": settings.schema_registry_url,
        "LEADSTREAM_TOPIC_PREFIX": settings.topic_prefix,
        "COLUMNS": "200",
    }
    return CliRunner().invoke(app, ["replay", *args], env=env)


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat()


def test_method_choice_and_dry_run_counts(settings: Settings, filtered: str) -> None:
    everything = rp.plan(settings, "verify", rp.Selection())
    assert everything.method == "reset", everything.reason
    assert {r.partition: r.records for r in everything.partitions} == {0: 10, 1: 10, 2: 10}
    assert everything.total == 30
    assert any("counts their outcomes again" in w for w in everything.warnings)

    # A time range that ends before the group's position: a reset would re-read too much.
    window = rp.Selection(since_ms=T0 + 15_000, until_ms=T0 + 24_000)  # records 15..23
    part = rp.plan(settings, "verify", window)
    assert part.method == "republish"
    assert "before the group's position" in part.reason
    assert {r.partition: r.records for r in part.partitions} == {0: 3, 1: 3, 2: 3}
    with pytest.raises(rp.ReplayError, match="re-read records outside the range"):
        rp.plan(settings, "verify", window, method="reset")

    # An offset range up to the end of the partition: a reset is exact.
    tail = rp.plan(settings, "verify", rp.Selection(partition=1, from_offset=2))
    assert (tail.method, tail.total, [r.partition for r in tail.partitions]) == ("reset", 8, [1])
    inner = rp.plan(settings, "verify", rp.Selection(partition=1, from_offset=2, to_offset=4))
    assert (inner.method, inner.total) == ("republish", 3)

    # A job: re-published whatever the group does, only that job's records counted.
    job = rp.plan(settings, "verify", rp.Selection(job_id="j-odd", since_ms=T0 + 10_000))
    assert job.method == "republish"
    assert job.total == 10  # 11, 13, ..., 29
    assert not any("twice" in w for w in job.warnings)  # all handled by the stage already

    # The command line: the dry run prints the plan and changes nothing.
    shown = _cli(
        settings, "verify", "--since", _iso(T0 + 15_000), "--until", _iso(T0 + 24_000), "--dry-run"
    )
    assert shown.exit_code == 0, shown.output
    assert "method: republish" in shown.stdout
    assert "total: 9 record(s) in 3 partition(s)" in shown.stdout
    as_json = _cli(settings, "verify", "--job", "j-even", "--dry-run", "--json")
    assert as_json.exit_code == 0, as_json.output
    body = json.loads(as_json.stdout)
    assert body["plan"]["total"] == 15
    assert sorted(p["records"] for p in body["plan"]["partitions"]) == [5, 5, 5]
    refused = _cli(settings, "verify", "--job", "j-even", "--method", "reset", "--dry-run")
    assert refused.exit_code == 1
    assert "cannot reset for a job" in refused.output
    assert _records_by_partition(settings, filtered) == {0: 10, 1: 10, 2: 10}
    done = _cli(settings, "verify", "--job", "j-odd", "--partition", "2", "--yes")
    assert done.exit_code == 0, done.output
    assert "re-published 5 record(s)" in done.stdout  # 5, 11, 17, 23, 29
    assert _records_by_partition(settings, filtered) == {0: 10, 1: 10, 2: 15}

    # The stage running (a member in its group): no reset possible.
    member = Consumer(
        {
            "bootstrap.servers": settings.kafka_bootstrap,
            "group.id": settings.topic("leadstream-verify"),
            "enable.auto.commit": False,
            "session.timeout.ms": 6000,
        }
    )
    member.subscribe([filtered])
    try:
        deadline = time.monotonic() + 30
        while not member.assignment() and time.monotonic() < deadline:
            member.poll(0.2)
        running = rp.plan(settings, "verify", rp.Selection())
        assert running.method == "republish"
        assert "running (1 member(s)" in running.reason
        with pytest.raises(rp.ReplayError, match="stop the stage first"):
            rp.plan(settings, "verify", rp.Selection(), method="reset")
    finally:
        member.close()


def test_a_crashed_republish_resumes_and_publishes_nothing_twice(
    settings: Settings, filtered: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rp, "CHUNK_RECORDS", 4)
    plan = rp.plan(settings, "verify", rp.Selection(job_id="j-even"))
    assert plan.total == 15

    def crash(done: int) -> None:
        raise RuntimeError(f"killed after {done}")

    with pytest.raises(RuntimeError, match="killed after 4"):
        rp.execute(settings, plan, crash)  # dies right after its first committed chunk
    again = rp.plan(settings, "verify", rp.Selection(job_id="j-even"), replay_id=plan.replay_id)
    assert again.resumed
    assert again.total == 11
    assert rp.execute(settings, again).records == 11
    assert rp.execute(settings, again).records == 0  # and once more: nothing left

    everything = read_all(settings, filtered, expect=45, timeout=20, settle=1)
    assert len(everything) == 45
    copies = [m for m in everything if dict(m.headers() or []).get("replay.of")]
    assert len(copies) == 15
    of = Counter(dict(m.headers())["replay.of"].decode() for m in copies)
    assert max(of.values()) == 1
    for m in copies:
        headers = dict(m.headers())
        src_topic, src_part, src_off = headers["replay.of"].decode().rsplit(":", 2)
        i = int(m.key().decode()[1:])
        assert (src_topic, int(src_part), int(src_off)) == (filtered, i % 3, i // 3)
        assert m.partition() == i % 3  # the original's partition
        assert (m.value(), headers["trace"], headers["job_id"]) == (
            f"v{i}".encode(),
            f"t{i}".encode(),
            b"j-even",
        )
        assert headers["replay.id"].decode() == plan.replay_id


# --------------------------------------------------------------------------- admin API


def test_admin_route_plans_starts_and_reports_a_replay(stack: Stack) -> None:
    with running_world(stack) as world:
        s = world.settings
        topic = s.topic("contacts.filtered")
        produce(
            s,
            topic,
            [
                (f"k{i}".encode(), b"v", [("job_id", b"j-api" if i < 4 else b"other")])
                for i in range(7)
            ],
        )
        body = {"stage": "verify", "job_id": "j-api"}
        client, keys = world.client, world.keys
        assert client.post("/v1/admin/replay", json=body).status_code == 401
        denied = client.post("/v1/admin/replay", json=body, headers=keys.auth(keys.ingest))
        assert denied.status_code == 403
        admin = keys.auth(keys.admin)

        planned = client.post("/v1/admin/replay", json=body, headers=admin)
        assert planned.status_code == 200, planned.text
        plan = planned.json()["plan"]
        assert (planned.json()["status"], plan["method"], plan["total"]) == (
            "planned",
            "republish",
            4,
        )
        assert "job filter" in plan["reason"]
        # verify never ran here: the copies would be handled on top of the originals.
        assert any("handle them twice" in w for w in plan["warnings"])
        assert sum(p["unhandled"] for p in plan["partitions"]) == 4

        bad = client.post("/v1/admin/replay", json={**body, "method": "reset"}, headers=admin)
        assert (bad.status_code, bad.json()["error"]) == (422, "invalid_replay")
        assert "cannot reset for a job" in bad.json()["reason"]

        started = client.post("/v1/admin/replay", json={**body, "dry_run": False}, headers=admin)
        assert started.status_code == 202, started.text
        where = started.headers["Location"]
        replay_id = started.json()["replay_id"]
        assert where == f"/v1/admin/replay/{replay_id}"
        deadline = time.monotonic() + 30
        state = started.json()
        while state["status"] == "running" and time.monotonic() < deadline:
            time.sleep(0.2)
            state = client.get(where, headers=admin).json()
        assert (state["status"], state["done"], state["total"], state["error"]) == (
            "done",
            4,
            4,
            None,
        )
        assert state["started_by"] == f"api-key:{keys.admin_id}"
        copies = [
            m
            for m in read_all(s, topic, expect=11, timeout=20, settle=1)
            if dict(m.headers()).get("replay.id")
        ]
        assert len(copies) == 4
        audit = [e.value for e in world.decoded("audit.events")]
        mine = sorted(
            (a["action"], a["details"].get("records")) for a in audit if a["target_id"] == replay_id
        )
        assert mine == [("replay.finished", "4"), ("replay.started", None)]
        assert {a["actor"] for a in audit if a["target_id"] == replay_id} == {
            f"api-key:{keys.admin_id}"
        }
        assert client.get(where, headers=keys.auth(keys.ingest)).status_code == 403
        missing = client.get("/v1/admin/replay/nope", headers=admin)
        assert (missing.status_code, missing.json()["error"]) == (404, "replay_not_found")
