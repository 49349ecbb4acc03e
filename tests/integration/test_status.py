"""`leadstream status` reads lag, members and rates of the real consumer groups."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Sequence

import pytest

from leadstream.events import Serde, register_schemas
from leadstream.ops.status import StatusReader, with_rates
from leadstream.runtime import Output, Record, RuntimeConfig, Stage, StageRunner
from leadstream.settings import Settings
from leadstream.topics import TopicSettings, apply
from tests.support.kafka import produce

pytestmark = pytest.mark.integration


def _passthrough(records: Sequence[Record]) -> list[list[Output]]:
    time.sleep(0.02)
    return [[] for _ in records]


def test_status_shows_lag_members_and_rate(settings: Settings) -> None:
    assert apply(TopicSettings.of(settings)).ok
    assert all(r.ok for r in register_schemas(settings))
    serde = Serde(settings)
    raw = settings.topic("contacts.raw")
    now = int(time.time() * 1000)
    n = 3000
    produce(
        settings,
        raw,
        (
            (
                f"p{i}@x.io".encode(),
                serde.serialize(
                    {
                        "event_id": str(uuid.uuid4()),
                        "source": "api",
                        "event_time": now,
                        "email": f"p{i}@x.io",
                    },
                    raw,
                ),
                None,
            )
            for i in range(n)
        ),
    )
    reader = StatusReader(settings, ["filter"])
    idle = reader.snapshot().stages[0]
    assert (idle.lag, idle.members) == (n, 0)

    runner = StageRunner(
        Stage("filter", ["contacts.raw"], _passthrough),
        settings,
        serde,
        RuntimeConfig(instance_id="st-0", batch_size=20, poll_timeout_s=0.2),
    )
    thread = threading.Thread(target=runner.run, kwargs={"idle_timeout_s": 20})
    thread.start()
    try:
        deadline = time.monotonic() + 60
        while runner._result.records_in < 200 and time.monotonic() < deadline:
            time.sleep(0.1)
        before = reader.snapshot()
        time.sleep(1.5)
        busy = with_rates(before, reader.snapshot()).stages[0]
        assert busy.members == 1
        assert busy.state == "stable"
        assert busy.rate_in is not None
        assert busy.rate_in > 0
        assert 0 < busy.lag < n
    finally:
        runner.stop()
        thread.join(30)
        serde.close()
    done = reader.snapshot().stages[0]
    assert done.lag == n - runner._result.records_in

    env = {
        **os.environ,
        "LEADSTREAM_TOPIC_PREFIX": settings.topic_prefix,
        "LEADSTREAM_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
        "COLUMNS": "200",
    }
    out = subprocess.run(
        [sys.executable, "-m", "leadstream.cli", "status", "--interval", "0.5"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert "filter" in out.stdout
    assert f"{done.lag:,}" in out.stdout
