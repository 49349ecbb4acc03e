"""The event schemas (schemas/*.avsc): well-formed, documented, evolvable; and the serde's
framing and typed errors against an in-memory registry (no servers)."""

from __future__ import annotations

import copy
import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import avro.schema
import pytest
from avro.compatibility import ReaderWriterCompatibilityChecker, SchemaCompatibilityType
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from fastavro import parse_schema

from leadstream.events import (
    NAMESPACE,
    EventSettings,
    InvalidEventError,
    SchemaFileError,
    SchemaNotRegisteredError,
    SchemaSet,
    Serde,
    UndecodableEventError,
    UnknownTopicSchemaError,
    backward_compatible,
    contact_id,
    find_schemas_dir,
    load_schemas,
)
from leadstream.settings import Settings
from leadstream.topics import CATALOG

ROOT = Path(__file__).resolve().parents[2]
SCHEMAS = ROOT / "schemas"
RELEASED = SCHEMAS / "released" / "v1"
FILES = sorted(SCHEMAS.glob("*.avsc"))
EXPECTED = {
    "ContactSubmitted", "ContactFiltered", "ContactRejected", "ContactVerified", "BatchReady",
    "BatchSynced", "BisonEvent", "Registration", "RequestLog", "AuditEvent", "JobState", "JobEvent",
}  # fmt: skip
TS_MILLIS = {"type": "long", "logicalType": "timestamp-millis"}


def _load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def _records(schema: Any) -> Iterator[dict[str, Any]]:
    """Every record definition inside a schema, nested ones included."""
    if isinstance(schema, list):
        for branch in schema:
            yield from _records(branch)
    elif isinstance(schema, dict):
        if schema.get("type") == "record":
            yield schema
            for f in schema["fields"]:
                yield from _records(f["type"])
        elif schema.get("type") == "array":
            yield from _records(schema["items"])
        elif schema.get("type") == "map":
            yield from _records(schema["values"])


def _fields(schema: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f["name"]: f for f in schema["fields"]}


def _incompatible(reader: dict[str, Any], writer: dict[str, Any]) -> bool:
    result = ReaderWriterCompatibilityChecker().get_compatibility(
        avro.schema.parse(json.dumps(reader)), avro.schema.parse(json.dumps(writer))
    )
    return result.compatibility is SchemaCompatibilityType.incompatible


def test_every_expected_schema_has_a_file_and_a_released_copy() -> None:
    assert {p.stem for p in FILES} == EXPECTED
    assert {p.stem for p in RELEASED.glob("*.avsc")} == EXPECTED


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_schema_parses_with_fastavro(path: Path) -> None:
    parsed = parse_schema(_load(path), named_schemas={})
    assert parsed["name"] == f"{NAMESPACE}.{path.stem}"


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_every_record_and_field_is_documented(path: Path) -> None:
    schema = _load(path)
    assert schema["namespace"] == NAMESPACE
    for record in _records(schema):
        assert record.get("doc", "").strip(), f"record {record['name']} has no doc"
        for field in record["fields"]:
            assert field.get("doc", "").strip(), f"{record['name']}.{field['name']} has no doc"


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_every_event_carries_the_envelope(path: Path) -> None:
    fields = _fields(_load(path))
    assert fields["event_id"]["type"] == "string"
    assert fields["source"]["type"] == "string"
    assert fields["event_time"]["type"] == TS_MILLIS
    if "job_id" in fields:  # nullable, or the required key of a job-scoped event
        job = fields["job_id"]
        assert job["type"] == "string" or (
            job["type"] == ["null", "string"] and job["default"] is None
        )


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_optional_fields_are_null_first_with_a_null_default(path: Path) -> None:
    for record in _records(_load(path)):
        for field in record["fields"]:
            if isinstance(field["type"], list):
                assert field["type"][0] == "null", f"{record['name']}.{field['name']}"
                assert "default" in field, field["name"]
                assert field["default"] is None, field["name"]


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_codes_are_strings_not_enums(path: Path) -> None:
    assert '"enum"' not in path.read_text(encoding="utf-8")


def test_nested_types_with_one_name_have_one_definition() -> None:
    seen: dict[str, dict[str, Any]] = {}
    for path in FILES:
        for record in list(_records(_load(path)))[1:]:
            name = record["name"]
            assert seen.setdefault(name, record) == record, f"{name} differs in {path.name}"
    assert {"SourceDetails", "Consent"} <= seen.keys()


def test_filtered_and_verified_contacts_carry_the_normalized_fields() -> None:
    wanted = {"contact_id", "email_normalized", "domain", "phone_e164", "role_account"}
    for name in ("ContactFiltered", "ContactVerified"):
        assert wanted | {"free_provider"} <= _fields(_load(SCHEMAS / f"{name}.avsc")).keys()
    verified = _fields(_load(SCHEMAS / "ContactVerified.avsc"))
    assert {"verdict", "reasons", "mx_host", "disposable_list_version", "suggestion"} <= set(
        verified
    )
    submitted = set(_fields(_load(SCHEMAS / "ContactSubmitted.avsc"))) - {"event_id", "source"}
    rejected = set(_fields(_load(SCHEMAS / "ContactRejected.avsc")))
    assert submitted <= rejected, "a rejection keeps every original field"
    assert {"reason", "detail"} <= rejected


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_schema_is_backward_compatible_with_released_v1(path: Path) -> None:
    new, old = _load(path), _load(RELEASED / path.name)
    assert not _incompatible(reader=new, writer=old)
    assert backward_compatible(new, old).compatible


@pytest.mark.parametrize(
    ("change", "expect_incompatible"),
    [
        ("add a required field", True),
        ("change a field's type", True),
        ("make a nullable field required", True),
        ("add an optional field with a null default", False),
        ("remove a field", False),  # BACKWARD: the new reader ignores it
    ],
)
def test_the_compatibility_check_catches_breaking_changes(
    change: str, expect_incompatible: bool
) -> None:
    old = _load(RELEASED / "ContactSubmitted.avsc")
    new = copy.deepcopy(old)
    fields = new["fields"]
    if change == "add a required field":
        fields.append({"name": "score", "type": "int", "doc": "x"})
    elif change == "change a field's type":
        next(f for f in fields if f["name"] == "email")["type"] = "long"
    elif change == "make a nullable field required":
        company = next(f for f in fields if f["name"] == "company")
        company["type"] = "string"
        del company["default"]
    elif change == "add an optional field with a null default":
        fields.append({"name": "score", "type": ["null", "int"], "default": None, "doc": "x"})
    else:
        new["fields"] = [f for f in fields if f["name"] != "title"]
    assert _incompatible(reader=new, writer=old) is expect_incompatible
    assert backward_compatible(new, old).compatible is not expect_incompatible


def test_every_catalog_schema_exists_and_every_schema_has_a_topic() -> None:
    used = {spec.value_schema for spec in CATALOG if spec.value_schema}
    assert used == EXPECTED


def test_loader_finds_schemas_by_walking_up_and_by_setting(tmp_path: Path) -> None:
    deep = ROOT / "libs" / "leadstream"
    assert find_schemas_dir(start=deep) == SCHEMAS
    (tmp_path / "ContactSubmitted.avsc").write_text((SCHEMAS / "ContactSubmitted.avsc").read_text())
    settings = EventSettings(schemas_dir=tmp_path)
    assert find_schemas_dir(settings) == tmp_path
    assert set(load_schemas(settings)) == {"ContactSubmitted"}
    with pytest.raises(SchemaFileError):
        find_schemas_dir(start=tmp_path)
    with pytest.raises(SchemaFileError):
        load_schemas(EventSettings(schemas_dir=tmp_path / "missing"))


def test_loader_refuses_a_file_named_unlike_its_record(tmp_path: Path) -> None:
    (tmp_path / "Wrong.avsc").write_text((SCHEMAS / "JobEvent.avsc").read_text())
    with pytest.raises(SchemaFileError, match="differs from the file name"):
        SchemaSet.load(tmp_path)


def test_registry_text_ignores_formatting() -> None:
    schema = load_schemas(Settings())["JobEvent"]
    assert json.loads(schema.text) == _load(SCHEMAS / "JobEvent.avsc")
    assert "\n" not in schema.text


def test_contact_id_is_deterministic() -> None:
    assert contact_id("jane@example.com") == contact_id("jane@example.com")
    assert contact_id("jane@example.com") != contact_id("john@example.com")


# --- the serde against an in-memory registry ------------------------------------------------

JOB_EVENT = {
    "event_id": "e-1",
    "job_id": "job-1",
    "source": "csv",
    "event_time": dt.datetime(2025, 1, 2, 3, 4, 5, 678000, tzinfo=dt.UTC),
    "event_type": "sealed",
    "kind": "csv",
    "name": "leads.csv",
    "expected_total": 1200,
    "request_id": None,
    "details": {"row_errors": "3"},
}


@pytest.fixture
def memory() -> tuple[Settings, SchemaRegistryClient]:
    settings = Settings(schema_registry_url="mock://unit", topic_prefix="u.")
    registry = SchemaRegistryClient.new_client({"url": settings.schema_registry_url})
    return settings, registry


def _register(registry: SchemaRegistryClient, subject: str, name: str) -> int:
    text = load_schemas(Settings())[name].text
    return registry.register_schema(subject, Schema(text, "AVRO"))


def test_serde_frames_and_round_trips(memory: tuple[Settings, SchemaRegistryClient]) -> None:
    settings, registry = memory
    schema_id = _register(registry, "u.jobs.events-value", "JobEvent")
    serde = Serde(settings, registry)
    data = serde.serialize(JOB_EVENT, "jobs.events")
    assert data[0] == 0
    assert int.from_bytes(data[1:5], "big") == schema_id
    assert serde.deserialize(data, "u.jobs.events") == JOB_EVENT  # physical name works too
    assert serde.codec("jobs.events") is serde.codec("u.jobs.events")


def test_serde_does_not_register(memory: tuple[Settings, SchemaRegistryClient]) -> None:
    settings, registry = memory
    serde = Serde(settings, registry)
    with pytest.raises(SchemaNotRegisteredError):
        serde.serialize(JOB_EVENT, "jobs.events")
    assert "u.jobs.events-value" not in registry.get_subjects()


def test_serde_rejects_records_that_break_the_schema(
    memory: tuple[Settings, SchemaRegistryClient],
) -> None:
    settings, registry = memory
    _register(registry, "u.jobs.events-value", "JobEvent")
    serde = Serde(settings, registry)
    with pytest.raises(InvalidEventError):
        serde.serialize({**JOB_EVENT, "expected_total": "many"}, "jobs.events")
    with pytest.raises(InvalidEventError):
        serde.serialize({k: v for k, v in JOB_EVENT.items() if k != "event_type"}, "jobs.events")


@pytest.mark.parametrize(
    ("mangle", "reason"),
    [
        (lambda d: b"", "truncated"),
        (lambda d: d[:4], "truncated"),
        (lambda d: b"\x01" + d[1:], "magic-byte"),
        (lambda d: b"\x00\x7f\xff\xff\xfe" + d[5:], "unknown-schema-id"),
        (lambda d: d[: len(d) // 2], "bad-payload"),
        (lambda d: d + b"\x00\x00", "bad-payload"),
    ],
    ids=["empty", "short", "magic", "unknown-id", "cut", "trailing"],
)
def test_undecodable_bytes_raise_the_typed_error(
    memory: tuple[Settings, SchemaRegistryClient], mangle: Any, reason: str
) -> None:
    settings, registry = memory
    _register(registry, "u.jobs.events-value", "JobEvent")
    serde = Serde(settings, registry)
    data = serde.serialize(JOB_EVENT, "jobs.events")
    with pytest.raises(UndecodableEventError) as caught:
        serde.deserialize(mangle(data), "jobs.events")
    assert caught.value.reason == reason
    assert caught.value.topic == "u.jobs.events"


def test_dlq_topics_have_no_codec(memory: tuple[Settings, SchemaRegistryClient]) -> None:
    settings, registry = memory
    with pytest.raises(UnknownTopicSchemaError):
        Serde(settings, registry).codec("dlq.filter")
