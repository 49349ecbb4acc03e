"""A Redis restart makes bison-sync retry its batches later, never dead-letter them (the
shared rate bucket is in Redis; the fault suite found batches dead-lettered on a restart)."""

from __future__ import annotations

import socket
from collections.abc import Mapping, Sequence
from typing import Any

import pytest
from redis import Redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from leadstream.runtime import Record, RetryLater
from leadstream_bison_sync.handler import BisonSyncHandler


def refused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class BucketOnRedisDown:
    """An uploader whose rate bucket asks a Redis that refuses connections."""

    def __init__(self) -> None:
        self.redis = Redis(
            host="127.0.0.1",
            port=refused_port(),
            socket_connect_timeout=1,
            retry=Retry(NoBackoff(), 0),
        )

    def upload(self, value: Mapping[str, Any], source: tuple[str, int, int]) -> Any:
        self.redis.ping()
        raise AssertionError("unreachable")


class NoFeedback:
    def record(self, values: Sequence[Mapping[str, Any]]) -> list[Any]:
        return []


def ready(offset: int) -> Record:
    value = {"batch_id": f"b{offset}", "campaign_id": "1", "contacts": []}
    return Record("batches.ready", 0, offset, b"b", value, {}, 0)


@pytest.mark.parametrize("concurrency", [1, 2])
def test_redis_unreachable_is_a_retry_not_a_dead_letter(concurrency: int) -> None:
    handler = BisonSyncHandler(
        BucketOnRedisDown(),  # type: ignore[arg-type]
        NoFeedback(),  # type: ignore[arg-type]
        ready_topic="batches.ready",
        events_topic="bison.events",
        concurrency=concurrency,
    )
    try:
        with pytest.raises(RetryLater, match="Redis unavailable"):
            handler([ready(1), ready(2)])
    finally:
        handler.close()
