"""Entrypoint of the bison-sync service: it only wires settings to the service's parts."""

from __future__ import annotations

import sys

from leadstream_bison_sync.config import BisonSyncSettings


def main() -> None:
    """Run the bison-sync service."""
    settings = BisonSyncSettings()
    sys.exit(
        f"leadstream-bison-sync: the service's processing is not built yet "
        f"(settings loaded: env={settings.env}, kafka={settings.kafka_bootstrap})"
    )
