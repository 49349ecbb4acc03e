"""``POST /v1/contacts``: one contact, or a batch of up to 1,000 (a job)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from leadstream.db.idempotency import ClaimOutcome
from leadstream_ingest.auth import IngestKey
from leadstream_ingest.contacts import ContactsBody
from leadstream_ingest.deps import ServicesDep, request_context
from leadstream_ingest.errors import Conflict
from leadstream_ingest.submissions import fingerprint

router = APIRouter(prefix="/v1", tags=["contacts"])
ROUTE = "POST /v1/contacts"


class ContactsAccepted(BaseModel):
    request_id: str
    job_id: str | None
    accepted: int
    event_ids: list[str]


ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "Malformed JSON"},
    401: {"description": "Missing, invalid or revoked API key"},
    403: {"description": "The key lacks the ingest scope"},
    409: {"description": "Idempotency-Key reused with another body, or still in progress"},
    413: {"description": "Body over the limit"},
    422: {"description": "Invalid contact(s), or too many"},
    503: {"description": "The broker did not acknowledge; retry with the same Idempotency-Key"},
}


@router.post(
    "/contacts",
    status_code=202,
    response_model=ContactsAccepted,
    responses=ERRORS,
    summary="Submit one contact, or a batch of up to 1,000 (a job)",
)
async def submit_contacts(
    body: ContactsBody,
    request: Request,
    principal: IngestKey,
    services: ServicesDep,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            min_length=1,
            max_length=255,
            description="Same key + same body → the same response, for 24 h; "
            "same key + another body → 409.",
        ),
    ] = None,
) -> JSONResponse:
    """Answered 202 only after the broker acknowledged every event. A body with a
    `contacts` list is a batch and creates a job (`job_id` in the answer)."""
    ctx = request_context(request, principal.key_id)
    seed = None
    if idempotency_key is not None:
        seed = f"{principal.key_id}:{idempotency_key}"
        claim = await run_in_threadpool(
            services.idempotency.claim,
            principal.key_id,
            idempotency_key,
            fingerprint(ROUTE, body),
        )
        if claim.outcome is ClaimOutcome.REPLAY:
            assert claim.status_code is not None
            return JSONResponse(
                claim.response,
                status_code=claim.status_code,
                headers={"Idempotent-Replayed": "true"},
            )
        if claim.outcome is ClaimOutcome.CONFLICT:
            raise Conflict(
                "this Idempotency-Key was already used with a different request body",
                code="idempotency_key_reused",
            )
        if claim.outcome is ClaimOutcome.IN_PROGRESS:
            raise Conflict(
                "a request with this Idempotency-Key is still being processed; retry later",
                code="idempotency_key_in_progress",
            )
    try:
        submitted = await services.submissions.submit(body, ctx, seed=seed)
    except BaseException:
        if idempotency_key is not None:
            await run_in_threadpool(services.idempotency.release, principal.key_id, idempotency_key)
        raise
    if submitted.job_id:
        request.state.job_id = submitted.job_id
    services.metrics.contacts.labels("api").inc(len(submitted.event_ids))
    answer = submitted.as_dict(ctx.request_id)
    if idempotency_key is not None:
        await run_in_threadpool(
            services.idempotency.complete, principal.key_id, idempotency_key, 202, answer
        )
    return JSONResponse(answer, status_code=202)
