"""The ``suppressions`` table: emails and domains that must never be sent to.

Fed by operators (``leadstream suppress``) and by bison-sync (bounces, unsubscribes). Write
through :class:`SuppressionStore` only: every change takes a fresh ``version`` under a
transaction-scoped advisory lock, so versions become visible in order and a reader that polls
``changes_since(last_version)`` never misses one. Removal is a soft delete (``removed_at``) for
the same reason.

Values are stored normalized the way the filter compares them: an email lower-cased with an
IDNA (punycode) domain, a domain lower-cased and IDNA-encoded, without a trailing dot.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import idna
import sqlalchemy as sa
from sqlalchemy import Connection, Engine

from leadstream.db.contacts import unavailable_as_error
from leadstream.errors import LeadStreamError

Kind = Literal["email", "domain"]
KINDS: tuple[Kind, ...] = ("email", "domain")
_LOCK_KEY = 0x5EAD_0002  # pg_advisory_xact_lock key of suppression writers
_CHUNK = 10_000


class InvalidSuppressionError(LeadStreamError):
    """A value that is neither an email address nor a domain."""


@dataclass(frozen=True, slots=True)
class Suppression:
    """One entry to add: ``value`` already normalized (see :func:`parse_value`)."""

    kind: Kind
    value: str
    reason: str | None = None
    source: str = "operator"


@dataclass(frozen=True, slots=True)
class SuppressionEntry:
    """One stored entry."""

    kind: Kind
    value: str
    reason: str | None
    source: str
    version: int
    created_at: datetime
    removed_at: datetime | None


@dataclass(frozen=True, slots=True)
class SuppressionChange:
    """A change seen by a poller: the entry is now active (added) or not (removed)."""

    kind: Kind
    value: str
    active: bool
    version: int


def normalize_domain(domain: str) -> str:
    """Lower-cased, IDNA-encoded, no trailing dot. Raises :class:`InvalidSuppressionError`."""
    d = domain.strip().rstrip(".").lower()
    if not d or "@" in d or any(c.isspace() for c in d):
        raise InvalidSuppressionError(f"not a domain: {domain!r}")
    if not d.isascii():
        try:
            d = idna.encode(d, uts46=True).decode("ascii")
        except idna.IDNAError as exc:
            raise InvalidSuppressionError(f"not a domain: {domain!r}: {exc}") from exc
    if "." not in d or ".." in d:
        raise InvalidSuppressionError(f"not a domain: {domain!r}")
    return d


def parse_value(raw: str) -> tuple[Kind, str]:
    """``jane@x.com`` → an email entry, ``x.com`` or ``@x.com`` → a domain entry."""
    text = raw.strip().strip("<>").strip()
    if text.lower().startswith("mailto:"):
        text = text[7:]
    if text.startswith("@"):
        return "domain", normalize_domain(text[1:])
    if "@" in text:
        local, _, domain = text.rpartition("@")
        if not local or any(c.isspace() for c in local):
            raise InvalidSuppressionError(f"not an email address: {raw!r}")
        return "email", f"{local.lower()}@{normalize_domain(domain)}"
    return "domain", normalize_domain(text)


def parse_lines(lines: Iterable[str], *, reason: str | None, source: str) -> Iterator[Suppression]:
    """Entries from a file: one value per line, or CSV whose first column is the value and
    whose optional second column is the reason. Blank lines, ``#`` comments and a header row
    (``email``, ``domain``, ``value``) are skipped."""
    for row in csv.reader(lines):
        if not row or not row[0].strip() or row[0].lstrip().startswith("#"):
            continue
        if row[0].strip().lower() in {"email", "domain", "value", "email_address"}:
            continue
        kind, value = parse_value(row[0])
        why = row[1].strip() if len(row) > 1 and row[1].strip() else reason
        yield Suppression(kind, value, why, source)


_UPSERT = sa.text(
    """
    INSERT INTO suppressions AS s (kind, value, reason, source)
    SELECT * FROM unnest(CAST(:kind AS text[]), CAST(:value AS text[]),
                         CAST(:reason AS text[]), CAST(:source AS text[]))
    ON CONFLICT (kind, value) DO UPDATE SET
        reason = COALESCE(EXCLUDED.reason, s.reason),
        source = EXCLUDED.source,
        removed_at = NULL,
        updated_at = now(),
        version = nextval('suppressions_version_seq')
    WHERE s.removed_at IS NOT NULL
    """
)

_REMOVE = sa.text(
    """
    UPDATE suppressions SET removed_at = now(), updated_at = now(),
                            version = nextval('suppressions_version_seq')
    WHERE kind = :kind AND value = ANY(CAST(:values AS text[])) AND removed_at IS NULL
    """
)

_CHANGES = sa.text(
    "SELECT kind, value, removed_at IS NULL, version FROM suppressions "
    "WHERE version > :since ORDER BY version"
)


class SuppressionStore:
    """Suppressions over an engine."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def add(self, entries: Iterable[Suppression]) -> int:
        """Add (or re-activate) entries in one transaction; returns how many changed."""
        changed = 0
        with unavailable_as_error(), self.engine.begin() as conn:
            _lock(conn)
            for chunk in _chunks(_dedupe(entries)):
                result = conn.execute(
                    _UPSERT,
                    {
                        "kind": [e.kind for e in chunk],
                        "value": [e.value for e in chunk],
                        "reason": [e.reason for e in chunk],
                        "source": [e.source for e in chunk],
                    },
                )
                changed += result.rowcount
        return changed

    def remove(self, kind: Kind, values: Sequence[str]) -> int:
        """Remove (soft-delete) active entries; returns how many were active."""
        with unavailable_as_error(), self.engine.begin() as conn:
            _lock(conn)
            return conn.execute(_REMOVE, {"kind": kind, "values": list(values)}).rowcount

    def entries(
        self, kind: Kind | None = None, *, include_removed: bool = False
    ) -> list[SuppressionEntry]:
        """Stored entries, oldest change first."""
        sql = (
            "SELECT kind, value, reason, source, version, created_at, removed_at FROM suppressions"
        )
        where = []
        if kind is not None:
            where.append("kind = :kind")
        if not include_removed:
            where.append("removed_at IS NULL")
        if where:
            sql += " WHERE " + " AND ".join(where)
        with unavailable_as_error(), self.engine.connect() as conn:
            rows = conn.execute(sa.text(sql + " ORDER BY version"), {"kind": kind})
            return [SuppressionEntry(*row) for row in rows]

    def changes_since(self, version: int) -> tuple[list[SuppressionChange], int]:
        """Every change after ``version`` (0 = everything) and the version to ask from next."""
        with unavailable_as_error(), self.engine.connect() as conn:
            rows = [SuppressionChange(*row) for row in conn.execute(_CHANGES, {"since": version})]
            conn.rollback()
        return rows, max((r.version for r in rows), default=version)


def _lock(conn: Connection) -> None:
    conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK_KEY})


def _dedupe(entries: Iterable[Suppression]) -> list[Suppression]:
    return list({(e.kind, e.value): e for e in entries}.values())


def _chunks(items: list[Suppression]) -> Iterator[list[Suppression]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


def read_file(text: str, *, reason: str | None, source: str) -> list[Suppression]:
    """:func:`parse_lines` over a whole file's text."""
    return list(parse_lines(io.StringIO(text), reason=reason, source=source))


__all__ = [
    "KINDS",
    "InvalidSuppressionError",
    "Kind",
    "Suppression",
    "SuppressionChange",
    "SuppressionEntry",
    "SuppressionStore",
    "normalize_domain",
    "parse_lines",
    "parse_value",
    "read_file",
]
