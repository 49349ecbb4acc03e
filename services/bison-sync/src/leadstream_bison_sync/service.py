"""Wiring of bison-sync's parts (the entrypoint, the tests and the benchmark build it the
same way)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
from redis import Redis
from sqlalchemy import Engine

from leadstream.bison import BisonClient, BisonError, RedisTokenBucket, RetryPolicy
from leadstream.db.bison_leads import UploadStore
from leadstream.db.campaigns import CampaignStore
from leadstream.db.contact_events import ContactEventStore, SyncRunStore
from leadstream.db.suppressions import SuppressionStore
from leadstream.runtime import Stage
from leadstream_bison_sync.config import BisonSyncSettings
from leadstream_bison_sync.events import FeedbackRecorder
from leadstream_bison_sync.handler import BisonSyncHandler
from leadstream_bison_sync.jobs import CampaignSync, RepliesPoll
from leadstream_bison_sync.scheduler import Job, RedisLock, Scheduler
from leadstream_bison_sync.uploader import Uploader

log = logging.getLogger(__name__)
STAGE_NAME = "bison-sync"
INPUTS = ("batches.ready", "bison.events")


@dataclass
class BisonSyncService:
    stage: Stage
    handler: BisonSyncHandler
    uploader: Uploader
    client: BisonClient | None
    scheduler: Scheduler | None
    closers: list[Callable[[], None]] = field(default_factory=list)

    def close(self) -> None:
        for close in reversed(self.closers):
            close()


def make_client(
    settings: BisonSyncSettings,
    redis: Redis,
    *,
    transport: httpx.BaseTransport | None = None,
) -> BisonClient:
    limiter = RedisTokenBucket(
        redis,
        settings.rate_key,
        rate_per_s=settings.bison_requests_per_minute / 60.0,
        burst=settings.bison_burst,
    )
    return BisonClient(
        settings.bison_base_url,
        settings.bison_api_key.get_secret_value(),
        limiter=limiter,
        timeout_s=settings.bison_timeout_s,
        retry=RetryPolicy(
            max_attempts=settings.bison_max_attempts,
            base_s=settings.bison_retry_base_s,
            cap_s=settings.bison_retry_cap_s,
        ),
        transport=transport,
    )


def build_service(
    settings: BisonSyncSettings,
    engine: Engine,
    redis: Redis,
    *,
    publish: Callable[[Sequence[dict[str, Any]]], None] | None = None,
    transport: httpx.BaseTransport | None = None,
) -> BisonSyncService:
    """``publish`` sends poll events to ``bison.events`` (without it there is no poll)."""
    client = None if settings.dry_run else make_client(settings, redis, transport=transport)
    uploader = Uploader(
        UploadStore(engine),
        client,
        upsert_chunk=settings.bison_upsert_chunk,
        attach_chunk=settings.bison_attach_chunk,
        allow_parallel_sending=settings.bison_allow_parallel_sending,
    )
    events = ContactEventStore(engine)
    recorder = FeedbackRecorder(events, SuppressionStore(engine))
    handler = BisonSyncHandler(
        uploader,
        recorder,
        ready_topic=settings.topic("batches.ready"),
        events_topic=settings.topic("bison.events"),
        concurrency=settings.bison_upload_concurrency,
    )
    scheduler = None
    if client is not None and settings.bison_scheduler_enabled:
        jobs = [
            Job(
                "campaigns",
                settings.bison_campaign_sync_interval_s,
                CampaignSync(client, CampaignStore(engine), days=settings.bison_stats_days),
            )
        ]
        if publish is not None:
            jobs.append(
                Job(
                    "replies",
                    settings.bison_replies_poll_interval_s,
                    RepliesPoll(
                        client,
                        events,
                        publish,
                        workspace_id=_workspace_id(client),
                        max_pages=settings.bison_replies_poll_max_pages,
                    ),
                )
            )
        lock_key = f"leadstream:{settings.topic_prefix}bison-sync:scheduler"
        scheduler = Scheduler(
            RedisLock(redis, lock_key, settings.bison_lock_ttl_s), SyncRunStore(engine), jobs
        )
    elif client is None:
        log.warning(
            "bison-sync: DRY RUN — no Email Bison credentials; uploads are recorded in "
            "bison_dry_run_requests and nothing is sent"
        )
    service = BisonSyncService(
        Stage(STAGE_NAME, INPUTS, handler), handler, uploader, client, scheduler
    )
    if client is not None:
        service.closers.append(client.close)
    service.closers.append(handler.close)
    return service


def _workspace_id(client: BisonClient) -> str | None:
    """The workspace of the API key (``GET /api/users`` → ``team_id``), when it says."""
    try:
        data = client.check().get("data") or {}
    except BisonError as exc:
        log.warning("bison-sync: credential check failed: %s", exc)
        return None
    team = data.get("team_id") if isinstance(data, dict) else None
    return None if team is None else str(team)
