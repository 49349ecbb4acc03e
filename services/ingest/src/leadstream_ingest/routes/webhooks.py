"""``POST /v1/webhooks/bison/{token}``: Email Bison webhook deliveries → ``bison.events``.

Unauthenticated by design (Email Bison signs nothing): the unguessable token in the URL is
the credential, compared in constant time. A client address that sent too many wrong tokens
is answered 429 without a comparison until its allowance recovers (per process). Deliveries
are de-duplicated by their natural key (receipts in Postgres, the key locked while a delivery
is handled, so copies arriving together are one event); a new one is answered only after the
broker acknowledged its event, well inside Email Bison's 15 s. A repeat is answered 200
``duplicate`` so it stops retrying.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import time
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from leadstream_ingest.bison import parse_delivery
from leadstream_ingest.client_ip import client_ip
from leadstream_ingest.contacts import now_ms
from leadstream_ingest.deps import ServicesDep
from leadstream_ingest.errors import NotFound, TooManyRequests, Unauthenticated
from leadstream_ingest.producer import Acks
from leadstream_ingest.ratelimit import client_bucket

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"])


class WebhookReceived(BaseModel):
    status: str  # accepted | duplicate
    event_id: str
    event_type: str


ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "Not JSON"},
    401: {"description": "Wrong token"},
    404: {"description": "Webhooks are not configured"},
    413: {"description": "Body over the limit"},
    422: {"description": "JSON without event.type"},
    429: {"description": "Too many wrong tokens from this address; see Retry-After"},
    503: {"description": "The broker did not acknowledge; Email Bison retries"},
}


def _same_token(given: str, secret: str) -> bool:
    """Constant-time comparison of digests: ``compare_digest`` on the raw strings would return
    early on a length mismatch and so tell the secret's length."""
    digest = hashlib.sha256
    return hmac.compare_digest(digest(given.encode()).digest(), digest(secret.encode()).digest())


@router.post(
    "/bison/{token}",
    response_model=WebhookReceived,
    responses=ERRORS,
    summary="Email Bison webhook receiver",
)
async def bison_webhook(
    token: Annotated[str, Path(max_length=256)], request: Request, services: ServicesDep
) -> WebhookReceived:
    secret = services.settings.bison_webhook_secret
    if secret is None:
        raise NotFound("no webhook receiver is configured here", code="webhooks_disabled")
    guard = services.bad_webhook_tokens
    bucket = client_bucket(client_ip(request.scope, services.proxies))
    now = time.time() * 1000
    if not guard.peek(bucket, now).allowed:
        # Guessing: refused before the token is even compared, so a guess that happens to be
        # right teaches nothing while the address is throttled.
        services.metrics.webhooks.labels("throttled").inc()
        raise TooManyRequests(
            "too many wrong webhook tokens from this address; retry later",
            retry_after_s=guard.peek(bucket, now).retry_after_header,
            code="too_many_bad_tokens",
        )
    if not _same_token(token, secret.get_secret_value()):
        services.metrics.webhooks.labels("bad_token").inc()
        guard.decide(bucket, now)
        if guard.peek(bucket, now).allowed:
            log.info("wrong webhook token from %s", bucket)
        else:
            log.warning("wrong webhook tokens from %s: throttled", bucket)
        raise Unauthenticated("invalid webhook token", code="invalid_webhook_token")
    delivery = parse_delivery(await request.body(), now_ms=now_ms())
    async with services.webhook_keys.hold(delivery.dedupe_key):
        receipt = await run_in_threadpool(services.store.lock_webhook, delivery.dedupe_key)
        try:
            if receipt.seen is not None:
                services.metrics.webhooks.labels("duplicate").inc()
                return WebhookReceived(
                    status="duplicate", event_id=receipt.seen, event_type=delivery.event_type
                )
            producer = services.producer
            acks = Acks(asyncio.get_running_loop())
            data = producer.encode("bison.events", delivery.record)
            await run_in_threadpool(
                producer.produce, "bison.events", data, delivery.key, None, acks
            )
            await acks.wait(min(producer.ack_timeout_s, 10.0))
            await run_in_threadpool(receipt.record, delivery.event_id, delivery.event_type)
        finally:
            await run_in_threadpool(receipt.close)
    services.metrics.webhooks.labels("accepted").inc()
    return WebhookReceived(
        status="accepted", event_id=delivery.event_id, event_type=delivery.event_type
    )
