"""Errors of the topic catalog and of applying it to a cluster."""

from __future__ import annotations

from leadstream.errors import LeadStreamError


class TopicError(LeadStreamError):
    """Base class of topic errors."""


class UnknownTopicError(TopicError):
    """A logical topic name that is not in the catalog."""


class TopicAdminError(TopicError):
    """The cluster refused or failed an admin request (list, create, alter, describe)."""

    def __init__(self, message: str, *, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code  # the KafkaError code, when the broker gave one
