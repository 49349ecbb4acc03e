"""Entrypoint of the verify service: it only wires settings to the service's parts."""

from __future__ import annotations

import sys

from leadstream_verify.config import VerifySettings


def main() -> None:
    """Run the verify service."""
    settings = VerifySettings()
    sys.exit(
        f"leadstream-verify: the service's processing is not built yet "
        f"(settings loaded: env={settings.env}, kafka={settings.kafka_bootstrap})"
    )
