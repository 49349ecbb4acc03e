"""Entrypoint of the jobs service: it only wires settings to the service's parts."""

from __future__ import annotations

import sys

from leadstream_jobs.config import JobsSettings


def main() -> None:
    """Run the jobs service."""
    settings = JobsSettings()
    sys.exit(
        f"leadstream-jobs: the service's processing is not built yet "
        f"(settings loaded: env={settings.env}, kafka={settings.kafka_bootstrap})"
    )
