"""Entrypoint of the batch service: it only wires settings to the service's parts."""

from __future__ import annotations

from leadstream.db import make_engine
from leadstream.events import Serde
from leadstream.runtime import RuntimeConfig
from leadstream.runtime.service import serve_stage
from leadstream_batch.config import BatchSettings
from leadstream_batch.emitter import KafkaEmitter
from leadstream_batch.service import build_service
from leadstream_batch.timer import TimerThread


def main() -> None:
    """Run the batch service: the stage loop, and the timer thread beside it."""
    settings = BatchSettings()
    config = RuntimeConfig()
    serde = Serde(settings)
    serde.prepare()
    engine = make_engine(settings)
    group = settings.topic(settings.consumer_group)
    emitter = KafkaEmitter(settings, serde, f"{group}-{config.instance_id}-timer")
    service = build_service(settings, engine, emitter)
    timer = TimerThread(service.timer, settings.batch_tick_s)
    timer.start()
    try:
        serve_stage(
            service.stage,
            settings,
            serde,
            metrics_host=settings.metrics_host,
            metrics_port=settings.metrics_port,
            config=config,
        )
    finally:
        timer.stop()
        emitter.close()
        serde.close()
        engine.dispose()


if __name__ == "__main__":
    main()
