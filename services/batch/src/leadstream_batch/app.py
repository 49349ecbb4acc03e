"""Entrypoint of the batch service: it only wires settings to the service's parts."""

from __future__ import annotations

import sys

from leadstream_batch.config import BatchSettings


def main() -> None:
    """Run the batch service."""
    settings = BatchSettings()
    sys.exit(
        f"leadstream-batch: the service's processing is not built yet "
        f"(settings loaded: env={settings.env}, kafka={settings.kafka_bootstrap})"
    )
