"""Pure parts of the runtime: backoff, dead-letter headers, the health endpoint."""

from __future__ import annotations

import json
import random
import urllib.error
import urllib.request

import pytest

from leadstream.runtime import deadletter as dl
from leadstream.runtime.backoff import backoff_delay
from leadstream.runtime.health import HealthServer


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
