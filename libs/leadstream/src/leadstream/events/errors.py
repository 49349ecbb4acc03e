"""Errors of the event contracts and the serde.

The stage runtime's policy follows the class: :class:`UndecodableEventError` means this
record is bad (dead-letter it); :class:`RegistryUnavailableError` means retry later;
the others are configuration or programming errors that should stop the process.
"""

from __future__ import annotations

from leadstream.errors import LeadStreamError


class EventError(LeadStreamError):
    """Base class of event contract and serde errors."""


class SchemaFileError(EventError):
    """The schemas directory or an ``.avsc`` file in it is missing or invalid."""


class UnknownTopicSchemaError(EventError):
    """A topic with no value schema in the catalog (e.g. a DLQ) was given to the serde."""


class UndecodableEventError(EventError):
    """Bytes that are not a valid event of the topic: dead-letter them.

    ``reason`` is a short code: ``truncated``, ``magic-byte``, ``unknown-schema-id`` or
    ``bad-payload``.
    """

    def __init__(self, message: str, *, topic: str, reason: str) -> None:
        super().__init__(message)
        self.topic = topic
        self.reason = reason


class InvalidEventError(EventError):
    """A record that does not match its topic's schema (a producer bug, not bad input)."""


class SchemaNotRegisteredError(EventError):
    """The topic's subject has no version equal to the repo schema: run ``schemas register``."""


class RegistryUnavailableError(EventError):
    """The schema registry could not be reached or failed (5xx): transient, retry."""
