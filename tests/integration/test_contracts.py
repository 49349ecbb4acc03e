"""Event contracts on the real registry and Kafka: BACKWARD enforcement, the serde on every
topic, the documented upstream producer, typed decode errors, and ``topics apply``."""

from __future__ import annotations

import copy
import datetime as dt
import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from confluent_kafka import Consumer, KafkaException, SerializingProducer
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    ResourceType,
)
from confluent_kafka.schema_registry import (
    Schema,
    SchemaRegistryClient,
    topic_subject_name_strategy,
)
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.schema_registry.error import SchemaRegistryError
from confluent_kafka.serialization import MessageField, SerializationContext, StringSerializer
from typer.testing import CliRunner

from leadstream.cli import app
from leadstream.events import (
    CheckStatus,
    SchemaNotRegisteredError,
    Serde,
    UndecodableEventError,
    check_schemas,
    load_schemas,
    register_schemas,
)
from leadstream.settings import Settings
from leadstream.topics import CATALOG, Action, TopicSettings, apply, schema_topics, topic

pytestmark = pytest.mark.integration

SCHEMAS = load_schemas(Settings())
NOW = dt.datetime(2025, 6, 1, 12, 30, 15, 123000, tzinfo=dt.UTC)


@pytest.fixture
def registry(settings: Settings) -> Iterator[SchemaRegistryClient]:
    """A registry client; deletes the test's subjects afterwards."""
    with SchemaRegistryClient({"url": settings.schema_registry_url}) as client:
        yield client
        for subject in client.get_subjects():
            if subject.startswith(settings.topic_prefix):
                for permanent in (False, True):
                    try:
                        client.delete_subject(subject, permanent=permanent)
                    except SchemaRegistryError:
                        break


@pytest.fixture
def admin(settings: Settings) -> Iterator[AdminClient]:
    """An admin client; deletes the test's topics afterwards."""
    client = AdminClient({"bootstrap.servers": settings.kafka_bootstrap})
    yield client
    mine = [t for t in client.list_topics(timeout=10).topics if t.startswith(settings.topic_prefix)]
    if mine:
        for future in client.delete_topics(mine, request_timeout=30).values():
            future.result(timeout=30)


# confluent-kafka >= 2.13 asks /associations first by default (Apicurio: 404, and a client was
# seen hanging on it): name subjects <topic>-value, as upstream producers are told to.
CLASSIC_READS = {"subject.name.strategy": topic_subject_name_strategy}
CLASSIC_SUBJECTS = {
    "auto.register.schemas": False,
    "subject.name.strategy": topic_subject_name_strategy,
}


def _sample(schema: Any, name: str = "") -> Any:
    """A value for every field of a schema (optional fields set, so every branch is written)."""
    if isinstance(schema, list):
        return _sample(next(s for s in schema if s != "null"), name)
    if isinstance(schema, dict):
        kind = schema["type"]
        if schema.get("logicalType") == "timestamp-millis":
            return NOW
        if kind == "record":
            return {f["name"]: _sample(f["type"], f["name"]) for f in schema["fields"]}
        if kind == "array":
            return [_sample(schema["items"], name), _sample(schema["items"], name)]
        if kind == "map":
            return {"a": _sample(schema["values"], name), "b": _sample(schema["values"], name)}
        return _sample(kind, name)
    return {
        "string": f"{name}-ü-{uuid.uuid4().hex[:6]}",
        "long": 2**40 + 7,
        "int": 7,
        "double": 1.25,
        "boolean": True,
    }[schema]


def _contact(email: str = "Jane.Doe@Example.com") -> dict[str, Any]:
    return {
        "event_id": str(uuid.uuid4()),
        "job_id": "job-1",
        "source": "upstream:crm",
        "event_time": NOW,
        "email": email,
        "first_name": "Jane",
        "last_name": "Doe",
        "tags": ["insurance"],
        "custom_fields": {"policy": "auto"},
    }


# --- the registry enforces BACKWARD ---------------------------------------------------------


def test_registry_refuses_incompatible_and_accepts_compatible_changes(
    settings: Settings, registry: SchemaRegistryClient
) -> None:
    only_raw = [topic("contacts.raw")]
    [registered] = register_schemas(settings, registry, catalog=only_raw)
    subject = f"{settings.topic('contacts.raw')}-value"
    assert (registered.subject, registered.compatibility, registered.ok) == (
        subject,
        "BACKWARD",
        True,
    )
    assert registry.get_compatibility(subject) == "BACKWARD"

    base = dict(SCHEMAS["ContactSubmitted"].definition)
    breaking = copy.deepcopy(base)
    breaking["fields"].append({"name": "score", "type": "int", "doc": "no default"})
    with pytest.raises(SchemaRegistryError) as refused:
        registry.register_schema(subject, Schema(json.dumps(breaking), "AVRO"))
    assert refused.value.http_status_code == 409
    assert registry.test_compatibility(subject, Schema(json.dumps(breaking), "AVRO")) is False

    compatible = copy.deepcopy(base)
    compatible["fields"].append(
        {"name": "score", "type": ["null", "int"], "default": None, "doc": "optional"}
    )
    new_id = registry.register_schema(subject, Schema(json.dumps(compatible), "AVRO"))
    assert new_id != registered.schema_id
    assert registry.get_latest_version(subject).schema_id == new_id


def test_register_is_idempotent_and_check_reports_each_subject(
    settings: Settings, registry: SchemaRegistryClient
) -> None:
    unregistered = check_schemas(settings, registry)
    assert {c.status for c in unregistered} == {CheckStatus.UNREGISTERED}
    first = register_schemas(settings, registry)
    again = register_schemas(settings, registry)
    assert len(first) == len(list(schema_topics(CATALOG))) == 12
    assert all(r.ok for r in first)
    assert [r.schema_id for r in again] == [r.schema_id for r in first]
    checks = {c.topic: c for c in check_schemas(settings, registry)}
    assert {c.status for c in checks.values()} == {CheckStatus.UNCHANGED}

    # Someone registered a newer version with one more field: the repo schema can still read
    # it (BACKWARD), so it is compatible but no longer the latest.
    subject = f"{settings.topic('jobs.events')}-value"
    newer = copy.deepcopy(dict(SCHEMAS["JobEvent"].definition))
    newer["fields"].append({"name": "owner", "type": "string", "doc": "x", "default": "ops"})
    registry.register_schema(subject, Schema(json.dumps(newer), "AVRO"))
    check = {c.topic: c for c in check_schemas(settings, registry)}["jobs.events"]
    assert check.status is CheckStatus.COMPATIBLE  # dropping a field is BACKWARD-compatible

    sub = f"{settings.topic('audit.events')}-value"
    retyped = copy.deepcopy(dict(SCHEMAS["AuditEvent"].definition))
    for f in retyped["fields"]:
        if f["name"] == "actor":
            f["type"] = "long"
    registry.set_compatibility(subject_name=sub, level="NONE")
    registry.register_schema(sub, Schema(json.dumps(retyped), "AVRO"))
    registry.set_compatibility(subject_name=sub, level="BACKWARD")
    bad = {c.topic: c for c in check_schemas(settings, registry)}["audit.events"]
    assert bad.status is CheckStatus.INCOMPATIBLE
    assert "type_mismatch" in " ".join(bad.messages)


# --- the serde on every topic ---------------------------------------------------------------


def test_serde_round_trips_a_record_of_every_topic(
    settings: Settings, registry: SchemaRegistryClient
) -> None:
    ids = {r.topic: r.schema_id for r in register_schemas(settings, registry)}
    with (
        Serde(settings) as serde,
        SchemaRegistryClient({"url": settings.schema_registry_url}) as stock_reader,
    ):
        _round_trip_every_topic(settings, serde, stock_reader, ids)


def _round_trip_every_topic(
    settings: Settings, serde: Serde, stock_reader: SchemaRegistryClient, ids: dict[str, Any]
) -> None:
    for spec in schema_topics(CATALOG):
        assert spec.value_schema is not None
        record = _sample(dict(SCHEMAS[spec.value_schema].definition))
        data = serde.serialize(record, spec.name)
        assert data[0] == 0, spec.name
        assert int.from_bytes(data[1:5], "big") == ids[spec.name], spec.name
        assert serde.deserialize(data, spec.name) == record, spec.name
        # The bytes are what the stock Confluent deserializer expects (any language's is alike).
        ctx = SerializationContext(settings.topic(spec.name), MessageField.VALUE)
        assert AvroDeserializer(stock_reader, conf=CLASSIC_READS)(data, ctx) == record, spec.name


def test_serde_reads_an_older_writer_with_defaults(
    settings: Settings, registry: SchemaRegistryClient
) -> None:
    subject = f"{settings.topic('contacts.raw')}-value"
    registry.set_compatibility(subject_name=subject, level="BACKWARD")
    older = copy.deepcopy(dict(SCHEMAS["ContactSubmitted"].definition))
    older["fields"] = [f for f in older["fields"] if f["name"] not in {"postal_code", "consent"}]
    registry.register_schema(subject, Schema(json.dumps(older), "AVRO"))
    register_schemas(settings, registry, catalog=[topic("contacts.raw")])
    old_writer = AvroSerializer(
        registry,
        json.dumps(older),
        conf=CLASSIC_SUBJECTS,
    )
    record = _contact()
    data = old_writer(
        record, SerializationContext(settings.topic("contacts.raw"), MessageField.VALUE)
    )
    assert data is not None
    decoded = Serde(settings, registry).deserialize(data, "contacts.raw")
    assert decoded["postal_code"] is None
    assert decoded["consent"] is None
    assert decoded["email"] == record["email"]


def test_serde_never_registers_on_its_own(
    settings: Settings, registry: SchemaRegistryClient
) -> None:
    serde = Serde(settings, registry)
    with pytest.raises(SchemaNotRegisteredError):
        serde.serialize(_contact(), "contacts.raw")
    assert f"{settings.topic('contacts.raw')}-value" not in registry.get_subjects()


def test_undecodable_bytes_raise_the_typed_error(
    settings: Settings, registry: SchemaRegistryClient
) -> None:
    register_schemas(settings, registry, catalog=[topic("contacts.raw"), topic("jobs.events")])
    serde = Serde(settings, registry)
    good = serde.serialize(_contact(), "contacts.raw")
    job = serde.serialize(_sample(dict(SCHEMAS["JobEvent"].definition)), "jobs.events")
    cases = {
        "magic-byte": b"\x01" + good[1:],
        "unknown-schema-id": b"\x00" + (2**31 - 5).to_bytes(4, "big") + good[5:],
        "truncated": good[:3],
        "bad-payload": good[: len(good) - 7],
    }
    for reason, data in cases.items():
        with pytest.raises(UndecodableEventError) as caught:
            serde.deserialize(data, "contacts.raw")
        assert caught.value.reason == reason
    with pytest.raises(UndecodableEventError) as caught:
        serde.deserialize(job, "contacts.raw")  # a JobEvent on the contacts topic
    assert caught.value.reason == "bad-payload"
    assert serde.deserialize(good, "contacts.raw")["email"] == "Jane.Doe@Example.com"


# --- the upstream producer of docs/events.md --------------------------------------------------


def test_documented_upstream_producer_publishes_contact_submitted(
    settings: Settings, registry: SchemaRegistryClient, admin: AdminClient
) -> None:
    apply(TopicSettings.of(settings), catalog=[topic("contacts.raw")], admin=admin)
    register_schemas(settings, registry, catalog=[topic("contacts.raw")])
    raw_topic = settings.topic("contacts.raw")

    # As in docs/events.md: a stock serializer, the schema file, no auto-registration.
    schema_str = SCHEMAS["ContactSubmitted"].path.read_text(encoding="utf-8")
    record = _contact("  Jane.Doe@Example.com ")
    with SchemaRegistryClient({"url": settings.schema_registry_url}) as upstream_registry:
        producer = SerializingProducer(
            {
                "bootstrap.servers": settings.kafka_bootstrap,
                "enable.idempotence": True,
                "acks": "all",
                "key.serializer": StringSerializer("utf_8"),
                "value.serializer": AvroSerializer(
                    upstream_registry,
                    schema_str,
                    conf={
                        "auto.register.schemas": False,
                        "subject.name.strategy": topic_subject_name_strategy,
                    },
                ),
            }
        )
        key = record["email"].strip().lower()
        producer.produce(raw_topic, key=key, value=record, headers=[("job_id", b"job-1")])
        assert producer.flush(30) == 0

    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka_bootstrap,
            "group.id": f"{settings.topic_prefix}g",
            "auto.offset.reset": "earliest",
        }
    )
    consumer.subscribe([raw_topic])
    try:
        deadline = time.monotonic() + 30
        msg = None
        while msg is None and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
        assert msg is not None, "nothing consumed"
        if msg.error():
            raise KafkaException(msg.error())
    finally:
        consumer.close()
    assert msg.key() == b"jane.doe@example.com"
    assert dict(msg.headers() or []) == {"job_id": b"job-1"}
    assert Serde(settings, registry).deserialize(msg.value() or b"", msg.topic() or "") == {
        **{f["name"]: f.get("default") for f in SCHEMAS["ContactSubmitted"].definition["fields"]},
        **record,
    }


# --- topics apply ---------------------------------------------------------------------------


def test_apply_creates_the_catalog_then_changes_nothing(
    settings: Settings, admin: AdminClient
) -> None:
    cfg = TopicSettings.of(settings)
    first = apply(cfg, admin=admin)
    assert first.ok
    assert {c.topic for c in first.changes if c.action is Action.CREATE} == {
        settings.topic(s.name) for s in CATALOG
    }
    live = admin.list_topics(timeout=10).topics
    assert len(live[settings.topic("contacts.raw")].partitions) == 6
    assert len(live[settings.topic("dlq.filter")].partitions) == 1

    second = apply(cfg, admin=admin)
    assert (second.changes, second.unfixable, second.unmanaged) == ((), (), ())
    assert not second.changed


def test_apply_detects_and_fixes_hand_made_config_drift(
    settings: Settings, admin: AdminClient
) -> None:
    cfg = TopicSettings.of(settings)
    apply(cfg, admin=admin)
    state = settings.topic("jobs.state")
    drift = ConfigResource(
        ResourceType.TOPIC,
        state,
        incremental_configs=[
            ConfigEntry(
                "min.cleanable.dirty.ratio", "0.9", incremental_operation=AlterConfigOpType.SET
            ),
            ConfigEntry("segment.bytes", "10485760", incremental_operation=AlterConfigOpType.SET),
        ],
    )
    for future in admin.incremental_alter_configs([drift]).values():
        future.result(timeout=30)
    _wait_for_config(admin, state, "min.cleanable.dirty.ratio", "0.9")

    seen = apply(cfg, admin=admin, dry_run=True)
    assert [(c.topic, c.setting, c.current, c.wanted) for c in seen.changes] == [
        (state, "min.cleanable.dirty.ratio", "0.9", "0.1")
    ]
    assert [(d.topic, d.setting) for d in seen.unmanaged] == [(state, "segment.bytes")]
    assert apply(cfg, admin=admin, dry_run=True).changes == seen.changes  # dry run left it

    fixed = apply(cfg, admin=admin)
    assert fixed.changes == seen.changes
    after = apply(cfg, admin=admin)
    assert after.changes == ()


def _wait_for_config(admin: AdminClient, name: str, key: str, value: str) -> None:
    """The broker shows a config change a moment after the admin call returns."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        [future] = admin.describe_configs([ConfigResource(ResourceType.TOPIC, name)]).values()
        if future.result(timeout=30)[key].value == value:
            return
        time.sleep(0.1)
    pytest.fail(f"{name} {key} never became {value}")


def test_apply_adds_partitions_and_reports_what_it_cannot_fix(
    settings: Settings, admin: AdminClient
) -> None:
    only = [topic("contacts.verified"), topic("dlq.verify")]
    apply(TopicSettings.of(settings), catalog=only, admin=admin)
    grown = apply(TopicSettings.of(settings, topic_partitions=8), catalog=only, admin=admin)
    assert [(c.action, c.current, c.wanted) for c in grown.changes] == [
        (Action.ADD_PARTITIONS, "6", "8")
    ]
    live = admin.list_topics(timeout=10).topics
    assert len(live[settings.topic("contacts.verified")].partitions) == 8

    shrink = apply(TopicSettings.of(settings), catalog=only, admin=admin)
    assert not shrink.ok
    assert [(d.setting, d.current, d.wanted) for d in shrink.unfixable] == [
        ("partitions", "8", "6")
    ]
    replicas = apply(
        TopicSettings.of(settings, topic_partitions=8, topic_replication_factor=2),
        catalog=only,
        admin=admin,
        dry_run=True,
    )
    assert {(d.setting, d.current, d.wanted) for d in replicas.unfixable} == {
        ("replication_factor", "1", "2")
    }


def test_cli_topics_and_schemas(
    settings: Settings, registry: SchemaRegistryClient, admin: AdminClient
) -> None:
    env = {
        "LEADSTREAM_TOPIC_PREFIX": settings.topic_prefix,
        "LEADSTREAM_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
        "LEADSTREAM_SCHEMA_REGISTRY_URL": settings.schema_registry_url,
        "COLUMNS": "200",
    }
    runner = CliRunner()
    dry = runner.invoke(app, ["topics", "apply", "--dry-run"], env=env)
    assert dry.exit_code == 0, dry.output
    assert "19 changes (would)" in dry.output
    assert settings.topic("contacts.raw") not in admin.list_topics(timeout=10).topics
    done = runner.invoke(app, ["topics", "apply"], env=env)
    assert done.exit_code == 0, done.output
    again = runner.invoke(app, ["topics", "apply"], env=env)
    assert "0 changes (did)" in again.output
    listed = runner.invoke(app, ["topics", "list"], env=env)
    assert settings.topic("jobs.state") in listed.output
    assert "compact" in listed.output

    registered = runner.invoke(app, ["schemas", "register"], env=env)
    assert registered.exit_code == 0, registered.output
    checked = runner.invoke(app, ["schemas", "check"], env=env)
    assert checked.exit_code == 0, checked.output
    assert checked.output.count("unchanged") == 12
