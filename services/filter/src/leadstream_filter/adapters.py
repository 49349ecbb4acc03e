"""The filter's ports over PostgreSQL (``leadstream.db``): a database that cannot be reached
becomes :class:`~leadstream.runtime.RetryLater`, so the batch is retried, not dead-lettered."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager

from leadstream.db.contacts import ContactStore, DatabaseUnavailableError
from leadstream.db.suppressions import SuppressionChange, SuppressionStore
from leadstream.runtime import RetryLater
from leadstream_filter.ports import NewContact


@contextmanager
def _retry_when_unavailable() -> Iterator[None]:
    try:
        yield
    except DatabaseUnavailableError as exc:
        raise RetryLater(str(exc)) from exc


class PostgresContacts:
    """:class:`~leadstream_filter.ports.ContactRegistry` over the contacts table."""

    def __init__(self, store: ContactStore) -> None:
        self.store = store

    def claim(self, contacts: Sequence[NewContact]) -> Mapping[str, str]:
        with _retry_when_unavailable():
            return self.store.claim(contacts)


class PostgresSuppressions:
    """A suppression source over the suppressions table."""

    def __init__(self, store: SuppressionStore) -> None:
        self.store = store

    def changes_since(self, version: int) -> tuple[Sequence[SuppressionChange], int]:
        with _retry_when_unavailable():
            return self.store.changes_since(version)


__all__ = ["PostgresContacts", "PostgresSuppressions"]
