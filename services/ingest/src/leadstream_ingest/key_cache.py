"""API keys recently looked up, kept in the process for a few seconds — and dropped the moment
PostgreSQL says one was revoked.

Without it every authenticated request costs a PostgreSQL look-up through the thread pool
(measured: about 2 ms of server CPU with a warm pool, more when the pool overflows and opens
connections). Only keys that exist are kept (a guessed token is never cached, so guessing
cannot fill memory), by the token's hash.

Revocation: ``ApiKeyStore.revoke`` sends ``NOTIFY leadstream_api_key_revoked, '<key id>'`` in
its transaction, and :class:`RevocationListener` (a thread with its own connection) drops that
key from the cache when it arrives, milliseconds after the commit. While the listener has no
connection the cache is bypassed (every request looks its key up), and it starts empty again
when the listener reconnects, since notifications sent meanwhile are lost. What remains: a
request racing the notification by a few milliseconds, or one whose look-up read the row just
before the revocation committed, may still pass; ``ttl_s`` bounds that.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from sqlalchemy import Engine

from leadstream.db.api_keys import REVOKED_CHANNEL, ApiKey, hash_token

log = logging.getLogger(__name__)


class KeyCache:
    def __init__(
        self,
        ttl_s: float,
        *,
        max_entries: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
        live: bool = True,
    ) -> None:
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self.clock = clock
        self.live = live  # False: revocations cannot reach us, so keep nothing
        self._keys: dict[str, tuple[float, ApiKey]] = {}
        self._lock = threading.Lock()

    def get(self, token: str) -> ApiKey | None:
        """The cached key of ``token`` if it was looked up less than ``ttl_s`` ago."""
        if self.ttl_s <= 0 or not self.live:
            return None
        digest = hash_token(token)
        hit = self._keys.get(digest)
        if hit is None:
            return None
        expires, key = hit
        if self.clock() >= expires:
            with self._lock:
                self._keys.pop(digest, None)
            return None
        return key

    def put(self, token: str, key: ApiKey) -> None:
        if self.ttl_s <= 0 or not self.live:
            return
        with self._lock:
            if len(self._keys) >= self.max_entries:
                now = self.clock()
                self._keys = {h: e for h, e in self._keys.items() if e[0] > now}
                if len(self._keys) >= self.max_entries:
                    self._keys.clear()
            self._keys[hash_token(token)] = (self.clock() + self.ttl_s, key)

    def forget(self, key_id: str) -> None:
        """Drop every cached token of ``key_id``."""
        with self._lock:
            self._keys = {h: e for h, e in self._keys.items() if e[1].key_id != key_id}

    def clear(self) -> None:
        with self._lock:
            self._keys.clear()


class RevocationListener:
    """LISTENs for revoked keys on its own connection and drops them from the cache."""

    def __init__(self, engine: Engine, cache: KeyCache, *, retry_s: float = 2.0) -> None:
        self.engine = engine
        self.cache = cache
        self.retry_s = retry_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="api-key-revocations", daemon=True)
        cache.live = False  # until the first LISTEN is in place

    def start(self) -> None:
        if self.cache.ttl_s > 0:
            self._thread.start()

    def close(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout_s)

    def _run(self) -> None:
        deaf = False
        while not self._stop.is_set():
            try:
                self._listen()
            except Exception as exc:  # PostgreSQL away: bypass the cache until it is back
                if not deaf:
                    log.warning("api-key revocations not heard (%s); caching paused", exc)
                deaf = True
                self.cache.clear()
            self._stop.wait(self.retry_s)

    def _listen(self) -> None:
        raw = self.engine.raw_connection()
        try:
            pg = raw.driver_connection
            assert pg is not None
            pg.autocommit = True
            pg.execute(f"LISTEN {REVOKED_CHANNEL}")
            self.cache.clear()  # anything revoked while we were deaf is forgotten
            self.cache.live = True
            while not self._stop.is_set():
                for note in pg.notifies(timeout=1.0):
                    self.cache.forget(note.payload)
        finally:
            self.cache.live = False
            raw.invalidate()  # a LISTENing session never goes back to the pool
