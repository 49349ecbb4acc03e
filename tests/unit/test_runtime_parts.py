"""Pure parts of the runtime: backoff, dead-letter headers, the health endpoint."""

from __future__ import annotations

import json
import random
import threading
import time
import urllib.error
import urllib.request

import pytest
from confluent_kafka import KafkaException

from leadstream.runtime import deadletter as dl
from leadstream.runtime.backoff import backoff_delay
from leadstream.runtime.health import HealthServer
from leadstream.runtime.runner import Bounded, Wedged, group_steady


def test_backoff_grows_with_jitter_and_is_capped() -> None:
    rng = random.Random(7)
    delays = [backoff_delay(n, base_s=1, cap_s=8, rng=rng) for n in range(1, 7)]
    assert 0.5 <= delays[0] <= 1
    assert 2 <= delays[2] <= 4
    assert all(4 <= d <= 8 for d in delays[3:])
    assert len({round(d, 6) for d in delays}) == len(delays)  # jittered, never identical


def test_dlq_headers_name_the_source_and_keep_original_headers() -> None:
    headers = dict(
        dl.dlq_headers(
            original=[("job_id", b"j1"), (dl.ERROR_CLASS, b"Old"), (dl.REDRIVE_COUNT, b"2")],
            topic="contacts.raw",
            partition=3,
            offset=41,
            stage="filter",
            error=ValueError("x" * 5000),
        )
    )
    assert headers["job_id"] == b"j1"
    assert headers[dl.SOURCE_TOPIC] == b"contacts.raw"
    assert headers[dl.SOURCE_PARTITION] == b"3"
    assert headers[dl.SOURCE_OFFSET] == b"41"
    assert headers[dl.STAGE] == b"filter"
    assert headers[dl.ERROR_CLASS] == b"ValueError"  # the old one is replaced, not duplicated
    assert len(headers[dl.ERROR_MESSAGE]) == dl.MAX_MESSAGE_CHARS
    assert headers[dl.REDRIVE_COUNT] == b"2"


@pytest.mark.parametrize(("healthy", "status"), [(True, 200), (False, 503)])
def test_health_server(healthy: bool, status: int) -> None:
    server = HealthServer(lambda: (healthy, {"loop_age_s": 1.5})).start()
    try:
        url = f"http://127.0.0.1:{server.port}/healthz"
        try:
            with urllib.request.urlopen(url, timeout=5) as resp:
                code, body = resp.status, resp.read()
        except urllib.error.HTTPError as exc:
            code, body = exc.code, exc.read()
            exc.close()
        assert code == status
        assert json.loads(body)["loop_age_s"] == 1.5
        with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/metrics", timeout=5) as r:
            assert b"leadstream_stage_records_in" in r.read()
    finally:
        server.close()


def test_bounded_call_returns_and_reraises() -> None:
    bounded = Bounded("t")
    seen: list[int] = []
    bounded(lambda: seen.append(1), 5)
    assert seen == [1]

    def fail() -> None:
        raise KafkaException("no")

    with pytest.raises(KafkaException):
        bounded(fail, 5)
    assert bounded.abandoned == 0


def test_bounded_call_that_never_returns_is_abandoned() -> None:
    """The librdkafka hang: the caller gets Wedged after the bound, the stuck thread stays."""
    bounded = Bounded("t")
    release = threading.Event()
    began = time.monotonic()
    with pytest.raises(Wedged):
        bounded(release.wait, 0.3)
    assert 0.3 <= time.monotonic() - began < 5
    assert bounded.abandoned == 1
    release.set()
    bounded(lambda: None, 5)  # the next call is served


def test_group_steady_reads_librdkafka_statistics() -> None:
    def stats(**cgrp: object) -> str:
        return json.dumps({"name": "c#consumer-1", "cgrp": cgrp})

    assert group_steady(stats(state="up", join_state="steady")) is True
    assert group_steady(stats(state="up", join_state="wait-join")) is False
    assert group_steady(stats(state="wait-coord", join_state="init")) is False
    assert group_steady(stats(state="query-coord", join_state="steady")) is False
    assert group_steady(json.dumps({"name": "p#producer-1"})) is None  # no group at all
    assert group_steady("not json") is None
