"""A bison-sync world for integration tests: a fresh database, topics under the test's
prefix, the fake Email Bison on a loopback port, Redis, and helpers to run the stage."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from redis import Redis

from leadstream.db import make_engine
from leadstream.events import Serde
from leadstream.runtime import RunResult, RuntimeConfig, StageRunner
from leadstream.settings import Settings
from leadstream_bison_sync.config import BisonSyncSettings
from leadstream_bison_sync.publisher import EventPublisher
from leadstream_bison_sync.service import BisonSyncService, build_service
from tests.support.databases import scratch_database
from tests.support.fake_bison.fake import FakeBison
from tests.support.fake_bison.harness import (
    Message,
    drop_topics,
    prepare_topics,
    publish,
    read,
)
from tests.support.fake_bison.server import FakeBisonServer


@dataclass
class SyncEnv:
    settings: BisonSyncSettings
    engine: sa.Engine
    serde: Serde
    redis: Redis
    fake: FakeBison
    server: FakeBisonServer
    workspace: int
    key: str
    services: list[BisonSyncService] = field(default_factory=list)
    publishers: list[EventPublisher] = field(default_factory=list)

    def configured(self, **overrides: Any) -> BisonSyncSettings:
        return self.settings.model_copy(update=overrides)

    def service(
        self, settings: BisonSyncSettings | None = None, poll: bool = False
    ) -> BisonSyncService:
        settings = settings or self.settings
        publisher = None
        if poll:
            publisher = EventPublisher(settings, self.serde)
            self.publishers.append(publisher)
        service = build_service(settings, self.engine, self.redis, publish=publisher)
        self.services.append(service)
        return service

    def run(
        self,
        service: BisonSyncService,
        *,
        instance: str = "s-0",
        idle_s: float = 3.0,
        max_records: int | None = None,
    ) -> RunResult:
        config = RuntimeConfig(
            instance_id=instance, batch_size=20, poll_timeout_s=0.2, session_timeout_ms=6000
        )
        runner = StageRunner(service.stage, self.settings, self.serde, config)
        return runner.run(idle_timeout_s=idle_s, max_records=max_records)

    def run_in_threads(self, services: list[BisonSyncService], idle_s: float) -> None:
        threads = [
            threading.Thread(
                target=self.run, args=(s,), kwargs={"instance": f"s-{i}", "idle_s": idle_s}
            )
            for i, s in enumerate(services)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(300)

    def publish_ready(self, *values: dict[str, Any]) -> None:
        publish(self.settings, self.serde, "batches.ready", list(values), lambda v: v["batch_id"])

    def publish_events(self, *values: dict[str, Any]) -> None:
        publish(
            self.settings,
            self.serde,
            "bison.events",
            list(values),
            lambda v: v.get("email") or v.get("workspace_id") or "unknown",
        )

    def synced(self, expect: int, timeout: float = 30.0) -> list[Message]:
        return read(self.settings, self.serde, "batches.synced", expect=expect, timeout=timeout)

    def rows(self, sql: str, **params: Any) -> list[Any]:
        with self.engine.connect() as conn:
            return list(conn.execute(sa.text(sql), params).all())


@contextlib.contextmanager
def sync_env(settings: Settings, *, rate_per_minute: float | None = None) -> Iterator[SyncEnv]:
    fake = FakeBison(rate_per_minute=rate_per_minute)
    ws, key = fake.add_workspace("Test agency")
    with scratch_database(settings) as db, FakeBisonServer(fake) as server:
        prepare_topics(db)
        bs = BisonSyncSettings.model_validate(
            {
                **dict(db),
                "bison_base_url": server.url,
                "bison_api_key": key,
                "bison_requests_per_minute": 60_000,
                "bison_burst": 100,
                "bison_rate_key": f"leadstream:test:{db.topic_prefix}bucket",
                "bison_retry_base_s": 0.05,
                "bison_retry_cap_s": 0.2,
                "bison_timeout_s": 5.0,
                "metrics_port": 0,
            }
        )
        engine = make_engine(bs, pool_size=8)
        serde = Serde(db)
        redis = Redis.from_url(bs.redis_url)
        env = SyncEnv(bs, engine, serde, redis, fake, server, ws, key)
        try:
            yield env
        finally:
            for s in env.services:
                s.close()
            for p in env.publishers:
                p.close()
            redis.delete(bs.rate_key)
            redis.close()
            serde.close()
            engine.dispose()
            drop_topics(db)
