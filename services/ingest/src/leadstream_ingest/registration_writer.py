"""The registration writer (``leadstream-registration-writer``): a stage on the shared runtime
that reads ``registrations`` and persists each accepted registration to PostgreSQL.

One registration per phone, ever: the first request for a phone is ``registered``, every
later one is recorded as a ``duplicate`` (an outcome, not an error). Decisions survive a
replay: the phone row remembers the request that created it, and each request's outcome is
stored once, keyed by its request id. Records are keyed by phone, so all requests for one
phone are in one partition, in order. The stage produces no events; its offsets are
committed in the runtime's transaction after the database writes.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlalchemy import Engine

from leadstream.db import make_engine
from leadstream.db.contacts import DatabaseUnavailableError
from leadstream.db.registrations import DUPLICATE, REGISTERED, RegistrationStore
from leadstream.events import Serde
from leadstream.runtime import BadRecord, Output, Record, RetryLater, Stage
from leadstream.runtime.service import serve_stage
from leadstream_ingest.config import IngestSettings

STAGE = "registrations"  # consumer group leadstream-registrations, dead letters dlq.registrations
INPUT = "registrations"
_E164 = re.compile(r"\+[1-9]\d{6,14}")


@dataclass(frozen=True, slots=True)
class Registration:
    """A ``Registration`` event, checked enough to be stored."""

    request_id: str
    event_id: str
    phone_e164: str
    phone: str
    region: str
    source: str
    accepted_at: datetime
    first_name: str | None = None
    last_name: str | None = None
    email: str | None = None
    landing_page: str | None = None
    custom_fields: dict[str, str] = field(default_factory=dict)
    source_details: dict[str, Any] | None = None
    consent: dict[str, Any] | None = None

    @classmethod
    def of(cls, value: Mapping[str, Any]) -> Registration:
        """The registration in a decoded event; :class:`BadRecord` when it cannot be stored."""
        request_id = value.get("request_id") or ""
        phone_e164 = value.get("phone_e164") or ""
        if not 1 <= len(request_id) <= 128:
            raise BadRecord("a registration needs a request_id of 1 to 128 characters")
        if not _E164.fullmatch(phone_e164):
            raise BadRecord("phone_e164 is not an E.164 number")
        at = value["event_time"]
        accepted_at = at if isinstance(at, datetime) else datetime.fromtimestamp(at / 1000, UTC)
        return cls(
            request_id=request_id,
            event_id=value["event_id"],
            phone_e164=phone_e164,
            phone=value["phone"],
            region=value["region"],
            source=value["source"],
            accepted_at=accepted_at,
            first_name=value.get("first_name"),
            last_name=value.get("last_name"),
            email=value.get("email"),
            landing_page=value.get("landing_page"),
            custom_fields=dict(value.get("custom_fields") or {}),
            source_details=value.get("source_details"),
            consent=value.get("consent"),
        )


@dataclass(frozen=True, slots=True)
class Outcome:
    request_id: str
    event_id: str
    phone_e164: str
    status: str
    accepted_at: datetime


class RegistrationPort(Protocol):
    def claim(self, claims: Sequence[Registration]) -> dict[str, str]: ...
    def record(self, outcomes: Sequence[Outcome]) -> None: ...


def decide(
    registrations: Sequence[Registration], claim: Callable[[Sequence[Registration]], dict[str, str]]
) -> list[Outcome]:
    """Each registration's outcome: ``registered`` when its request owns the phone (first
    claim wins; within a batch the earliest record), else ``duplicate``."""
    first: dict[str, Registration] = {}
    for r in registrations:
        first.setdefault(r.phone_e164, r)
    owners = claim(list(first.values()))
    return [
        Outcome(
            r.request_id,
            r.event_id,
            r.phone_e164,
            REGISTERED if owners[r.phone_e164] == r.request_id else DUPLICATE,
            r.accepted_at,
        )
        for r in registrations
    ]


class RegistrationWriter:
    """The stage handler: decide, store, produce nothing."""

    def __init__(self, store: RegistrationPort) -> None:
        self.store = store

    def __call__(self, records: Sequence[Record]) -> list[list[Output]]:
        registrations = [Registration.of(r.value) for r in records]
        try:
            self.store.record(decide(registrations, self.store.claim))
        except DatabaseUnavailableError as exc:
            raise RetryLater(str(exc)) from exc
        return [[] for _ in records]


def build_stage(engine: Engine) -> Stage:
    return Stage(STAGE, [INPUT], RegistrationWriter(RegistrationStore(engine)))


def main() -> None:
    """Run the registration writer until SIGTERM."""
    settings = IngestSettings()
    engine = make_engine(settings, pool_size=settings.registration_writer_pool_size)
    serde = Serde(settings)
    try:
        serde.codec(INPUT).prepare()
        serve_stage(
            build_stage(engine),
            settings,
            serde,
            metrics_host=settings.registration_writer_metrics_host,
            metrics_port=settings.registration_writer_metrics_port,
        )
    finally:
        serde.close()
        engine.dispose()


if __name__ == "__main__":
    main()
