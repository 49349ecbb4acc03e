"""Each server of the local stack, exercised through the clients the product uses."""

from __future__ import annotations

import time
import uuid

import pymongo
import pytest
import redis
import sqlalchemy as sa
from confluent_kafka import Consumer, KafkaException, Producer
from confluent_kafka.admin import AdminClient, NewTopic
from confluent_kafka.schema_registry import SchemaRegistryClient, topic_subject_name_strategy
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext
from pymongo.errors import BulkWriteError, DuplicateKeyError

from leadstream.settings import Settings

pytestmark = pytest.mark.integration


def _create_topic(settings: Settings, name: str, **config: str) -> None:
    admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap})
    futures = admin.create_topics([NewTopic(name, 1, 1, config=config)])
    futures[name].result(timeout=30)


def _consume_all(
    settings: Settings, topic: str, expect: int, timeout: float = 30.0, **extra: str
) -> list[tuple[bytes | None, bytes | None]]:
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka_bootstrap,
            "group.id": f"g-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            **extra,
        }
    )
    consumer.subscribe([topic])
    out: list[tuple[bytes | None, bytes | None]] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline and len(out) < expect:
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            if msg.error():
                raise KafkaException(msg.error())
            out.append((msg.key(), msg.value()))
        # A little longer: anything past ``expect`` would be a bug the caller asserts on.
        extra_deadline = time.monotonic() + 1.5
        while time.monotonic() < extra_deadline:
            msg = consumer.poll(0.3)
            if msg is not None and not msg.error():
                out.append((msg.key(), msg.value()))
    finally:
        consumer.close()
    return out


def test_kafka_transactions_are_read_committed(settings: Settings) -> None:
    topic = settings.topic("tx")
    _create_topic(settings, topic)
    producer = Producer(
        {
            "bootstrap.servers": settings.kafka_bootstrap,
            "transactional.id": f"tx-{uuid.uuid4().hex}",
            "enable.idempotence": True,
            "acks": "all",
        }
    )
    producer.init_transactions(30)
    producer.begin_transaction()
    producer.produce(topic, key=b"a", value=b"aborted")
    producer.flush()
    producer.abort_transaction(30)
    producer.begin_transaction()
    for i in range(3):
        producer.produce(topic, key=b"k", value=f"committed-{i}".encode())
    producer.commit_transaction(30)

    committed = _consume_all(settings, topic, 3, **{"isolation.level": "read_committed"})
    assert [v for _, v in committed] == [b"committed-0", b"committed-1", b"committed-2"]
    uncommitted = _consume_all(settings, topic, 4, **{"isolation.level": "read_uncommitted"})
    assert b"aborted" in [v for _, v in uncommitted]


def test_compacted_topic_keeps_latest_and_drops_tombstones(settings: Settings) -> None:
    topic = settings.topic("compact")
    _create_topic(
        settings,
        topic,
        **{
            "cleanup.policy": "compact",
            "segment.ms": "200",
            "min.cleanable.dirty.ratio": "0.01",
            "delete.retention.ms": "0",
            "min.compaction.lag.ms": "0",
        },
    )
    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap, "linger.ms": 0})
    for i in range(5):
        producer.produce(topic, key=b"job-1", value=f"v{i}".encode())
    producer.produce(topic, key=b"job-2", value=b"x")
    producer.produce(topic, key=b"job-2", value=None)  # tombstone
    producer.flush()

    deadline = time.monotonic() + 90
    seen: list[tuple[bytes | None, bytes | None]] = []
    while time.monotonic() < deadline:
        # Keep writing a filler key so the active segment rolls and the cleaner has work.
        producer.produce(topic, key=b"filler", value=b"f")
        producer.flush()
        time.sleep(1.0)
        seen = [kv for kv in _consume_all(settings, topic, 10_000, timeout=2) if kv[0] != b"filler"]
        if seen == [(b"job-1", b"v4")]:
            break
    assert seen == [(b"job-1", b"v4")], f"not compacted after 90 s: {seen}"


def test_registry_confluent_api_avro_round_trip(settings: Settings) -> None:
    with SchemaRegistryClient({"url": settings.schema_registry_url}) as client:
        schema = """{"type": "record", "name": "Probe", "namespace": "io.leadstream.test",
                     "fields": [{"name": "email", "type": "string"},
                                {"name": "n", "type": "long"}]}"""
        topic = settings.topic("avro")
        serializer = AvroSerializer(
            client, schema, conf={"subject.name.strategy": topic_subject_name_strategy}
        )
        deserializer = AvroDeserializer(
            client, conf={"subject.name.strategy": topic_subject_name_strategy}
        )
        ctx = SerializationContext(topic, MessageField.VALUE)
        payload = serializer({"email": "a@example.com", "n": 7}, ctx)
        assert payload is not None
        assert payload[0] == 0  # Confluent framing: magic byte, then a 4-byte schema id
        schema_id = int.from_bytes(payload[1:5], "big")
        assert client.get_schema(schema_id).schema_str is not None
        assert deserializer(payload, ctx) == {"email": "a@example.com", "n": 7}
        latest = client.get_latest_version(f"{topic}-value")
        assert latest.schema_id == schema_id


def test_postgres_via_sqlalchemy_and_psycopg3(settings: Settings) -> None:
    engine = sa.create_engine(settings.sqlalchemy_url())
    table = f"probe_{uuid.uuid4().hex[:8]}"
    try:
        with engine.begin() as conn:
            assert conn.dialect.driver == "psycopg"
            conn.execute(sa.text(f"CREATE TABLE {table} (email text PRIMARY KEY, n int)"))
            conn.execute(
                sa.text(f"INSERT INTO {table} VALUES (:e, :n)"),
                [{"e": "a@x.io", "n": 1}, {"e": "b@x.io", "n": 2}],
            )
            conn.execute(
                sa.text(
                    f"INSERT INTO {table} VALUES ('a@x.io', 5) "
                    f"ON CONFLICT (email) DO UPDATE SET n = excluded.n"
                )
            )
        with engine.connect() as conn:
            rows = conn.execute(sa.text(f"SELECT email, n FROM {table} ORDER BY email")).all()
        assert [tuple(r) for r in rows] == [("a@x.io", 5), ("b@x.io", 2)]
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text(f"DROP TABLE IF EXISTS {table}"))
        engine.dispose()


def test_ferretdb_via_pymongo(settings: Settings, prefix: str) -> None:
    client: pymongo.MongoClient[dict[str, object]] = pymongo.MongoClient(
        settings.mongo_url, serverSelectionTimeoutMS=5000
    )
    coll = client[settings.mongo_database][f"{prefix}probe".replace(".", "_")]
    try:
        coll.create_index("request_id", unique=True)
        coll.insert_many([{"request_id": f"r{i}", "status": 200 + i} for i in range(5)])
        found = sorted(d["request_id"] for d in coll.find({"status": {"$gte": 202}}))
        assert found == ["r2", "r3", "r4"]
        with pytest.raises(DuplicateKeyError):
            coll.insert_one({"request_id": "r1", "status": 500})
        with pytest.raises(BulkWriteError):
            coll.insert_many([{"request_id": "r9"}, {"request_id": "r0"}], ordered=True)
        assert coll.count_documents({}) == 6
    finally:
        coll.drop()
        client.close()


def test_redis_commands_and_lua(settings: Settings, prefix: str) -> None:
    client = redis.Redis.from_url(settings.redis_url)
    key = f"{prefix}counter"
    try:
        script = client.register_script(
            "local n = redis.call('INCR', KEYS[1]); "
            "if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end; return n"
        )
        assert [script(keys=[key], args=[60_000]) for _ in range(3)] == [1, 2, 3]
        assert 0 < client.pttl(key) <= 60_000
    finally:
        client.delete(key)
        client.close()
