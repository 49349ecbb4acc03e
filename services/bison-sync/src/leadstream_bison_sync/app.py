"""Entrypoint of the bison-sync service: it only wires settings to the service's parts."""

from __future__ import annotations

from redis import Redis

from leadstream.db import make_engine
from leadstream.events import Serde
from leadstream.runtime import RuntimeConfig
from leadstream.runtime.service import serve_stage
from leadstream_bison_sync.config import BisonSyncSettings
from leadstream_bison_sync.publisher import EventPublisher
from leadstream_bison_sync.scheduler import SchedulerThread
from leadstream_bison_sync.service import build_service


def main() -> None:
    """Run bison-sync: the stage loop, and the scheduler thread beside it."""
    settings = BisonSyncSettings()
    config = RuntimeConfig().model_copy(
        update={
            "batch_size": settings.bison_stage_batch_size,
            "poll_timeout_s": settings.bison_stage_poll_timeout_s,
        }
    )
    serde = Serde(settings)
    serde.prepare()
    engine = make_engine(settings, pool_size=2 * settings.bison_upload_concurrency + 3)
    redis = Redis.from_url(settings.redis_url)
    publisher = EventPublisher(settings, serde)
    service = build_service(settings, engine, redis, publish=publisher)
    thread = None
    if service.scheduler is not None:
        thread = SchedulerThread(service.scheduler, settings.bison_scheduler_tick_s)
        thread.start()
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
        if thread is not None:
            thread.stop()
        service.close()
        publisher.close()
        redis.close()
        serde.close()
        engine.dispose()


if __name__ == "__main__":
    main()
