"""Entrypoint of the audit service (``leadstream-audit``): wiring only.

A stage on the shared runtime consumes ``audit.requests`` and ``audit.events`` and
bulk-inserts them into MongoDB (``_id`` = event id: a replayed batch stores nothing twice).
"""

from __future__ import annotations

from leadstream.events import Serde
from leadstream.runtime import RuntimeConfig
from leadstream.runtime.service import serve_stage
from leadstream_audit.config import AuditSettings
from leadstream_audit.handler import audit_stage
from leadstream_audit.housekeeping import Housekeeper
from leadstream_audit.store import MongoAuditStore, mongo_client


def main() -> None:
    """Run the audit sink until SIGTERM/SIGINT."""
    settings = AuditSettings()
    store = MongoAuditStore(
        mongo_client(settings.mongo_url, settings.mongo_timeout_ms), settings.mongo_database
    )
    housekeeper = Housekeeper(store, settings).start()
    try:
        with Serde(settings) as serde:
            serve_stage(
                audit_stage(store, settings),
                settings,
                serde,
                metrics_host=settings.metrics_host,
                metrics_port=settings.metrics_port,
                config=RuntimeConfig(batch_size=settings.bulk_size),
            )
    finally:
        housekeeper.stop()
        store.close()


if __name__ == "__main__":
    main()
