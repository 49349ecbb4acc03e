"""A background thread: create the indexes (until MongoDB answers), then delete what is past
retention, periodically (FerretDB has no TTL indexes)."""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime, timedelta

from pymongo.errors import PyMongoError

from leadstream_audit import metrics
from leadstream_audit.config import AuditSettings
from leadstream_audit.documents import AUDIT_EVENTS, REQUEST_LOGS
from leadstream_audit.store import MongoAuditStore

log = logging.getLogger(__name__)


class Housekeeper:
    def __init__(self, store: MongoAuditStore, settings: AuditSettings) -> None:
        self.store = store
        self.retention = {
            REQUEST_LOGS: timedelta(days=settings.request_logs_retention_days),
            AUDIT_EVENTS: timedelta(days=settings.audit_events_retention_days),
        }
        self.interval_s = settings.purge_interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="audit-housekeeping", daemon=True)
        self.indexed = threading.Event()

    def start(self) -> Housekeeper:
        self._thread.start()
        return self

    def purge_once(self, now: datetime | None = None) -> dict[str, int]:
        moment = now or datetime.now(UTC)
        deleted = {c: self.store.purge(c, moment - keep) for c, keep in self.retention.items()}
        for collection, n in deleted.items():
            metrics.PURGED.labels(collection).inc(n)
        return deleted

    def _run(self) -> None:
        while not self._stop.is_set() and not self.indexed.is_set():
            try:
                self.store.ensure_indexes()
                self.indexed.set()
            except PyMongoError as exc:
                log.warning("audit indexes not created yet (retrying): %s", exc)
                self._stop.wait(5)
        while not self._stop.is_set():
            try:
                deleted = self.purge_once()
                log.info("retention delete: %s", deleted)
            except PyMongoError as exc:
                metrics.PURGE_RUNS.labels("error").inc()
                log.warning("retention delete failed (next run retries): %s", exc)
            else:
                metrics.PURGE_RUNS.labels("ok").inc()
                metrics.LAST_PURGE.set(time.time())
            self._stop.wait(self.interval_s)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
