"""Register the event schemas under their topics' subjects and check them against the registry."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum

from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError

from leadstream.events.compatibility import can_read
from leadstream.events.errors import EventError, RegistryUnavailableError
from leadstream.events.schemas import EventSchema, SchemaSet, load_schemas
from leadstream.settings import Settings
from leadstream.topics import CATALOG, TopicSpec, schema_topics

COMPATIBILITY = "BACKWARD"


def registry_client(settings: Settings) -> SchemaRegistryClient:
    """A client for ``settings.schema_registry_url`` (``mock://…``: in-memory, for tests).

    Every request has a deadline (the client has none of its own): a registry that takes a
    request and never answers (Apicurio did, now and then) must not stop a service for good.
    """
    return SchemaRegistryClient.new_client(
        {"url": settings.schema_registry_url, "timeout": settings.schema_registry_timeout_s}
    )


@contextmanager
def _client(
    settings: Settings, registry: SchemaRegistryClient | None
) -> Iterator[SchemaRegistryClient]:
    """The given client, or one made here and closed afterwards."""
    if registry is not None:
        yield registry
        return
    client = registry_client(settings)
    try:
        yield client
    finally:
        client.close()


def value_subject(settings: Settings, topic: str) -> str:
    """The value subject of a logical topic (TopicNameStrategy on the physical name)."""
    return f"{settings.topic(topic)}-value"


@dataclass(frozen=True, slots=True)
class SubjectRegistration:
    """The outcome of registering one topic's value schema."""

    topic: str
    subject: str
    schema: str
    schema_id: int | None
    compatibility: str | None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


class CheckStatus(StrEnum):
    UNCHANGED = "unchanged"  # the latest registered version is the repo schema
    COMPATIBLE = "compatible"  # registering the repo schema would be accepted
    INCOMPATIBLE = "incompatible"  # the registry would refuse it
    UNREGISTERED = "unregistered"  # the subject has no version yet


@dataclass(frozen=True, slots=True)
class SubjectCheck:
    """The repo schema of one topic compared with the registry's latest version."""

    topic: str
    subject: str
    schema: str
    status: CheckStatus
    latest_version: int | None
    messages: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.status is not CheckStatus.INCOMPATIBLE


def register_schemas(
    settings: Settings,
    registry: SchemaRegistryClient | None = None,
    *,
    schemas: SchemaSet | None = None,
    catalog: Sequence[TopicSpec] = CATALOG,
    compatibility: str = COMPATIBILITY,
) -> list[SubjectRegistration]:
    """Set each value subject's compatibility, then register the repo schema under it.

    Idempotent: re-registering an identical schema returns its existing id. A subject the
    registry refuses (an incompatible change) is reported with its error; the rest go on.
    """
    found = schemas if schemas is not None else load_schemas(settings)
    with _client(settings, registry) as client:
        return [
            _register(client, spec.name, value_subject(settings, spec.name), schema, compatibility)
            for spec, schema in _pairs(catalog, found)
        ]


def check_schemas(
    settings: Settings,
    registry: SchemaRegistryClient | None = None,
    *,
    schemas: SchemaSet | None = None,
    catalog: Sequence[TopicSpec] = CATALOG,
) -> list[SubjectCheck]:
    """Ask the registry (its compatibility endpoint, under each subject's own level) whether
    each repo schema could be registered; explain refusals with a local check."""
    found = schemas if schemas is not None else load_schemas(settings)
    with _client(settings, registry) as client:
        client.clear_latest_caches()  # type: ignore[no-untyped-call]  # see it as it is now
        return [
            _check(client, spec.name, value_subject(settings, spec.name), schema)
            for spec, schema in _pairs(catalog, found)
        ]


def _register(
    client: SchemaRegistryClient, topic: str, subject: str, schema: EventSchema, level: str
) -> SubjectRegistration:
    try:
        with _registry_errors(subject):
            # Compatibility first, so the registration itself is checked against it.
            client.set_compatibility(subject_name=subject, level=level)
            schema_id = client.register_schema(subject, Schema(schema.text, "AVRO"))
    except SchemaRegistryError as exc:  # refused (409 incompatible, 422 invalid)
        return SubjectRegistration(topic, subject, schema.name, None, None, str(exc))
    return SubjectRegistration(topic, subject, schema.name, schema_id, level)


def _check(
    client: SchemaRegistryClient, topic: str, subject: str, schema: EventSchema
) -> SubjectCheck:
    try:
        return _compare(client, topic, subject, schema)
    except SchemaRegistryError as exc:
        raise EventError(f"schema registry refused checking {subject}: {exc}") from exc


def _compare(
    client: SchemaRegistryClient, topic: str, subject: str, schema: EventSchema
) -> SubjectCheck:
    with _registry_errors(subject):
        try:
            latest = client.get_latest_version(subject)
        except SchemaRegistryError as exc:
            if exc.http_status_code == 404:
                return SubjectCheck(topic, subject, schema.name, CheckStatus.UNREGISTERED, None)
            raise
        registered = latest.schema.schema_str or "{}"
        if json.loads(registered) == schema.definition:
            status = CheckStatus.UNCHANGED
        elif client.test_compatibility(subject, Schema(schema.text, "AVRO")):
            status = CheckStatus.COMPATIBLE
        else:
            why = can_read(schema.text, registered).messages
            return SubjectCheck(
                topic, subject, schema.name, CheckStatus.INCOMPATIBLE, latest.version, why
            )
    return SubjectCheck(topic, subject, schema.name, status, latest.version)


@contextmanager
def _registry_errors(subject: str) -> Iterator[None]:
    """Registry 5xx and transport errors become :class:`RegistryUnavailableError`."""
    try:
        yield
    except SchemaRegistryError as exc:
        if exc.http_status_code >= 500:
            raise RegistryUnavailableError(f"schema registry, {subject}: {exc}") from exc
        raise
    except Exception as exc:  # the HTTP client's own errors: connection refused, timeout
        raise RegistryUnavailableError(f"schema registry: {exc}") from exc


def _pairs(catalog: Sequence[TopicSpec], schemas: SchemaSet) -> list[tuple[TopicSpec, EventSchema]]:
    return [(spec, schemas[spec.value_schema or ""]) for spec in schema_topics(catalog)]
