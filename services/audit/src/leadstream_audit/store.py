"""The MongoDB (FerretDB) adapter: idempotent bulk inserts, indexes, retention deletes."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING, MongoClient
from pymongo.errors import BulkWriteError, ConnectionFailure, PyMongoError

from leadstream.runtime import RetryLater
from leadstream_audit.documents import AUDIT_EVENTS, REQUEST_LOGS

log = logging.getLogger(__name__)
DUPLICATE_KEY = 11000

INDEXES: dict[str, list[list[tuple[str, int]]]] = {
    REQUEST_LOGS: [
        [("event_time", DESCENDING)],
        [("request_id", ASCENDING)],
        [("api_key_id", ASCENDING), ("event_time", DESCENDING)],
        [("path", ASCENDING), ("event_time", DESCENDING)],
        [("status", ASCENDING), ("event_time", DESCENDING)],
        [("ip_address", ASCENDING), ("event_time", DESCENDING)],
        [("job_id", ASCENDING)],
    ],
    AUDIT_EVENTS: [
        [("event_time", DESCENDING)],
        [("actor", ASCENDING), ("event_time", DESCENDING)],
        [("action", ASCENDING), ("event_time", DESCENDING)],
        [("target_type", ASCENDING), ("target_id", ASCENDING)],
        [("job_id", ASCENDING)],
        [("request_id", ASCENDING)],
    ],
}


class MongoAuditStore:
    def __init__(self, client: MongoClient[dict[str, Any]], database: str) -> None:
        self.client = client
        self.db = client[database]

    def insert(self, collection: str, documents: Sequence[dict[str, Any]]) -> int:
        """Insert documents; those already stored (same ``_id``) are not an error. Returns the
        number newly inserted. MongoDB unreachable → :class:`RetryLater`."""
        if not documents:
            return 0
        try:
            result = self.db[collection].insert_many(list(documents), ordered=False)
            return len(result.inserted_ids)
        except BulkWriteError as exc:
            errors = exc.details.get("writeErrors", [])
            other = [e for e in errors if e.get("code") != DUPLICATE_KEY]
            if other:  # a document the server refuses: the runtime isolates and dead-letters it
                first = other[0]
                raise ValueError(f"MongoDB refused a document: {first.get('errmsg')}") from exc
            return int(exc.details.get("nInserted", 0))
        except ConnectionFailure as exc:  # includes AutoReconnect, timeouts
            raise RetryLater(f"MongoDB unavailable: {type(exc).__name__}") from exc
        except PyMongoError as exc:
            if "timed out" in str(exc).lower() or "connection" in str(exc).lower():
                raise RetryLater(f"MongoDB unavailable: {type(exc).__name__}") from exc
            raise

    def ensure_indexes(self) -> None:
        for collection, indexes in INDEXES.items():
            for keys in indexes:
                self.db[collection].create_index(keys)

    def purge(self, collection: str, older_than: datetime) -> int:
        """Delete documents whose event_time is before ``older_than`` (no TTL in FerretDB)."""
        result = self.db[collection].delete_many({"event_time": {"$lt": older_than}})
        return int(result.deleted_count)

    def close(self) -> None:
        self.client.close()


def mongo_client(url: str, timeout_ms: int) -> MongoClient[dict[str, Any]]:
    return MongoClient(
        url,
        serverSelectionTimeoutMS=timeout_ms,
        connectTimeoutMS=timeout_ms,
        socketTimeoutMS=timeout_ms * 2,
        tz_aware=True,
        appname="leadstream-audit",
    )
