"""``POST /v1/webhooks/bison/{token}``: Email Bison webhook deliveries → ``bison.events``.

Unauthenticated by design (Email Bison signs nothing): the unguessable token in the URL is
the credential, compared in constant time. Deliveries are de-duplicated by their natural key
(receipts in Postgres); a new one is answered only after the broker acknowledged its event,
well inside Email Bison's 15 s. A repeat is answered 200 ``duplicate`` so it stops retrying.
"""

from __future__ import annotations

import asyncio
import hmac
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from leadstream_ingest.bison import parse_delivery
from leadstream_ingest.contacts import now_ms
from leadstream_ingest.deps import ServicesDep
from leadstream_ingest.errors import NotFound, Unauthenticated
from leadstream_ingest.producer import Acks

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
    503: {"description": "The broker did not acknowledge; Email Bison retries"},
}


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
    if not hmac.compare_digest(token.encode(), secret.get_secret_value().encode()):
        services.metrics.webhooks.labels("bad_token").inc()
        raise Unauthenticated("invalid webhook token", code="invalid_webhook_token")
    delivery = parse_delivery(await request.body(), now_ms=now_ms())
    seen = await run_in_threadpool(services.store.webhook_seen, delivery.dedupe_key)
    if seen is not None:
        services.metrics.webhooks.labels("duplicate").inc()
        return WebhookReceived(status="duplicate", event_id=seen, event_type=delivery.event_type)
    producer = services.producer
    acks = Acks(asyncio.get_running_loop())
    data = producer.encode("bison.events", delivery.record)
    await run_in_threadpool(producer.produce, "bison.events", data, delivery.key, None, acks)
    await acks.wait(min(producer.ack_timeout_s, 10.0))
    await run_in_threadpool(
        services.store.record_webhook, delivery.dedupe_key, delivery.event_id, delivery.event_type
    )
    services.metrics.webhooks.labels("accepted").inc()
    return WebhookReceived(
        status="accepted", event_id=delivery.event_id, event_type=delivery.event_type
    )
