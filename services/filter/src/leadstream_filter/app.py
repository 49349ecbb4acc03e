"""Entrypoint of the filter service: it only wires settings to the service's parts."""

from __future__ import annotations

import sys

from leadstream_filter.config import FilterSettings


def main() -> None:
    """Run the filter service."""
    settings = FilterSettings()
    sys.exit(
        f"leadstream-filter: the service's processing is not built yet "
        f"(settings loaded: env={settings.env}, kafka={settings.kafka_bootstrap})"
    )
