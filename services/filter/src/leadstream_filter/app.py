"""Entrypoint of the filter service: it only wires settings to the service's parts."""

from __future__ import annotations

from sqlalchemy import Engine

from leadstream.db import make_engine
from leadstream.db.contacts import ContactStore
from leadstream.db.suppressions import SuppressionStore
from leadstream.events import Serde
from leadstream.runtime import Stage
from leadstream.runtime.service import serve_stage
from leadstream_filter.adapters import PostgresContacts, PostgresSuppressions
from leadstream_filter.config import FilterSettings
from leadstream_filter.logic import REASON_HEADER, REJECTED, STAGE, FilterLogic
from leadstream_filter.suppressions import SuppressionSnapshot

INPUT = "contacts.raw"


def build_stage(settings: FilterSettings, engine: Engine) -> Stage:
    """The filter stage over a database engine."""
    suppressions = SuppressionSnapshot(
        PostgresSuppressions(SuppressionStore(engine)), refresh_s=settings.suppression_refresh_s
    )
    logic = FilterLogic(
        settings.policy(),
        PostgresContacts(ContactStore(engine)),
        suppressions,
        default_region=settings.default_phone_region,
        allow_smtputf8=settings.allow_smtputf8,
        strict_phones=settings.phone_validation == "valid",
    )
    return Stage(STAGE, [INPUT], logic, rejected_topics=[REJECTED], outcome_header=REASON_HEADER)


def main() -> None:
    """Run the filter service until SIGTERM."""
    settings = FilterSettings()
    engine = make_engine(settings, pool_size=settings.database_pool_size)
    serde = Serde(settings)
    try:
        serde.prepare()
        serve_stage(
            build_stage(settings, engine),
            settings,
            serde,
            metrics_host=settings.metrics_host,
            metrics_port=settings.metrics_port,
        )
    finally:
        serde.close()
        engine.dispose()
