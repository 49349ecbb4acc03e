"""Entrypoint of the verify service: it only wires settings to the service's parts."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from sqlalchemy import Engine

from leadstream.db import make_engine
from leadstream.db.contacts import ContactStore
from leadstream.events import Serde
from leadstream.runtime import Stage
from leadstream.runtime.service import serve_stage
from leadstream_verify.adapters import PostgresVerdicts
from leadstream_verify.bridge import AsyncBridge
from leadstream_verify.cache import LocalCache, RedisCache
from leadstream_verify.config import VerifySettings
from leadstream_verify.domains import DisposableDomains
from leadstream_verify.logic import STAGE, VERDICT_HEADER, VerifyLogic
from leadstream_verify.lookup import CachedMailLookup
from leadstream_verify.reacher import ReacherVerifier
from leadstream_verify.resilience import CircuitBreaker, TokenBucket
from leadstream_verify.resolver import DnsMailResolver

INPUT = "contacts.filtered"


@contextmanager
def verify_stage(settings: VerifySettings, engine: Engine) -> Iterator[Stage]:
    """The verify stage with its adapters; they are closed when the block ends."""
    with ExitStack() as stack:
        bridge = AsyncBridge()
        stack.callback(bridge.close)
        shared: RedisCache | None = None
        if settings.dns_redis_cache:
            client = redis.Redis.from_url(
                settings.redis_url,
                socket_timeout=1.0,
                socket_connect_timeout=1.0,
                retry=Retry(NoBackoff(), 1),  # a cache: fail fast, skip it for a while
            )
            stack.callback(client.close)
            shared = RedisCache(client, settings.dns_cache_namespace)
        resolver = DnsMailResolver(
            settings.dns_nameservers,
            timeout_s=settings.dns_timeout_s,
            attempts=settings.dns_attempts,
            backoff_s=settings.dns_backoff_s,
            negative_ttl_s=settings.dns_negative_ttl_s,
        )
        lookup = CachedMailLookup(
            resolver,
            bridge,
            LocalCache(settings.dns_cache_max_entries),
            shared,
            concurrency=settings.dns_concurrency,
            min_ttl_s=settings.dns_min_ttl_s,
            max_ttl_s=settings.dns_max_ttl_s,
            unknown_ttl_s=settings.dns_unknown_ttl_s,
            outage_min=settings.dns_outage_min_domains,
        )
        verifier: ReacherVerifier | None = None
        if settings.verifier == "reacher":
            key = settings.verifier_api_key
            verifier = ReacherVerifier(
                settings.verifier_url,
                bridge,
                api_key=key.get_secret_value() if key is not None else None,
                auth_header=settings.verifier_auth_header,
                path=settings.verifier_path,
                timeout_s=settings.verifier_timeout_s,
                rate=TokenBucket(settings.verifier_rate_per_s, settings.verifier_burst),
                breaker=CircuitBreaker(
                    settings.verifier_breaker_failures, settings.verifier_breaker_reset_s
                ),
                concurrency=settings.verifier_concurrency,
                batch_budget_s=settings.verifier_batch_budget_s,
                cache_ttl_s=settings.verifier_cache_ttl_s,
            )
            stack.callback(verifier.close)
        logic = VerifyLogic(
            lookup, PostgresVerdicts(ContactStore(engine)), DisposableDomains(), verifier
        )
        yield Stage(STAGE, [INPUT], logic, outcome_header=VERDICT_HEADER)


def main() -> None:
    """Run the verify service until SIGTERM."""
    settings = VerifySettings()
    engine = make_engine(settings, pool_size=settings.database_pool_size)
    serde = Serde(settings)
    try:
        serde.prepare()
        with verify_stage(settings, engine) as stage:
            serve_stage(
                stage,
                settings,
                serde,
                metrics_host=settings.metrics_host,
                metrics_port=settings.metrics_port,
            )
    finally:
        serde.close()
        engine.dispose()
