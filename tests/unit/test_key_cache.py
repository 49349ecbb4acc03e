"""The in-process API-key cache: what it keeps, for how long, and what it never keeps."""

from __future__ import annotations

from datetime import UTC, datetime

from leadstream.db.api_keys import ApiKey
from leadstream_ingest.key_cache import KeyCache
from tests.support.clock import Clock


def key(key_id: str) -> ApiKey:
    return ApiKey(
        key_id=key_id,
        name="n",
        scopes=("ingest",),
        created_at=datetime.now(UTC),
        revoked_at=None,
    )


def test_a_key_is_kept_for_ttl_seconds_then_looked_up_again() -> None:
    clock = Clock()
    cache = KeyCache(5.0, clock=clock)
    assert cache.get("lsk_a") is None
    cache.put("lsk_a", key("k1"))
    clock.now += 4.9
    found = cache.get("lsk_a")
    assert found is not None
    assert found.key_id == "k1"
    assert cache.get("lsk_b") is None
    clock.now += 0.2
    assert cache.get("lsk_a") is None


def test_ttl_zero_keeps_nothing() -> None:
    cache = KeyCache(0)
    cache.put("lsk_a", key("k1"))
    assert cache.get("lsk_a") is None


def test_the_cache_is_bounded_expired_entries_go_first() -> None:
    clock = Clock()
    cache = KeyCache(10.0, max_entries=3, clock=clock)
    cache.put("lsk_old", key("old"))
    clock.now += 11
    cache.put("lsk_1", key("1"))
    cache.put("lsk_2", key("2"))
    cache.put("lsk_3", key("3"))  # full: the expired one is dropped, the live ones stay
    assert [cache.get(t) is not None for t in ("lsk_old", "lsk_1", "lsk_2", "lsk_3")] == [
        False,
        True,
        True,
        True,
    ]
    cache.put("lsk_4", key("4"))  # full of live keys: start over rather than grow
    assert cache.get("lsk_4") is not None
    assert len(cache._keys) <= 3


def test_forget_drops_every_token_of_a_key() -> None:
    cache = KeyCache(60.0)
    cache.put("lsk_a", key("k1"))
    cache.put("lsk_b", key("k2"))
    cache.forget("k1")
    assert cache.get("lsk_a") is None
    assert cache.get("lsk_b") is not None


def test_nothing_is_kept_while_revocations_cannot_be_heard() -> None:
    cache = KeyCache(60.0, live=False)
    cache.put("lsk_a", key("k1"))
    assert cache.get("lsk_a") is None
    cache.live = True
    cache.put("lsk_a", key("k1"))
    assert cache.get("lsk_a") is not None
    cache.live = False  # the listener lost its connection: look every key up again
    assert cache.get("lsk_a") is None
