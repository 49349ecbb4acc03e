"""API keys: random tokens shown once, stored as their sha256, with scopes; revocable.

A token is ``lsk_`` + 32 random bytes (URL-safe base64). It has 256 bits of entropy, so a fast
hash is enough (no password stretching needed) and the lookup is by hash through a unique
index. ``admin`` implies every other scope.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from leadstream.errors import LeadStreamError

SCOPES: tuple[str, ...] = ("ingest", "admin")
ADMIN = "admin"
TOKEN_PREFIX = "lsk_"  # noqa: S105 (a prefix, not a secret)

_metadata = sa.MetaData()
api_keys = sa.Table(
    "api_keys",
    _metadata,
    sa.Column("key_id", sa.Text, primary_key=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("token_hash", sa.Text, nullable=False),
    sa.Column("scopes", postgresql.ARRAY(sa.Text), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
)


class UnknownScopeError(LeadStreamError):
    """A scope that is not one of :data:`SCOPES`."""


@dataclass(frozen=True, slots=True)
class ApiKey:
    """An API key as stored (never the token)."""

    key_id: str
    name: str
    scopes: tuple[str, ...]
    created_at: datetime
    revoked_at: datetime | None

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None

    def allows(self, scope: str) -> bool:
        """Whether this key may act with ``scope`` (admin may do everything)."""
        return scope in self.scopes or ADMIN in self.scopes


@dataclass(frozen=True, slots=True)
class NewApiKey:
    """A freshly created key and its token (the only time the token exists in clear)."""

    key: ApiKey
    token: str


REVOKED_CHANNEL = "leadstream_api_key_revoked"
"""PostgreSQL NOTIFY channel: the payload is the id of a key just revoked (processes that
keep looked-up keys drop it at once)."""


def hash_token(token: str) -> str:
    """The stored form of a token: sha256, hex."""
    return hashlib.sha256(token.encode()).hexdigest()


def _row(row: sa.Row[tuple[object, ...]]) -> ApiKey:
    m = row._mapping
    return ApiKey(
        key_id=m["key_id"],
        name=m["name"],
        scopes=tuple(m["scopes"]),
        created_at=m["created_at"],
        revoked_at=m["revoked_at"],
    )


class ApiKeyStore:
    """Create, list, revoke and look up API keys in PostgreSQL."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def create(self, name: str, scopes: Iterable[str]) -> NewApiKey:
        wanted = tuple(dict.fromkeys(scopes))
        unknown = [s for s in wanted if s not in SCOPES]
        if unknown or not wanted:
            raise UnknownScopeError(
                f"scopes must be among {', '.join(SCOPES)}; got {', '.join(wanted) or 'none'}"
            )
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        key_id = "key_" + secrets.token_hex(8)
        stmt = (
            api_keys.insert()
            .values(
                key_id=key_id,
                name=name,
                token_hash=hash_token(token),
                scopes=list(wanted),
                created_at=sa.func.now(),
            )
            .returning(*api_keys.c)
        )
        with self.engine.begin() as conn:
            row = conn.execute(stmt).one()
        return NewApiKey(_row(row), token)

    def list(self) -> list[ApiKey]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(api_keys).order_by(api_keys.c.created_at)).all()
        return [_row(r) for r in rows]

    def get(self, key_id: str) -> ApiKey | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(api_keys).where(api_keys.c.key_id == key_id)).first()
        return None if row is None else _row(row)

    def revoke(self, key_id: str) -> ApiKey | None:
        """Revoke a key (idempotent: an already revoked key keeps its first revocation time)."""
        stmt = (
            api_keys.update()
            .where(api_keys.c.key_id == key_id)
            .values(revoked_at=sa.func.coalesce(api_keys.c.revoked_at, sa.func.now()))
            .returning(*api_keys.c)
        )
        with self.engine.begin() as conn:
            row = conn.execute(stmt).first()
            if row is not None:  # delivered on commit to every listening ingest process
                conn.execute(sa.select(sa.func.pg_notify(REVOKED_CHANNEL, key_id)))
        return None if row is None else _row(row)

    def lookup(self, token: str) -> ApiKey | None:
        """The key a token belongs to (revoked keys included: the caller says why it fails)."""
        if not token.startswith(TOKEN_PREFIX) or len(token) > 128:
            return None
        stmt = sa.select(api_keys).where(api_keys.c.token_hash == hash_token(token))
        with self.engine.connect() as conn:
            row = conn.execute(stmt).first()
        return None if row is None else _row(row)
