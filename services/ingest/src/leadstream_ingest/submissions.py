"""JSON contact submissions: one contact, or a batch that becomes a job; answered only after
the broker acknowledged every event.

A batch: the job row is written first (kind ``batch``, already sealed: its total is known),
then ``JobEvent`` created, the contacts (header ``job_id``) and ``JobEvent`` sealed are
produced and their delivery reports awaited together.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from leadstream.db.ingest import IngestStore
from leadstream.runtime import JOB_ID_HEADER
from leadstream_ingest.config import IngestSettings
from leadstream_ingest.contacts import (
    ContactBatchIn,
    ContactIn,
    RequestContext,
    contact_event,
    contact_key,
    event_ids,
    job_id_for,
    now_ms,
)
from leadstream_ingest.errors import IngestError, InvalidInput
from leadstream_ingest.job_events import CREATED, SEALED, job_event
from leadstream_ingest.producer import Acks, EventProducer


def fingerprint(route: str, body: ContactIn | ContactBatchIn) -> str:
    """The identity of a request body for idempotency: canonical JSON of the validated body
    (so whitespace or key order do not matter), hashed."""
    canonical = json.dumps(
        {"route": route, "body": body.model_dump(mode="json")}, sort_keys=True, default=str
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Submitted:
    event_ids: list[str]
    job_id: str | None

    def as_dict(self, request_id: str) -> dict[str, Any]:
        return {
            "request_id": request_id,
            "job_id": self.job_id,
            "accepted": len(self.event_ids),
            "event_ids": self.event_ids,
        }


class SubmissionService:
    def __init__(
        self, settings: IngestSettings, producer: EventProducer, store: IngestStore
    ) -> None:
        self.settings = settings
        self.producer = producer
        self.store = store

    async def submit(
        self, body: ContactIn | ContactBatchIn, ctx: RequestContext, *, seed: str | None
    ) -> Submitted:
        if isinstance(body, ContactIn):
            ids = event_ids(1, seed=seed)
            event = contact_event(body, event_id=ids[0], job_id=None, ctx=ctx)
            acks = Acks(asyncio.get_running_loop())
            await asyncio.to_thread(self._produce_contacts, [event], None, acks)
            await acks.wait(self.producer.ack_timeout_s)
            return Submitted(ids, None)
        limit = self.settings.max_batch_contacts
        if len(body.contacts) > limit:
            raise InvalidInput(
                f"{len(body.contacts)} contacts; at most {limit} per request",
                code="too_many_contacts",
            )
        job_id = job_id_for(seed)
        ids = event_ids(len(body.contacts), seed=seed)
        at = now_ms()
        events = [
            contact_event(c, event_id=i, job_id=job_id, ctx=ctx, event_time=at)
            for c, i in zip(body.contacts, ids, strict=True)
        ]
        row = await asyncio.to_thread(
            self.store.create_job,
            job_id,
            kind="batch",
            source="api",
            api_key_id=ctx.api_key_id,
            meta={"name": body.name, "request_id": ctx.request_id},
            expected_total=len(events),
            sealed=True,
        )
        if row.meta.get("status") == "failed":  # an earlier attempt with this key failed
            await asyncio.to_thread(self.store.reopen_job, job_id)
        acks = Acks(asyncio.get_running_loop())
        try:
            await asyncio.to_thread(self._produce_job, job_id, events, body.name, ctx, acks)
            await acks.wait(self.producer.ack_timeout_s)
        except IngestError as exc:
            # The row says failed (no JobEvent: the broker is what failed; a retry with the
            # same Idempotency-Key reopens the same job and produces the same event ids).
            await asyncio.to_thread(self.store.fail_job, job_id, exc.reason)
            raise
        return Submitted(ids, job_id)

    def _produce_job(
        self,
        job_id: str,
        events: list[dict[str, Any]],
        name: str | None,
        ctx: RequestContext,
        acks: Acks,
    ) -> None:
        rid = ctx.request_id
        created = job_event(job_id, CREATED, source="api", kind="batch", request_id=rid, name=name)
        sealed = job_event(
            job_id,
            SEALED,
            source="api",
            kind="batch",
            request_id=rid,
            name=name,
            expected_total=len(events),
        )
        encode, produce = self.producer.encode, self.producer.produce
        produce("jobs.events", encode("jobs.events", created), job_id, None, acks)
        self._produce_contacts(events, job_id, acks)
        produce("jobs.events", encode("jobs.events", sealed), job_id, None, acks)

    def _produce_contacts(
        self, events: list[dict[str, Any]], job_id: str | None, acks: Acks
    ) -> None:
        codec = self.producer.serde.codec("contacts.raw")
        headers: list[tuple[str, str | bytes | None]] | None = (
            [(JOB_ID_HEADER, job_id.encode())] if job_id else None
        )
        for event in events:
            data = codec.serialize(event)
            self.producer.produce("contacts.raw", data, contact_key(event["email"]), headers, acks)
