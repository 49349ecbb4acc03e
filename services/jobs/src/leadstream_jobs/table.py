"""The faust app: a Table of JobState by job id whose changelog is ``jobs.state``.

One agent reads ``jobs.deltas`` (keyed by job id, co-partitioned with ``jobs.state``) and
applies each delta to its job's state. The app runs with ``processing_guarantee=
"exactly_once"``: a partition's state writes and its ``jobs.deltas`` offsets commit in one
Kafka transaction, and every consumer of the app reads ``read_committed``.

The agent writes the changelog itself (``await changelog.send``) instead of ``table[k] = v``:
faust buffers a table write and sends it from a background task, so it could land in the
*next* transaction after the offset of its delta was committed. Awaiting the send puts it
into the transaction before the delta is acknowledged. The state also remembers the last
delta applied (its ``event_id``), so a delta delivered twice is skipped, not counted twice.
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter as Tally
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import faust
from faust.sensors.prometheus import setup_prometheus_sensors
from prometheus_client import REGISTRY, Counter
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from leadstream.jobs import JobState
from leadstream.jobs.state import JobStatus
from leadstream_jobs.codec import JobStateCodec
from leadstream_jobs.config import JobsSettings
from leadstream_jobs.counter import DELTAS_TOPIC
from leadstream_jobs.delta import Delta
from leadstream_jobs.logic import already_applied, apply_delta, delta_event_id
from leadstream_jobs.topology import STATE_TOPIC, TopologyError
from leadstream_jobs.transport import Transport
from leadstream_jobs.watch import Positions

log = logging.getLogger(__name__)
POSITIONS_EVERY_S = 2.0
HealthProbe = Callable[[], tuple[bool, dict[str, object]]]

DELTAS_APPLIED = Counter("leadstream_jobs_deltas_applied", "Deltas applied to the job table")
DELTAS_SKIPPED = Counter(
    "leadstream_jobs_deltas_skipped", "Deltas not applied (why: duplicate, unreadable)", ["why"]
)


class _JobsByStatus(Collector):
    """``leadstream_jobs_by_status``: the jobs in this instance's table, counted at scrape time.

    Counting on scrape (not on each delta) also covers states recovered from the changelog.
    The scrape runs on faust's event loop, like the agent that changes the table.
    """

    def __init__(self) -> None:
        self.states: Mapping[str, JobState] = {}

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "leadstream_jobs_by_status",
            "Jobs in this instance's partitions of the job table, by status",
            labels=["status"],
        )
        counts = Tally(str(state.status) for state in list(self.states.values()))
        for status in JobStatus:
            family.add_metric([status.value], counts.get(status.value, 0))
        yield family


JOBS_BY_STATUS = _JobsByStatus()
REGISTRY.register(JOBS_BY_STATUS)


def build_app(
    settings: JobsSettings,
    *,
    partitions: int,
    replication: int,
    codec: JobStateCodec,
    health: HealthProbe,
    on_applied: Callable[[], None] | None = None,
    on_positions: Callable[[Positions], None] | None = None,
) -> faust.App:
    """The table app, not started; ``on_applied`` is called for each delta it takes, and
    ``on_positions`` every few seconds with the read and committed offsets of its input."""
    app_id = settings.topic(f"{settings.consumer_group}-table")
    data_dir = Path(settings.data_dir).resolve()
    data_dir.mkdir(parents=True, exist_ok=True)  # faust makes only the last level
    app = faust.App(
        app_id,
        broker=[f"kafka://{host.strip()}" for host in settings.kafka_bootstrap.split(",")],
        store="memory://",  # state is rebuilt from jobs.state on start: see docs/architecture.md
        processing_guarantee="exactly_once",
        autodiscover=False,
        datadir=str(data_dir / app_id),
        topic_partitions=partitions,
        topic_replication_factor=replication,
        consumer_auto_offset_reset="earliest",
        broker_commit_interval=settings.commit_interval_s,
        broker_session_timeout=settings.session_timeout_s,
        broker_heartbeat_interval=settings.session_timeout_s / 3,
        web_enabled=True,
        web_bind=settings.web_host,
        web_host=settings.web_host,
        web_port=settings.web_port,
    )
    app.transport = Transport(app.conf.broker_consumer, app)  # before anything uses it
    deltas = app.topic(
        settings.topic(DELTAS_TOPIC),
        key_serializer="raw",
        value_serializer="raw",
        partitions=partitions,
        internal=False,
    )
    changelog = app.topic(
        settings.topic(STATE_TOPIC),
        key_type=str,
        key_serializer="raw",
        value_serializer=codec,
        partitions=partitions,
        compacting=True,
        internal=False,
    )
    table = app.Table(
        "jobs-state",
        partitions=partitions,
        changelog_topic=changelog,
        key_type=str,
        help="JobState by job id",
    )
    # faust derives a table's serializers from its types (json for str); set them before the
    # store is made, so recovery reads the changelog as UTF-8 keys and JobState Avro values.
    table_: Any = table  # (the attributes are not on faust's TableT protocol)
    table_.key_serializer = "raw"
    table_.value_serializer = codec
    checked: list[bool] = []

    async def apply_deltas(stream: Any) -> None:
        async for event in stream.events():
            if on_applied is not None:
                on_applied()
            if not checked:
                _check_copartitioned(app, deltas.get_topic_name(), changelog.get_topic_name())
                checked.append(True)
            message = event.message
            job_id = _text(event.key)
            delta = _delta(event.value)
            if job_id is None or delta is None:
                DELTAS_SKIPPED.labels("unreadable").inc()
                where = f"{message.topic}[{message.partition}]@{message.offset}"
                log.warning("skipping an unreadable delta at %s", where)
                continue
            state: JobState | None = table.data.get(job_id)
            if already_applied(state, message.partition, message.offset):
                DELTAS_SKIPPED.labels("duplicate").inc()
                continue
            new = apply_delta(
                state,
                job_id,
                delta,
                event_id=delta_event_id(message.partition, message.offset),
                now_ms=int(time.time() * 1000),
            )
            table.data[job_id] = new
            await changelog.send(key=job_id, value=new, partition=message.partition)
            DELTAS_APPLIED.inc()

    app.agent(deltas, name="jobs-table")(apply_deltas)
    if on_positions is not None:
        report = on_positions

        async def report_positions() -> None:
            consumer: Any = app.consumer  # faust's bookkeeping (GapConsumer's, transport.py)
            topic = deltas.get_topic_name()
            report(
                {
                    tp.partition: (
                        consumer._read_offset.get(tp),
                        consumer._committed_offset.get(tp),
                    )
                    for tp in consumer.assignment()
                    if tp.topic == topic
                }
            )

        app.timer(POSITIONS_EVERY_S, name="jobs-table-positions")(report_positions)
    JOBS_BY_STATUS.states = table.data

    async def healthz(view: Any, request: Any) -> Any:
        ok, details = health()
        body = {"status": "ok" if ok else "unhealthy", "jobs": len(table.data), **details}
        return view.json(body, status=200 if ok else 503)

    app.page("/healthz")(healthz)
    setup_prometheus_sensors(app, name_prefix="leadstream_jobs_table")
    return app


def _check_copartitioned(app: faust.App, deltas: str, state: str) -> None:
    """The delta offsets and the state writes of a partition must share a transaction."""
    groups = (app.assignor.group_for_topic(deltas), app.assignor.group_for_topic(state))
    if groups[0] != groups[1]:
        raise TopologyError(f"{deltas} and {state} are not co-partitioned: groups {groups}")


def _text(key: Any) -> str | None:
    if isinstance(key, bytes):
        try:
            key = key.decode("utf-8")
        except UnicodeDecodeError:
            return None
    return key if isinstance(key, str) and key else None


def _delta(value: Any) -> Delta | None:
    try:
        data = json.loads(value)
    except (TypeError, ValueError):
        return None
    return Delta.from_wire(data) if isinstance(data, dict) else None
