"""The ``contacts`` table: one row per normalized email, ever.

Two writers, each one statement per batch:

- the filter *claims* emails (:meth:`ContactStore.claim`): an ``INSERT ... ON CONFLICT DO
  NOTHING`` over the batch's rows (one JSON parameter read by ``json_to_recordset``) that
  also reads, for every email, the event that created its row. A row remembers its creating
  event, so the replay of that event is recognised as itself and not as a duplicate; a
  concurrent instance that inserted the same email first wins, and the loser sees its row (a
  second, rare, statement covers the race where the winner committed after this statement's
  snapshot).
- the verify stage records verdicts (:meth:`ContactStore.record_verifications`): an idempotent
  upsert keyed by the normalized email.

Callers hand in any objects with the right attributes (:class:`ContactClaim`,
:class:`VerificationRow` are protocols), so domain code needs no import from here.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from operator import attrgetter
from typing import Any, Protocol, TypeVar

import sqlalchemy as sa
from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from leadstream.errors import LeadStreamError

T = TypeVar("T")


class DatabaseUnavailableError(LeadStreamError):
    """PostgreSQL cannot be reached (refused, restarted, pool exhausted): try again later."""


class ContactClaim(Protocol):
    """What the filter knows about a contact it wants to create."""

    @property
    def contact_id(self) -> str: ...
    @property
    def email_normalized(self) -> str: ...
    @property
    def domain(self) -> str: ...
    @property
    def email(self) -> str: ...
    @property
    def first_name(self) -> str | None: ...
    @property
    def last_name(self) -> str | None: ...
    @property
    def phone_e164(self) -> str | None: ...
    @property
    def company(self) -> str | None: ...
    @property
    def website_domain(self) -> str | None: ...
    @property
    def role_account(self) -> bool: ...
    @property
    def free_provider(self) -> bool: ...
    @property
    def source(self) -> str: ...
    @property
    def job_id(self) -> str | None: ...
    @property
    def event_id(self) -> str: ...


class VerificationRow(Protocol):
    """A verify-stage verdict for one contact (and enough to create the row if it is missing)."""

    @property
    def contact_id(self) -> str: ...
    @property
    def email_normalized(self) -> str: ...
    @property
    def domain(self) -> str: ...
    @property
    def email(self) -> str: ...
    @property
    def role_account(self) -> bool: ...
    @property
    def free_provider(self) -> bool: ...
    @property
    def raw_event_id(self) -> str: ...
    @property
    def job_id(self) -> str | None: ...
    @property
    def verdict(self) -> str: ...
    @property
    def reasons(self) -> Sequence[str]: ...
    @property
    def mx_host(self) -> str | None: ...
    @property
    def suggestion(self) -> str | None: ...
    @property
    def verifier(self) -> str: ...
    @property
    def disposable_list_version(self) -> str | None: ...
    @property
    def event_id(self) -> str: ...


_CLAIM = sa.text(
    """
    WITH input AS (
        SELECT * FROM json_to_recordset(CAST(:rows AS json)) AS t(
            contact_id uuid, email_normalized text, domain text, email text, first_name text,
            last_name text, phone_e164 text, company text, website_domain text,
            role_account boolean, free_provider boolean, source text, job_id text,
            event_id text)
    ),
    inserted AS (
        INSERT INTO contacts (contact_id, email_normalized, domain, email, first_name, last_name,
                              phone_e164, company, website_domain, role_account, free_provider,
                              source, job_id, created_event_id)
        SELECT contact_id, email_normalized, domain, email, first_name, last_name, phone_e164,
               company, website_domain, role_account, free_provider, source, job_id, event_id
        FROM input
        ON CONFLICT (email_normalized) DO NOTHING
        RETURNING email_normalized, created_event_id
    )
    SELECT i.email_normalized, COALESCE(n.created_event_id, c.created_event_id)
    FROM input i
    LEFT JOIN inserted n ON n.email_normalized = i.email_normalized
    LEFT JOIN contacts c ON c.email_normalized = i.email_normalized
    """
)

_OWNERS = sa.text(
    "SELECT email_normalized, created_event_id FROM contacts "
    "WHERE email_normalized = ANY(CAST(:emails AS text[]))"
)

_RECORD = sa.text(
    """
    INSERT INTO contacts AS c (contact_id, email_normalized, domain, email, role_account,
                               free_provider, source, job_id, created_event_id, verdict,
                               verdict_reasons, mx_host, suggestion, verifier,
                               disposable_list_version, verified_event_id, verified_at)
    SELECT contact_id, email_normalized, domain, email, role_account, free_provider, 'verify',
           job_id, raw_event_id, verdict, string_to_array(reasons, ','), mx_host, suggestion,
           verifier, disposable_list_version, event_id, now()
    FROM json_to_recordset(CAST(:rows AS json)) AS t(
        contact_id uuid, email_normalized text, domain text, email text, role_account boolean,
        free_provider boolean, job_id text, raw_event_id text, verdict text, reasons text,
        mx_host text, suggestion text, verifier text, disposable_list_version text,
        event_id text)
    ON CONFLICT (email_normalized) DO UPDATE SET
        verdict = EXCLUDED.verdict,
        verdict_reasons = EXCLUDED.verdict_reasons,
        mx_host = EXCLUDED.mx_host,
        suggestion = EXCLUDED.suggestion,
        verifier = EXCLUDED.verifier,
        disposable_list_version = EXCLUDED.disposable_list_version,
        verified_event_id = EXCLUDED.verified_event_id,
        verified_at = EXCLUDED.verified_at
    """
)


class ContactStore:
    """The contacts table over an engine. Every call is one autocommitted statement."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine.execution_options(isolation_level="AUTOCOMMIT")

    def claim(self, contacts: Sequence[ContactClaim]) -> dict[str, str]:
        """Create the rows that do not exist yet; return, per normalized email, the event id
        that created its row (the caller's own event id when the caller created it).

        Emails must be distinct within one call (the caller decides which record of a batch
        goes first).
        """
        if not contacts:
            return {}
        params = _rows(
            contacts,
            (
                "contact_id",
                "email_normalized",
                "domain",
                "email",
                "first_name",
                "last_name",
                "phone_e164",
                "company",
                "website_domain",
                "role_account",
                "free_provider",
                "source",
                "job_id",
                "event_id",
            ),
        )

        def run(conn: Connection) -> dict[str, str]:
            owners: dict[str, str] = {}
            missing: list[str] = []
            for email, owner in conn.execute(_CLAIM, params):
                if owner is None:  # inserted concurrently, after our statement's snapshot
                    missing.append(email)
                else:
                    owners[email] = owner
            if missing:
                for email, owner in conn.execute(_OWNERS, {"emails": missing}):
                    owners[email] = owner
            return owners

        return self._run(run)

    def record_verifications(self, rows: Sequence[VerificationRow]) -> None:
        """Store each contact's verdict (creating the row if the filter's write is missing).

        Idempotent: the same rows again change nothing but ``verified_at``. When one email
        appears more than once, the last row wins.
        """
        if not rows:
            return
        last = list({r.email_normalized: r for r in rows}.values())
        params = _rows(
            last,
            (
                "contact_id",
                "email_normalized",
                "domain",
                "email",
                "role_account",
                "free_provider",
                "job_id",
                "raw_event_id",
                "verdict",
                "mx_host",
                "suggestion",
                "verifier",
                "disposable_list_version",
                "event_id",
            ),
            reasons=lambda r: ",".join(r.reasons),
        )
        self._run(lambda conn: conn.execute(_RECORD, params))

    def get(self, email_normalized: str) -> dict[str, Any] | None:
        """One contact row as a dict (operators and tests)."""

        def run(conn: Connection) -> dict[str, Any] | None:
            row = (
                conn.execute(
                    sa.text("SELECT * FROM contacts WHERE email_normalized = :e"),
                    {"e": email_normalized},
                )
                .mappings()
                .first()
            )
            return dict(row) if row is not None else None

        return self._run(run)

    def _run(self, work: Callable[[Connection], T]) -> T:
        with unavailable_as_error(), self.engine.connect() as conn:
            return work(conn)


@contextmanager
def unavailable_as_error() -> Iterator[None]:
    """Turn "the database cannot be reached" into :class:`DatabaseUnavailableError`."""
    try:
        yield
    except (OperationalError, InterfaceError, PoolTimeoutError) as exc:
        raise DatabaseUnavailableError(f"database unavailable: {exc}") from exc
    except DBAPIError as exc:
        if exc.connection_invalidated:
            raise DatabaseUnavailableError(f"database connection lost: {exc}") from exc
        raise


def _rows(
    rows: Sequence[Any], names: Sequence[str], **computed: Callable[[Any], Any]
) -> dict[str, str]:
    """The rows as one JSON parameter (``json_to_recordset`` on the server): one string to
    send instead of an array per column, which psycopg would dump element by element."""
    values = attrgetter(*names) if len(names) > 1 else (lambda r: (getattr(r, names[0]),))
    if computed:
        items = []
        for r in rows:
            item = dict(zip(names, values(r), strict=True))
            for name, fn in computed.items():
                item[name] = fn(r)
            items.append(item)
    else:
        items = [dict(zip(names, values(r), strict=True)) for r in rows]
    return {"rows": json.dumps(items, ensure_ascii=False, separators=(",", ":"))}


__all__ = [
    "ContactClaim",
    "ContactStore",
    "DatabaseUnavailableError",
    "VerificationRow",
    "unavailable_as_error",
]
