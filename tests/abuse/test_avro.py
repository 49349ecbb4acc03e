"""Malformed Avro from an upstream producer on a stage's input topic: bytes that are not
Avro, a wrong magic byte, a schema id the registry does not know, a valid id of another
event's schema, a truncated frame, a tombstone, a right frame with a garbage payload. The real
filter stage dead-letters each with its headers and processes every good record around
them."""

from __future__ import annotations

import struct
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from leadstream.db import make_engine
from leadstream.events import Serde
from leadstream.infra import Stack
from leadstream.runtime import RuntimeConfig, StageRunner
from leadstream.runtime import deadletter as dl
from leadstream_filter.app import build_stage
from leadstream_filter.config import FilterSettings
from leadstream_ingest.config import IngestSettings
from tests.integration.test_ingest_fixtures import ingest_world
from tests.support.kafka import produce, read_all

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def env(stack: Stack) -> Iterator[tuple[IngestSettings, Serde]]:
    """Its own topics and database: the dead-letter counts below are exact."""
    with ingest_world(stack) as settings, Serde(settings) as serde:
        yield settings, serde


def contact(tag: str, i: int) -> dict[str, Any]:
    return {
        "event_id": str(uuid.uuid4()),
        "job_id": "job-abuse",
        "source": "api",
        "event_time": int(time.time() * 1000),
        "email": f"{tag}.{i}.{uuid.uuid4().hex[:6]}@example.com",
        "first_name": "Ann",
    }


def test_malformed_records_are_dead_lettered_and_the_stage_goes_on(
    env: tuple[IngestSettings, Serde],
) -> None:
    settings, serde = env
    raw = settings.topic("contacts.raw")
    good_id = serde.codec("contacts.raw").prepare()
    other_id = serde.codec("jobs.events").prepare()
    assert good_id != other_id
    job_event = serde.serialize(
        {
            "event_id": str(uuid.uuid4()),
            "job_id": "job-abuse",
            "source": "api",
            "event_time": int(time.time() * 1000),
            "event_type": "created",
        },
        "jobs.events",
    )
    valid = serde.serialize(contact("x", 0), raw)
    bad: dict[str, bytes | None] = {
        "not-avro": b'{"email": "json@example.com"}',
        "magic-byte": b"\x01" + valid[1:],
        "unknown-id": struct.pack(">bI", 0, 987_654_321) + valid[5:],
        "other-schema": job_event,
        "other-id-same-bytes": struct.pack(">bI", 0, other_id) + valid[5:],
        "truncated": valid[:3],
        "garbage-payload": valid[:5] + b"\xff" * 40,
        "trailing-bytes": valid + b"\x00\x00",
        "tombstone": None,
    }
    before = [contact("before", i) for i in range(20)]
    after = [contact("after", i) for i in range(20)]

    def framed(items: list[dict[str, Any]]) -> list[Any]:
        return [
            (c["email"].encode(), serde.serialize(c, raw), [("job_id", b"job-abuse")])
            for c in items
        ]

    produce(settings, raw, framed(before))
    produce(
        settings,
        raw,
        [(name.encode(), value, [("probe", name.encode())]) for name, value in bad.items()],
    )
    produce(settings, raw, framed(after))

    fs = FilterSettings.model_validate(
        {k: v for k, v in dict(settings).items() if k in FilterSettings.model_fields}
    )
    engine = make_engine(fs, pool_size=2)
    try:
        runner = StageRunner(
            build_stage(fs, engine),
            fs,
            serde,
            RuntimeConfig(instance_id="abuse-avro", batch_size=7, poll_timeout_s=0.2),
        )
        result = runner.run(idle_timeout_s=4)
    finally:
        engine.dispose()
    assert result.records_in == len(before) + len(bad) + len(after)
    assert result.dead_lettered == len(bad)

    # Every good record was decided (filtered or rejected), before and after the bad ones.
    out = read_all(settings, settings.topic("contacts.filtered"), expect=40) + read_all(
        settings, settings.topic("contacts.rejected"), expect=0, settle=0.5
    )
    decided = {serde.deserialize(m.value(), m.topic())["email"] for m in out}
    assert {c["email"] for c in before + after} <= decided

    dead = read_all(settings, settings.topic("dlq.filter"), expect=len(bad))
    assert len(dead) == len(bad)
    by_probe = {dict(m.headers())["probe"].decode(): m for m in dead}
    assert set(by_probe) == set(bad)
    for name, message in by_probe.items():
        headers = dict(message.headers())
        assert message.value() == bad[name], name  # the original bytes, untouched
        assert message.key() == name.encode()
        assert headers[dl.SOURCE_TOPIC] == raw.encode()
        assert headers[dl.STAGE] == b"filter"
        assert headers[dl.ERROR_CLASS], name
        assert headers[dl.ERROR_MESSAGE], name
        assert int(headers[dl.SOURCE_OFFSET]) >= 0
        assert dl.TIME in headers
    classes = {name: dict(m.headers())[dl.ERROR_CLASS].decode() for name, m in by_probe.items()}
    assert set(classes.values()) <= {"UndecodableRecord"}, classes
