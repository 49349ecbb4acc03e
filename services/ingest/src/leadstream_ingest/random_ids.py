"""Random (version 4) UUIDs, as ``uuid.uuid4()`` makes them, from a pooled ``os.urandom``
buffer: one ``getrandom`` call per 256 ids instead of one per id. A registration takes two
(the request id and the event id); under load the per-id call, which lets the producer's
poll thread take the GIL, cost more than the rest of the id's making.

The bytes are the same kernel CSPRNG's as ``uuid.uuid4()``'s, only read ahead; the pool is
dropped in a forked child so parent and child never hand out the same ids.
"""

from __future__ import annotations

import os
import threading

_POOL_BYTES = 4096
_lock = threading.Lock()
_pool = b""
_pos = 0


def _drop_pool() -> None:
    global _pool, _pos
    _pool, _pos = b"", 0


os.register_at_fork(after_in_child=_drop_pool)


def uuid4_bytes() -> bytes:
    """16 random bytes with the version-4 and RFC 4122 variant bits set."""
    global _pool, _pos
    with _lock:
        if _pos >= len(_pool):
            _pool, _pos = os.urandom(_POOL_BYTES), 0
        raw = bytearray(_pool[_pos : _pos + 16])
        _pos += 16
    raw[6] = (raw[6] & 0x0F) | 0x40  # version 4
    raw[8] = (raw[8] & 0x3F) | 0x80  # RFC 4122 variant
    return bytes(raw)


def uuid4_hex() -> str:
    """``uuid.uuid4().hex``."""
    return uuid4_bytes().hex()


def uuid4_str() -> str:
    """``str(uuid.uuid4())``."""
    h = uuid4_bytes().hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
