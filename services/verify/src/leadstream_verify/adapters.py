"""The verify stage's verdict store over PostgreSQL: unreachable → RetryLater."""

from __future__ import annotations

from collections.abc import Sequence

from leadstream.db.contacts import ContactStore, DatabaseUnavailableError
from leadstream.runtime import RetryLater
from leadstream_verify.ports import VerificationRecord


class PostgresVerdicts:
    """:class:`~leadstream_verify.ports.VerdictStore` over the contacts table."""

    def __init__(self, store: ContactStore) -> None:
        self.store = store

    def record(self, rows: Sequence[VerificationRecord]) -> None:
        try:
            self.store.record_verifications(rows)
        except DatabaseUnavailableError as exc:
            raise RetryLater(str(exc)) from exc


__all__ = ["PostgresVerdicts"]
