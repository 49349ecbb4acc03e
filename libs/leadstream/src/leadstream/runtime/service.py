"""Run a stage as a service process: signals, health/metrics endpoint, logging."""

from __future__ import annotations

import logging

from leadstream.runtime.codec import Codec
from leadstream.runtime.config import RuntimeConfig
from leadstream.runtime.health import HealthServer, loop_probe
from leadstream.runtime.runner import StageRunner
from leadstream.runtime.stage import Stage
from leadstream.settings import Settings


def serve_stage(
    stage: Stage,
    settings: Settings,
    codec: Codec,
    *,
    metrics_host: str = "127.0.0.1",
    metrics_port: int = 0,
    config: RuntimeConfig | None = None,
) -> None:
    """Run ``stage`` until SIGTERM/SIGINT, with ``/healthz`` and ``/metrics`` served."""
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    runner = StageRunner(stage, settings, codec, config)
    runner.install_signal_handlers()
    health = HealthServer(loop_probe(lambda: runner.last_loop), metrics_host, metrics_port)
    health.start()
    logging.getLogger(__name__).info(
        "%s: serving /healthz and /metrics on %s:%d", stage.name, metrics_host, health.port
    )
    try:
        runner.run()
    finally:
        health.close()
