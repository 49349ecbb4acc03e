"""Entrypoint of the audit service: it only wires settings to the service's parts."""

from __future__ import annotations

import sys

from leadstream_audit.config import AuditSettings


def main() -> None:
    """Run the audit service."""
    settings = AuditSettings()
    sys.exit(
        f"leadstream-audit: the service's processing is not built yet "
        f"(settings loaded: env={settings.env}, kafka={settings.kafka_bootstrap})"
    )
