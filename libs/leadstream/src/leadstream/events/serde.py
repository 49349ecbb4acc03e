"""The serde: a :class:`TopicCodec` per catalog topic that carries an Avro value."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Self

from confluent_kafka.schema_registry import SchemaRegistryClient

from leadstream.events.codec import TopicCodec
from leadstream.events.errors import UnknownTopicSchemaError
from leadstream.events.registry import registry_client
from leadstream.events.schemas import SchemaSet, load_schemas
from leadstream.settings import Settings
from leadstream.topics import CATALOG, TopicSpec, schema_topics


class Serde:
    """Per-topic ``serialize``/``deserialize`` of event values.

    ``topic`` may be the logical name (``contacts.raw``) or the physical, prefixed one
    (``msg.topic()``); both map to the same codec. The hot path is one dict lookup plus the
    codec; a stage that handles one topic can hold ``serde.codec(topic)`` and skip even that.
    """

    def __init__(
        self,
        settings: Settings,
        registry: SchemaRegistryClient | None = None,
        *,
        schemas: SchemaSet | None = None,
        catalog: Sequence[TopicSpec] = CATALOG,
        auto_register: bool = False,
    ) -> None:
        self._owns_registry = registry is None
        self.registry = registry if registry is not None else registry_client(settings)
        self.schemas = schemas if schemas is not None else load_schemas(settings)
        self._codecs: dict[str, TopicCodec] = {}
        for spec in schema_topics(catalog):
            assert spec.value_schema is not None
            codec = TopicCodec(
                settings.topic(spec.name),
                self.schemas[spec.value_schema],
                self.registry,
                auto_register=auto_register,
            )
            self._codecs[spec.name] = codec
            self._codecs[codec.topic] = codec

    def codec(self, topic: str) -> TopicCodec:
        """The codec of a topic (logical or physical name)."""
        try:
            return self._codecs[topic]
        except KeyError:
            raise UnknownTopicSchemaError(f"no Avro value schema for topic {topic!r}") from None

    def serialize(self, record: Mapping[str, Any], topic: str) -> bytes:
        """Framed Avro bytes of ``record`` for ``topic``."""
        return self.codec(topic).serialize(record)

    def deserialize(self, data: bytes, topic: str) -> dict[str, Any]:
        """The record in ``data`` read from ``topic``."""
        return self.codec(topic).deserialize(data)

    def prepare(self) -> dict[str, int]:
        """Look up every topic's schema id now (fail fast at startup); subject → id."""
        return {codec.subject: codec.prepare() for codec in self.codecs()}

    def close(self) -> None:
        """Close the registry client if this serde made it."""
        if self._owns_registry:
            self.registry.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def codecs(self) -> list[TopicCodec]:
        """One codec per topic."""
        return list({id(c): c for c in self._codecs.values()}.values())
