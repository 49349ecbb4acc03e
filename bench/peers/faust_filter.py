"""The filter stage as a faust-streaming application: a peer of ``bench/filter_verify.py``.

faust-streaming is already in the product's environment (the jobs service's table), so this
peer runs there and is configured the way the jobs service configures it: aiokafka transport
(with the jobs service's commit-gap fix), ``processing_guarantee="exactly_once"`` (outputs and
input offsets in one Kafka transaction per commit interval), raw values. The decisions are the
filter's own handler (:class:`~leadstream_filter.logic.FilterLogic`, one claim statement per
batch) and the Avro codec is ours, so what differs is only the runtime: a faust agent taking
batches of up to ``batch`` events (``stream.take_events(batch, within=1.0)``) and sending each
output with ``topic.send``.

    python bench/peers/faust_filter.py CONFIG_JSON   → prints {"records", "seconds", "rate"}

CONFIG_JSON: bootstrap, registry, database_url, topic_prefix, input, filtered, rejected,
group, records, batch, result (a file the result is also written to), timeout.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

import faust

from leadstream.db import make_engine
from leadstream.events import Serde
from leadstream.runtime import Record
from leadstream.topics.spec import Kind, TopicSpec
from leadstream_filter.app import build_stage
from leadstream_filter.config import FilterSettings
from leadstream_jobs.transport import Transport


def main() -> None:
    cfg = json.loads(sys.argv[1])
    logging.basicConfig(level=logging.WARNING)
    settings = FilterSettings(
        kafka_bootstrap=cfg["bootstrap"],
        schema_registry_url=cfg["registry"],
        database_url=cfg["database_url"],
        topic_prefix=cfg["topic_prefix"],
    )
    engine = make_engine(settings, pool_size=2)
    logic = build_stage(settings, engine).handler
    peer_catalog = tuple(
        TopicSpec(name, Kind.STREAM, schema, "email", ("b",), ("b",), "b")
        for name, schema in ((cfg["filtered"], "ContactFiltered"),
                             (cfg["rejected"], "ContactRejected"))
    )  # fmt: skip
    serde = Serde(settings)
    peer_serde = Serde(settings, catalog=peer_catalog)
    source_name = settings.topic(cfg["input"])
    out_names = {
        "contacts.filtered": settings.topic(cfg["filtered"]),
        "contacts.rejected": settings.topic(cfg["rejected"]),
    }
    app = faust.App(
        cfg["group"],
        broker=f"kafka://{cfg['bootstrap']}",
        store="memory://",
        processing_guarantee="exactly_once",
        autodiscover=False,
        topic_disable_leader=True,
        consumer_auto_offset_reset="earliest",
        broker_commit_interval=1.0,
        web_enabled=False,
        datadir=str(Path(cfg["datadir"]) / cfg["group"]),
    )
    app.transport = Transport(app.conf.broker_consumer, app)
    source = app.topic(source_name, key_serializer="raw", value_serializer="raw", internal=False)
    outputs = {
        logical: app.topic(name, key_serializer="raw", value_serializer="raw", internal=False)
        for logical, name in out_names.items()
    }
    clock: dict[str, float] = {}
    seen = [0]

    async def filter_agent(stream: Any) -> None:
        async for events in stream.take_events(cfg["batch"], within=1.0):
            if not seen[0]:
                clock["first"] = time.monotonic()
            records = [
                Record(
                    e.message.topic, e.message.partition, e.message.offset, e.key,
                    serde.deserialize(e.value, source_name),
                    dict(e.headers or {}), e.message.timestamp,
                )
                for e in events
            ]  # fmt: skip
            for outs in logic(records):
                for out in outs:
                    assert out.value is not None
                    key = out.key.encode() if isinstance(out.key, str) else out.key
                    headers = {k: (v.encode() if isinstance(v, str) else v)
                               for k, v in out.headers.items()}  # fmt: skip
                    await outputs[out.topic].send(
                        key=key,
                        value=peer_serde.serialize(out.value, out_names[out.topic]),
                        headers=headers,
                    )
            seen[0] += len(events)
            if seen[0] >= cfg["records"] and "last" not in clock:
                clock["last"] = time.monotonic()
                result = {"records": seen[0], "seconds": clock["last"] - clock["first"],
                          "rate": seen[0] / (clock["last"] - clock["first"])}  # fmt: skip
                Path(cfg["result"]).write_text(json.dumps(result))
                print(json.dumps(result), flush=True)
                asyncio.get_event_loop().call_later(2.5, _stop, worker)  # past one commit

    app.agent(source, name="filter")(filter_agent)
    worker = faust.Worker(app, loglevel="WARNING", quiet=True)
    try:
        worker.execute_from_commandline()
    except SystemExit:
        pass
    finally:
        engine.dispose()
        serde.close()
        peer_serde.close()


_stopping: list[asyncio.Future[Any]] = []


def _stop(worker: Any) -> None:
    _stopping.append(asyncio.ensure_future(worker.stop()))


if __name__ == "__main__":
    main()
