"""The runtime with the real Avro serde: Confluent-framed records in and out, and bytes that
are not Avro (or name an unknown schema id) dead-lettered while the rest flows."""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence

import pytest

from leadstream.events import Serde, register_schemas
from leadstream.runtime import Output, Record, RuntimeConfig, Stage, StageRunner
from leadstream.runtime import deadletter as dl
from leadstream.settings import Settings
from leadstream.topics import TopicSettings, apply
from tests.support.kafka import produce, read_all

pytestmark = pytest.mark.integration


def reject_all(records: Sequence[Record]) -> list[list[Output]]:
    return [
        [
            Output(
                "contacts.rejected",
                {
                    "event_id": f"rej-{r.value['event_id']}",
                    "job_id": r.value["job_id"],
                    "source": "filter",
                    "event_time": r.value["event_time"],
                    "raw_event_id": r.value["event_id"],
                    "stage": "filter",
                    "reason": "test_reject",
                    "email": r.value["email"],
                },
                key=r.key,
                headers={"reason": "test_reject"},
            )
        ]
        for r in records
    ]


def test_avro_stage_dead_letters_foreign_bytes(settings: Settings) -> None:
    assert apply(TopicSettings.of(settings)).ok
    assert all(r.ok for r in register_schemas(settings))
    serde = Serde(settings)
    raw = settings.topic("contacts.raw")
    now = int(time.time() * 1000)
    good = [
        {
            "event_id": str(uuid.uuid4()),
            "job_id": "job-7",
            "source": "api",
            "event_time": now,
            "email": f"person{i}@example.com",
        }
        for i in range(100)
    ]
    items: list[tuple[bytes | None, bytes | None, list[tuple[str, bytes]] | None]] = [
        (c["email"].encode(), serde.serialize(c, raw), [("job_id", b"job-7")]) for c in good
    ]
    items.insert(40, (b"x", b'{"email": "json@example.com"}', None))  # not Avro at all
    items.insert(70, (b"y", b"\x00\x00\x0f\x42\x3f" + b"\x02abc", None))  # unknown schema id
    produce(settings, raw, items)

    runner = StageRunner(
        Stage("filter", ["contacts.raw"], reject_all),
        settings,
        serde,
        RuntimeConfig(instance_id="avro-0", batch_size=50, poll_timeout_s=0.2),
    )
    result = runner.run(idle_timeout_s=4)
    assert (result.records_in, result.records_out, result.dead_lettered) == (102, 100, 2)

    out = read_all(settings, settings.topic("contacts.rejected"), expect=100)
    decoded = [serde.deserialize(m.value(), m.topic()) for m in out]
    assert sorted(d["raw_event_id"] for d in decoded) == sorted(c["event_id"] for c in good)
    assert all(dict(m.headers())["job_id"] == b"job-7" for m in out)
    assert all(dict(m.headers())["reason"] == b"test_reject" for m in out)

    dead = read_all(settings, settings.topic("dlq.filter"), expect=2)
    headers = [dict(m.headers()) for m in dead]
    assert sorted(m.value() for m in dead) == sorted([items[40][1], items[70][1]])
    assert all(h[dl.SOURCE_TOPIC] == raw.encode() for h in headers)
    assert {h[dl.ERROR_CLASS] for h in headers} == {b"UndecodableRecord"}
    assert all(h[dl.ERROR_MESSAGE].startswith(b"UndecodableEventError") for h in headers)
    serde.close()
