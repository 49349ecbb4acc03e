"""Event contracts: the Avro schemas in ``schemas/``, the per-topic serde, and registration.

- :class:`Serde` / :class:`TopicCodec`: ``serialize(record, topic) -> bytes`` and
  ``deserialize(bytes, topic) -> dict`` with Confluent framing, subject ``<topic>-value``.
- :func:`register_schemas` / :func:`check_schemas`: the explicit registration step (BACKWARD).
- :class:`UndecodableEventError`: bytes to dead-letter; :class:`RegistryUnavailableError`: retry.
"""

from leadstream.events.codec import MAGIC_BYTE, TopicCodec
from leadstream.events.compatibility import Compatibility, backward_compatible, can_read
from leadstream.events.errors import (
    EventError,
    InvalidEventError,
    RegistryUnavailableError,
    SchemaFileError,
    SchemaNotRegisteredError,
    UndecodableEventError,
    UnknownTopicSchemaError,
)
from leadstream.events.ids import contact_id, derived_event_id
from leadstream.events.registry import (
    COMPATIBILITY,
    CheckStatus,
    SubjectCheck,
    SubjectRegistration,
    check_schemas,
    register_schemas,
    registry_client,
    value_subject,
)
from leadstream.events.schemas import (
    NAMESPACE,
    EventSchema,
    SchemaSet,
    find_schemas_dir,
    load_schema,
    load_schemas,
)
from leadstream.events.serde import Serde
from leadstream.events.settings import EventSettings

__all__ = [
    "COMPATIBILITY",
    "MAGIC_BYTE",
    "NAMESPACE",
    "CheckStatus",
    "Compatibility",
    "EventError",
    "EventSchema",
    "EventSettings",
    "InvalidEventError",
    "RegistryUnavailableError",
    "SchemaFileError",
    "SchemaNotRegisteredError",
    "SchemaSet",
    "Serde",
    "SubjectCheck",
    "SubjectRegistration",
    "TopicCodec",
    "UndecodableEventError",
    "UnknownTopicSchemaError",
    "backward_compatible",
    "can_read",
    "check_schemas",
    "contact_id",
    "derived_event_id",
    "find_schemas_dir",
    "load_schema",
    "load_schemas",
    "register_schemas",
    "registry_client",
    "value_subject",
]
