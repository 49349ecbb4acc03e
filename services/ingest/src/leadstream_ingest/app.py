"""Entrypoint of the ingest service: it only wires settings to the service's parts."""

from __future__ import annotations

import sys

from leadstream_ingest.config import IngestSettings


def main() -> None:
    """Run the ingest service."""
    settings = IngestSettings()
    sys.exit(
        f"leadstream-ingest: the service's processing is not built yet "
        f"(settings loaded: env={settings.env}, kafka={settings.kafka_bootstrap})"
    )
