"""The adapters one ingest process holds (built on startup, closed on shutdown)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta

import redis.asyncio as aioredis
import sqlalchemy as sa

from leadstream.db import make_engine
from leadstream.db.api_keys import ApiKeyStore
from leadstream.db.idempotency import IdempotencyStore
from leadstream.db.ingest import IngestStore
from leadstream.events import EventError, Serde
from leadstream_ingest.config import IngestSettings
from leadstream_ingest.job_states import JobStates, TrackedJobStates
from leadstream_ingest.key_cache import KeyCache, RevocationListener
from leadstream_ingest.metrics import IngestMetrics
from leadstream_ingest.pipeline_status import PipelineSampler
from leadstream_ingest.producer import EventProducer
from leadstream_ingest.ratelimit import LocalBuckets, RatePolicy, TrustedProxies
from leadstream_ingest.status_view import StatusBoard
from leadstream_ingest.submissions import SubmissionService
from leadstream_ingest.uploads import UploadService

log = logging.getLogger(__name__)
JobStatesFactory = Callable[[IngestSettings, Serde], JobStates]
PRODUCED_TOPICS = ("contacts.raw", "jobs.events", "bison.events", "audit.requests", "audit.events")


class KeyedLocks:
    """One asyncio lock per key, existing only while someone holds or waits for it: copies of
    a webhook delivery arriving together queue here instead of each taking a database
    connection to wait on the same advisory lock."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    def __len__(self) -> int:
        return len(self._locks)

    @contextlib.asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        lock, users = self._locks.get(key) or (asyncio.Lock(), 0)
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users == 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)


@dataclass
class Services:
    settings: IngestSettings
    serde: Serde
    producer: EventProducer
    engine: sa.Engine
    keys: ApiKeyStore
    idempotency: IdempotencyStore
    store: IngestStore
    redis: aioredis.Redis
    jobs: JobStates
    metrics: IngestMetrics
    proxies: TrustedProxies
    executor: ThreadPoolExecutor
    uploads: UploadService
    submissions: SubmissionService
    status: StatusBoard
    bad_webhook_tokens: LocalBuckets
    """Wrong webhook tokens per client address (this process's memory)."""
    key_cache: KeyCache = field(default_factory=lambda: KeyCache(0))
    revocations: RevocationListener | None = None
    webhook_keys: KeyedLocks = field(default_factory=lambda: KeyedLocks())
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    @classmethod
    def build(
        cls, settings: IngestSettings, *, job_states: JobStatesFactory | None = None
    ) -> Services:
        serde = Serde(settings)
        for topic in PRODUCED_TOPICS:  # fail soft: /readyz reports the registry
            try:
                serde.codec(topic).prepare()
            except EventError as exc:
                log.warning("schema of %s not ready yet: %s", topic, exc)
        producer = EventProducer(settings, serde)
        engine = make_engine(settings, pool_size=10)
        store = IngestStore(engine)
        executor = ThreadPoolExecutor(max_workers=4, thread_name_prefix="ingest-upload")
        jobs = (job_states or TrackedJobStates)(settings, serde)
        key_cache = KeyCache(settings.api_key_cache_s)
        revocations = RevocationListener(engine, key_cache)
        revocations.start()
        return cls(
            settings=settings,
            serde=serde,
            producer=producer,
            engine=engine,
            keys=ApiKeyStore(engine),
            idempotency=IdempotencyStore(
                engine, ttl=timedelta(hours=settings.idempotency_ttl_hours)
            ),
            store=store,
            redis=aioredis.Redis.from_url(
                settings.redis_url, socket_timeout=2, socket_connect_timeout=2
            ),
            jobs=jobs,
            metrics=IngestMetrics(),
            proxies=TrustedProxies(settings.trusted_proxies),
            executor=executor,
            uploads=UploadService(settings, producer, store, executor),
            submissions=SubmissionService(settings, producer, store),
            status=StatusBoard(store, jobs, PipelineSampler(settings)),
            key_cache=key_cache,
            revocations=revocations,
            bad_webhook_tokens=LocalBuckets(
                RatePolicy(
                    settings.webhook_bad_token_limit,
                    settings.webhook_bad_token_period_s,
                    settings.webhook_bad_token_limit,
                )
            ),
        )

    def start_housekeeping(self, every_s: float = 3600.0) -> None:
        """Delete expired idempotency keys and old webhook receipts, hourly."""
        self._tasks.append(asyncio.create_task(self._housekeeping(every_s)))

    async def _housekeeping(self, every_s: float) -> None:
        keep = timedelta(days=self.settings.webhook_receipts_days)
        while True:
            try:
                keys = await asyncio.to_thread(self.idempotency.purge)
                receipts = await asyncio.to_thread(self.store.purge_webhooks, keep)
                log.info("purged %d idempotency keys, %d webhook receipts", keys, receipts)
            except Exception as exc:
                log.warning("housekeeping failed (will retry): %s", exc)
            await asyncio.sleep(every_s)

    async def aclose(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self.revocations is not None:
            await asyncio.to_thread(self.revocations.close)
        self.executor.shutdown(wait=True, cancel_futures=True)
        self.jobs.close()
        await asyncio.to_thread(self.producer.close)
        await self.redis.aclose()
        self.engine.dispose()
        self.serde.close()
