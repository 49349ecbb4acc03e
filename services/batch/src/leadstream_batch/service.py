"""Wiring of the batch stage's parts (the entrypoint and the tests build it the same way)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine

from leadstream.db.batches import BatchStore
from leadstream.db.campaigns import CampaignStore
from leadstream.runtime import Stage
from leadstream_batch.config import BatchSettings
from leadstream_batch.emitter import Emitter
from leadstream_batch.handler import BatchHandler, utc_now
from leadstream_batch.placement import Policy
from leadstream_batch.routing import RuleLike
from leadstream_batch.rules import Refreshing
from leadstream_batch.timer import BatchTimer

STAGE_NAME = "batch"
INPUTS = ("contacts.verified",)


@dataclass
class BatchService:
    stage: Stage
    handler: BatchHandler
    timer: BatchTimer


def build_service(
    settings: BatchSettings,
    engine: Engine,
    emitter: Emitter,
    *,
    clock: Callable[[], datetime] = utc_now,
) -> BatchService:
    batches = BatchStore(engine)
    campaigns = CampaignStore(engine)
    rules_cache: Refreshing[list[RuleLike]] = Refreshing(
        lambda: list(campaigns.rules(enabled_only=True)), settings.batch_rules_refresh_s
    )
    caps_cache = Refreshing(campaigns.daily_caps, settings.batch_rules_refresh_s)

    def policy() -> Policy:
        return Policy(
            max_size=settings.batch_max_size,
            zone=settings.cap_zone,
            default_cap=settings.batch_daily_cap,
            caps=caps_cache.get(),
        )

    handler = BatchHandler(
        batches,
        verdicts=settings.allowed_verdicts,
        rules=rules_cache.get,
        policy=policy,
        clock=clock,
    )
    timer = BatchTimer(
        batches,
        emitter,
        max_age_s=settings.batch_max_age_s,
        rules=rules_cache.get,
        policy=policy,
        clock=clock,
    )
    return BatchService(Stage(STAGE_NAME, INPUTS, handler), handler, timer)
