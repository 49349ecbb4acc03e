"""Settings of the verify service (environment prefix ``LEADSTREAM_``)."""

from __future__ import annotations

from leadstream.settings import Settings


class VerifySettings(Settings):
    """Settings of the verify stage."""

    consumer_group: str = "leadstream-verify"
    metrics_port: int = 9102
    dns_nameservers: tuple[str, ...] = ()
    dns_timeout_s: float = 2.0
