"""Dead letters redriven after a fix: the original bytes reach the stage again, the redrive
count is carried, and a second redrive re-publishes nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Sequence

import pytest

from leadstream.ops import pending, redrive, summarize
from leadstream.runtime import Output, Record, RuntimeConfig, Stage, StageRunner, dlq_topic
from leadstream.runtime import deadletter as dl
from leadstream.settings import Settings
from tests.support.kafka import JsonCodec, create_topics, produce, read_all

pytestmark = pytest.mark.integration


def test_redrive_after_a_fix_is_exactly_once(settings: Settings) -> None:
    src, dst, dlq = settings.topic("in"), settings.topic("out"), settings.topic(dlq_topic("fixme"))
    create_topics(settings, [src, dst, dlq])
    fixed = False

    def handler(records: Sequence[Record]) -> list[list[Output]]:
        if not fixed and any(r.value.get("odd") for r in records):
            raise ValueError("odd records not supported yet")
        return [[Output("out", r.value, key=r.key)] for r in records]

    produce(
        settings,
        src,
        (
            (b"k", json.dumps({"n": i, "odd": i % 10 == 3}).encode(), [("job_id", b"j9")])
            for i in range(40)
        ),
    )
    config = RuntimeConfig(instance_id="dlq-0", batch_size=100, poll_timeout_s=0.2)
    stage = Stage("fixme", ["in"], handler)
    first = StageRunner(stage, settings, JsonCodec(), config).run(idle_timeout_s=4)
    assert (first.records_out, first.dead_lettered) == (36, 4)

    summary = summarize(settings, "fixme")
    assert summary.pending == 4
    assert summary.by_error == {"ValueError": 4}
    assert len(redrive(settings, "fixme", dry_run=True)) == 4
    assert len(pending(settings, "fixme")) == 4  # a dry run moves nothing

    fixed = True
    moved = redrive(settings, "fixme")
    assert sorted(json.loads(r.value or b"")["n"] for r in moved) == [3, 13, 23, 33]
    assert pending(settings, "fixme") == []
    assert redrive(settings, "fixme") == []  # nothing twice

    second = StageRunner(stage, settings, JsonCodec(), config).run(idle_timeout_s=4)
    assert (second.records_in, second.records_out, second.dead_lettered) == (4, 4, 0)
    out = read_all(settings, dst, expect=40)
    assert sorted(json.loads(m.value())["n"] for m in out) == list(range(40))
    redriven = [m for m in out if json.loads(m.value())["odd"]]
    for m in redriven:
        headers = dict(m.headers())
        assert headers["job_id"] == b"j9"  # original headers survive the round trip
        assert not any(k.startswith("dlq.source") for k in headers)
    raw = read_all(settings, src, expect=44)
    counts = [dict(m.headers()).get(dl.REDRIVE_COUNT) for m in raw]
    assert counts.count(b"1") == 4


def test_cli_lists_and_redrives(settings: Settings) -> None:
    src, dlq = settings.topic("contacts.raw"), settings.topic(dlq_topic("filter"))
    create_topics(settings, [src, dlq])
    produce(
        settings,
        dlq,
        [
            (
                b"k",
                b"bytes",
                [(dl.SOURCE_TOPIC, src.encode()), (dl.ERROR_CLASS, b"UndecodableRecord")],
            )
        ],
    )
    env = {
        **os.environ,
        "LEADSTREAM_TOPIC_PREFIX": settings.topic_prefix,
        "LEADSTREAM_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
        "COLUMNS": "200",
    }
    cli = [sys.executable, "-m", "leadstream.cli", "dlq"]
    shown = subprocess.run([*cli, "show", "filter"], env=env, capture_output=True, text=True)
    assert shown.returncode == 0, shown.stderr
    assert "UndecodableRecord" in shown.stdout
    moved = subprocess.run([*cli, "redrive", "filter"], env=env, capture_output=True, text=True)
    assert "filter: redrove 1 dead letter(s)" in moved.stdout, moved.stderr
    assert [m.value() for m in read_all(settings, src, expect=1)] == [b"bytes"]
