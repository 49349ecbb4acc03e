"""The ``registrations`` tables (migration 0005): one row per phone, one row per request.

The registration writer makes two idempotent statements per batch:

- :meth:`RegistrationStore.claim` creates the phone rows that do not exist yet (``INSERT ...
  ON CONFLICT DO NOTHING`` over ``unnest`` arrays) and returns, for every phone, the request
  that created its row. The row remembers its creating request, so the replay of that request
  is recognised as itself and not called a duplicate of itself.
- :meth:`RegistrationStore.record` stores each request's outcome (registered or duplicate),
  keyed by request id: the first outcome recorded stands, a replay changes nothing.

The ingest API reads one request's outcome with :meth:`RegistrationStore.status`.
Callers hand in any objects with the right attributes (the protocols below).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, Protocol, TypeVar

import sqlalchemy as sa
from sqlalchemy import Connection, Engine

from leadstream.db.contacts import unavailable_as_error

T = TypeVar("T")
REGISTERED = "registered"
DUPLICATE = "duplicate"


class RegistrationClaim(Protocol):
    """A registration that wants to own its phone."""

    @property
    def phone_e164(self) -> str: ...
    @property
    def request_id(self) -> str: ...
    @property
    def event_id(self) -> str: ...
    @property
    def phone(self) -> str: ...
    @property
    def region(self) -> str: ...
    @property
    def first_name(self) -> str | None: ...
    @property
    def last_name(self) -> str | None: ...
    @property
    def email(self) -> str | None: ...
    @property
    def landing_page(self) -> str | None: ...
    @property
    def source(self) -> str: ...
    @property
    def custom_fields(self) -> dict[str, str]: ...
    @property
    def source_details(self) -> dict[str, Any] | None: ...
    @property
    def consent(self) -> dict[str, Any] | None: ...
    @property
    def accepted_at(self) -> datetime: ...


class RequestOutcome(Protocol):
    """What became of one accepted request."""

    @property
    def request_id(self) -> str: ...
    @property
    def event_id(self) -> str: ...
    @property
    def phone_e164(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def accepted_at(self) -> datetime: ...


_CLAIM = sa.text(
    """
    WITH input AS (
        SELECT * FROM unnest(
            CAST(:phone_e164 AS text[]), CAST(:request_id AS text[]), CAST(:event_id AS text[]),
            CAST(:phone AS text[]), CAST(:region AS text[]), CAST(:first_name AS text[]),
            CAST(:last_name AS text[]), CAST(:email AS text[]), CAST(:landing_page AS text[]),
            CAST(:source AS text[]), CAST(:custom_fields AS jsonb[]),
            CAST(:source_details AS jsonb[]), CAST(:consent AS jsonb[]),
            CAST(:accepted_at AS timestamptz[])
        ) AS t(phone_e164, request_id, event_id, phone, region, first_name, last_name, email,
               landing_page, source, custom_fields, source_details, consent, accepted_at)
    ),
    inserted AS (
        INSERT INTO registrations (phone_e164, request_id, event_id, phone, region, first_name,
                                   last_name, email, landing_page, source, custom_fields,
                                   source_details, consent, accepted_at)
        SELECT * FROM input
        ON CONFLICT (phone_e164) DO NOTHING
        RETURNING phone_e164, request_id
    )
    SELECT i.phone_e164, COALESCE(n.request_id, r.request_id)
    FROM input i
    LEFT JOIN inserted n ON n.phone_e164 = i.phone_e164
    LEFT JOIN registrations r ON r.phone_e164 = i.phone_e164
    """
)

_OWNERS = sa.text(
    "SELECT phone_e164, request_id FROM registrations "
    "WHERE phone_e164 = ANY(CAST(:phones AS text[]))"
)

_RECORD = sa.text(
    """
    INSERT INTO registration_requests (request_id, event_id, phone_e164, status, accepted_at)
    SELECT * FROM unnest(
        CAST(:request_id AS text[]), CAST(:event_id AS text[]), CAST(:phone_e164 AS text[]),
        CAST(:status AS text[]), CAST(:accepted_at AS timestamptz[])
    )
    ON CONFLICT (request_id) DO NOTHING
    """
)

_STATUS = sa.text("SELECT status FROM registration_requests WHERE request_id = :request_id")


def _json(value: Any) -> str | None:
    return None if value is None else json.dumps(value, default=str, separators=(",", ":"))


class RegistrationStore:
    """The registration tables over an engine. Every call is one autocommitted statement
    (two when :meth:`claim` meets a concurrent insert)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine.execution_options(isolation_level="AUTOCOMMIT")

    def claim(self, claims: Sequence[RegistrationClaim]) -> dict[str, str]:
        """Create the phone rows that do not exist yet; return, per phone, the request id that
        created its row. Phones must be distinct within one call."""
        if not claims:
            return {}
        params: dict[str, list[Any]] = {
            name: [getattr(c, name) for c in claims]
            for name in (
                "phone_e164",
                "request_id",
                "event_id",
                "phone",
                "region",
                "first_name",
                "last_name",
                "email",
                "landing_page",
                "source",
                "accepted_at",
            )
        }
        params["custom_fields"] = [_json(c.custom_fields or {}) for c in claims]
        params["source_details"] = [_json(c.source_details) for c in claims]
        params["consent"] = [_json(c.consent) for c in claims]

        def run(conn: Connection) -> dict[str, str]:
            owners: dict[str, str] = {}
            missing: list[str] = []
            for phone, owner in conn.execute(_CLAIM, params):
                if owner is None:  # inserted concurrently, after this statement's snapshot
                    missing.append(phone)
                else:
                    owners[phone] = owner
            if missing:
                owners.update({p: o for p, o in conn.execute(_OWNERS, {"phones": missing})})
            return owners

        return self._run(run)

    def record(self, outcomes: Sequence[RequestOutcome]) -> None:
        """Store each request's outcome; an outcome already recorded for a request stands."""
        if not outcomes:
            return
        params = {
            name: [getattr(o, name) for o in outcomes]
            for name in ("request_id", "event_id", "phone_e164", "status", "accepted_at")
        }
        self._run(lambda conn: conn.execute(_RECORD, params))

    def status(self, request_id: str) -> str | None:
        """``registered`` / ``duplicate`` once the writer recorded the request, else None."""
        return self._run(
            lambda conn: conn.execute(_STATUS, {"request_id": request_id}).scalar_one_or_none()
        )

    def _run(self, work: Callable[[Connection], T]) -> T:
        with unavailable_as_error(), self.engine.connect() as conn:
            return work(conn)


__all__ = ["DUPLICATE", "REGISTERED", "RegistrationClaim", "RegistrationStore", "RequestOutcome"]
