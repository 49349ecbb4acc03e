"""The job tracker as a process (``leadstream-jobs``) on the real broker and registry.

Job 1: created, sealed (500), and its stage outputs with headers (plus records without a job,
another job's records and an aborted transaction) → ``completed`` with exact counts.
Job 2: the worker is SIGKILLed while job 2's records stream in, restarted, the stream
finishes → exact counts (nothing counted twice or lost), and job 1's state, recovered from
the ``jobs.state`` changelog, keeps counting correctly.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from leadstream.events import Serde, register_schemas
from leadstream.jobs import JobState, JobStateView, JobStatus, read_job_state
from leadstream.settings import Settings
from leadstream.topics import TopicSettings, apply
from leadstream_jobs.delta import Delta
from tests.support.kafka import produce

pytestmark = [pytest.mark.integration, pytest.mark.timeout(280)]
ROOT = Path(__file__).resolve().parents[2]
Items = list[tuple[bytes | None, bytes | None, list[tuple[str, bytes]] | None]]

J1_COUNTS = {
    "contacts.raw": 500,
    "contacts.filtered": 400,
    "contacts.rejected": 120,
    "filter.rejected": 100,
    "verify.rejected": 20,
    "contacts.verified": 370,
    "dlq.verify": 10,
    "batches.ready": 2,
    "batches.synced": 1,
}
J1_REASONS = {"duplicate": 60, "invalid_email": 40, "disposable": 20}
J1_VERDICTS = {"deliverable": 300, "risky": 50, "unknown": 20}


@pytest.fixture
def ready(settings: Settings) -> Settings:
    assert apply(TopicSettings.of(settings)).ok
    assert all(r.ok for r in register_schemas(settings))
    return settings


@pytest.fixture
def serde(ready: Settings) -> Iterator[Serde]:
    with Serde(ready) as s:
        yield s


class Worker:
    """``leadstream-jobs`` as a subprocess with its own prefix, data dir and web port."""

    def __init__(self, settings: Settings, tmp_path: Path) -> None:
        self.port = _free_port()
        self.log = tmp_path / "jobs.log"
        self.env = {
            **os.environ,
            "LEADSTREAM_ENV": "test",
            "LEADSTREAM_TOPIC_PREFIX": settings.topic_prefix,
            "LEADSTREAM_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
            "LEADSTREAM_SCHEMA_REGISTRY_URL": settings.schema_registry_url,
            "LEADSTREAM_DATA_DIR": str(tmp_path / "jobs-data"),
            "LEADSTREAM_WEB_PORT": str(self.port),
            "LEADSTREAM_RUNTIME_INSTANCE_ID": "it-0",  # stable: a restart fences the dead one
            "LEADSTREAM_LOG_LEVEL": "WARNING",
        }
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60.0, script: Path | None = None) -> None:
        """Start ``leadstream-jobs`` (or ``script``, a program that runs it)."""
        argv = [str(script)] if script is not None else ["-m", "leadstream_jobs.app"]
        with self.log.open("ab") as fh:
            self.proc = subprocess.Popen(
                [sys.executable, *argv],
                cwd=ROOT,
                env=self.env,
                stdout=fh,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_alive()
            if self.get("/healthz")[0] == 200:
                return
            time.sleep(0.3)
        pytest.fail(f"the worker did not become healthy in {timeout}s:\n{self.tail()}")

    def get(self, path: str) -> tuple[int, str]:
        try:
            url = f"http://127.0.0.1:{self.port}{path}"
            with urllib.request.urlopen(url, timeout=2) as resp:
                return resp.status, resp.read().decode()
        except urllib.error.HTTPError as exc:
            status = exc.code
            exc.close()
            return status, ""
        except OSError:
            return 0, ""

    def check_alive(self) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            pytest.fail(f"the worker exited with {self.proc.returncode}:\n{self.tail()}")

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)
        self.proc = None

    def terminate(self, timeout: float = 60.0) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
            self.proc = None

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-4000:] if self.log.exists() else ""


@pytest.fixture
def worker(ready: Settings, tmp_path: Path) -> Iterator[Worker]:
    w = Worker(ready, tmp_path)
    yield w
    if w.proc is not None:
        w.proc.kill()
        w.proc.wait()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _job_event(serde: Serde, job_id: str, event_type: str, total: int | None = None) -> bytes:
    return serde.serialize(
        {
            "event_id": str(uuid.uuid4()),
            "job_id": job_id,
            "source": "csv",
            "event_time": int(time.time() * 1000),
            "event_type": event_type,
            "kind": "csv",
            "expected_total": total,
        },
        "jobs.events",
    )


def _send(settings: Settings, topic: str, items: Items) -> None:
    produce(settings, settings.topic(topic), items)


def _contacts(job: str, n: int, start: int = 0, **extra: str) -> Items:
    headers = [("job_id", job.encode()), *((k, v.encode()) for k, v in extra.items())]
    return [(f"p{i}@example.com".encode(), b"x", headers) for i in range(start, start + n)]


def _job1_outputs(settings: Settings, job: str) -> None:
    """Job 1's stage outputs, noise included; the second batch is not synced yet."""
    _send(settings, "contacts.raw", _contacts(job, 500))
    noise = [(b"anon@example.com", b"x", None)] * 30 + _contacts("other-job", 20)
    _send(settings, "contacts.raw", noise)
    _send(
        settings,
        "contacts.rejected",
        _contacts(job, 60, reason="duplicate", stage="filter")
        + _contacts(job, 40, 60, reason="invalid_email", stage="filter")
        + _contacts(job, 20, 100, reason="disposable", stage="verify"),
    )
    _send(settings, "contacts.filtered", _contacts(job, 400, 100))
    _send(
        settings,
        "contacts.verified",
        _contacts(job, 300, 120, verdict="deliverable")
        + _contacts(job, 50, 420, verdict="risky")
        + _contacts(job, 20, 470, verdict="unknown"),
    )
    _send(settings, "dlq.verify", _contacts(job, 10, 490, **{"dlq.stage": "verify"}))
    _send(
        settings,
        "batches.ready",
        [
            (b"batch-1", b"x", [("job_id", job.encode()), ("count", b"200")]),
            (b"batch-2", b"x", [("job_id", job.encode()), ("count", b"170")]),
        ],
    )
    _send(
        settings,
        "batches.synced",
        [(b"batch-1", b"x", [("job_id", job.encode()), ("count", b"200")])],
    )
    # A stage transaction that aborted: read_committed readers never see these.
    aborted = _contacts(job, 25, 1000, verdict="deliverable")
    _transaction(settings, "contacts.verified", aborted, commit=False)


def _transaction(
    settings: Settings, topic: str, items: Items, *, commit: bool, partition: int | None = None
) -> None:
    """``items`` on ``topic`` in one Kafka transaction, committed or aborted."""
    producer = Producer(
        {"bootstrap.servers": settings.kafka_bootstrap, "transactional.id": f"it-{uuid.uuid4()}"}
    )
    producer.init_transactions(30)
    producer.begin_transaction()
    where = {} if partition is None else {"partition": partition}
    for key, value, headers in items:
        producer.produce(settings.topic(topic), value, key, headers=headers, **where)
    producer.flush(30)
    if commit:
        producer.commit_transaction(30)
    else:
        producer.abort_transaction(30)


def _is_job1(state: JobState, synced: int) -> bool:
    return (
        state.status == JobStatus.COMPLETED
        and dict(state.counts) == {**J1_COUNTS, "batches.synced": 1 if synced == 200 else 2}
        and dict(state.rejected_by_reason) == J1_REASONS
        and dict(state.verdicts) == J1_VERDICTS
        and (state.batched, state.synced) == (370, synced)
    )


def test_jobs_worker_counts_exactly_across_a_crash(
    ready: Settings, serde: Serde, worker: Worker
) -> None:
    settings = ready
    j1, j2 = f"job-{uuid.uuid4().hex[:8]}", f"job-{uuid.uuid4().hex[:8]}"
    worker.start()
    status, metrics = worker.get("/metrics")
    assert status == 200
    assert "leadstream_stage_records_in" in metrics

    # ---------------------------------------------------------------- job 1: to completed
    with JobStateView(settings, serde=serde) as view:
        _send(settings, "jobs.events", [(j1.encode(), _job_event(serde, j1, "created"), None)])
        created = view.wait_for(j1, timeout=30)
        assert created.status == JobStatus.RECEIVING
        _send(settings, "jobs.events", [(j1.encode(), _job_event(serde, j1, "sealed", 500), None)])
        _job1_outputs(settings, j1)
        done = view.wait_for(j1, lambda s: _is_job1(s, 200), timeout=45)
        assert done.expected_total == 500
        assert done.processed == 500
        assert done.kind == "csv"
        assert done.rate_per_s > 0
        assert done.eta_s == 0.0
        assert done.completed_at is not None
        assert done.completed_at >= done.started_at
        time.sleep(3)  # anything counted twice would show up now
        again = view.get(j1)
        assert again is not None
        assert _is_job1(again, 200), again
        other = view.wait_for("other-job", lambda s: s.received == 20)  # never sealed
        assert other.status == JobStatus.RECEIVING
        assert other.expected_total is None
        assert other.eta_s is None
        assert set(view.all()) == {j1, "other-job"}
    status, metrics = worker.get("/metrics")
    applied = [
        ln for ln in metrics.splitlines() if ln.startswith("leadstream_jobs_deltas_applied_total ")
    ]
    assert applied, metrics[-2000:]
    assert float(applied[0].split()[-1]) > 0
    assert 'leadstream_jobs_by_status{status="completed"} 1.0' in metrics
    assert 'leadstream_jobs_by_status{status="receiving"} 1.0' in metrics

    # ------------------------------------------------- job 2: SIGKILL mid-stream, restart
    n2 = 6000
    _send(settings, "jobs.events", [(j2.encode(), _job_event(serde, j2, "created"), None)])
    _send(settings, "jobs.events", [(j2.encode(), _job_event(serde, j2, "sealed", n2), None)])
    sent = threading.Event()
    failures: list[BaseException] = []

    def stream() -> None:
        try:
            for start in range(0, n2, 300):
                _send(settings, "contacts.raw", _contacts(j2, 300, start))
                _send(settings, "contacts.verified", _contacts(j2, 300, start, verdict="risky"))
                time.sleep(0.15)
        except BaseException as exc:
            failures.append(exc)
        finally:
            sent.set()

    producer = threading.Thread(target=stream, daemon=True)
    with JobStateView(settings, serde=serde) as view:
        producer.start()
        partial = view.wait_for(j2, lambda s: s.processed >= 600, timeout=45)
        worker.kill()
        assert partial.processed < n2, "job 2 finished before the kill: stream more"
        assert not sent.is_set(), "the stream ended before the kill: make it longer"
    assert sent.wait(60), "the stream did not finish"
    producer.join(10)
    assert not failures, failures

    worker.start()
    _send(
        settings,
        "batches.synced",
        [(b"batch-2", b"x", [("job_id", j1.encode()), ("count", b"170")])],
    )
    with JobStateView(settings, serde=serde) as view:
        final = view.wait_for(
            j2, lambda s: s.status == JobStatus.COMPLETED and s.received >= n2, timeout=60
        )
        # job 1 went on from its recovered state: a lost state would have only the new batch
        view.wait_for(j1, lambda s: _is_job1(s, 370), timeout=30)
        time.sleep(3)
        final = view.get(j2) or final
    assert dict(final.counts) == {"contacts.raw": n2, "contacts.verified": n2}
    assert dict(final.verdicts) == {"risky": n2}
    assert final.processed == final.expected_total == n2
    assert final.status == JobStatus.COMPLETED

    # the one-shot read sees the same, and SIGTERM stops the worker cleanly
    one = read_job_state(settings, j1, timeout_s=20, serde=serde)
    assert one is not None
    assert _is_job1(one, 370), one
    assert read_job_state(settings, "no-such-job", timeout_s=20, serde=serde) is None
    assert worker.terminate() == 0, worker.tail()


def _delta_txn(settings: Settings, job: str, received: int, *, commit: bool) -> None:
    """One transaction of one delta on ``jobs.deltas`` partition 0, as the counter writes."""
    value = json.dumps(Delta(counts={"contacts.raw": received}).to_wire()).encode()
    _transaction(settings, "jobs.deltas", [(job.encode(), value, None)], commit=commit, partition=0)


def _table_committed(settings: Settings) -> int | None:
    """The table app's committed offset on ``jobs.deltas`` partition 0."""
    group = settings.topic("leadstream-jobs-table")
    consumer = Consumer({"bootstrap.servers": settings.kafka_bootstrap, "group.id": group})
    try:
        (tp,) = consumer.committed([TopicPartition(settings.topic("jobs.deltas"), 0)], timeout=10)
        return tp.offset if tp.offset >= 0 else None
    finally:
        consumer.close()


def _head_gap_after_offset_0(
    settings: Settings, view: JobStateView, worker: Worker, job: str
) -> None:
    """Partition 0 of ``jobs.deltas``: a delta at offset 0 (+1 for the job), applied and
    committed (1); an aborted transaction at 2–3; a delta at 4 (+2)."""
    _delta_txn(settings, job, 1, commit=True)  # offset 0, commit marker 1
    view.wait_for(job, lambda s: s.received == 1, timeout=30)
    deadline = time.monotonic() + 30
    while _table_committed(settings) != 1 and time.monotonic() < deadline:
        time.sleep(0.3)
    assert _table_committed(settings) == 1, worker.tail()
    _delta_txn(settings, job, 100, commit=False)  # offset 2, abort marker 3
    _delta_txn(settings, job, 2, commit=True)  # offset 4, commit marker 5


def test_an_aborted_transaction_right_after_a_partitions_first_delta_does_not_stop_it(
    ready: Settings, serde: Serde, worker: Worker
) -> None:
    """Offset 0 applied and committed (1), then an aborted transaction (2, marker 3): the
    next delta (4) must be applied and committed. faust 0.15 records no gap after offset 0
    and never committed that partition again (seen in the fault suite after a broker
    restart aborted the counter's transaction)."""
    settings = ready
    job = f"job-{uuid.uuid4().hex[:8]}"
    worker.start()
    with JobStateView(settings, serde=serde) as view:
        _head_gap_after_offset_0(settings, view, worker, job)
        state = view.wait_for(job, lambda s: s.received >= 3, timeout=40)
        assert state.received == 3, state
    deadline = time.monotonic() + 30
    while _table_committed(settings) != 5 and time.monotonic() < deadline:
        time.sleep(0.3)
    assert _table_committed(settings) == 5, worker.tail()  # past the delta at offset 4
    assert worker.terminate() == 0, worker.tail()


UNFIXED = """
# leadstream-jobs with faust's own head-gap rule (GapConsumer's fix undone) and a quick watch
from leadstream_jobs import transport, watch
from leadstream_jobs.app import main

transport.GapConsumer._fill_head_gap = lambda self, tp: None
watch.WATCH_EVERY_S = 0.5
main()
"""


def test_the_watch_restarts_a_table_partition_that_stopped_committing(
    ready: Settings, serde: Serde, worker: Worker, tmp_path: Path
) -> None:
    """The stall the head-gap fix ended, brought back by undoing the fix: the partition is
    read on and never committed. The watch sees it and starts the service again in place;
    after the restart faust's own rule gets past the gap, and the delta counts once."""
    settings = ready
    job = f"job-{uuid.uuid4().hex[:8]}"
    script = tmp_path / "jobs_unfixed.py"
    script.write_text(UNFIXED)
    worker.env["LEADSTREAM_STALL_LIMIT_S"] = "6"
    worker.start(script=script)
    assert worker.proc is not None
    pid = worker.proc.pid
    with JobStateView(settings, serde=serde) as view:
        _head_gap_after_offset_0(settings, view, worker, job)
        _delta_txn(settings, job, 4, commit=True)  # offset 6: read past the stuck commit
        state = view.wait_for(job, lambda s: s.received >= 7, timeout=90)
        time.sleep(3)  # a delta counted twice would show now
        state = view.get(job) or state
    assert state.received == 7, state
    log = worker.log.read_text(errors="replace")
    assert "committed nothing of input partition 0" in log, log[-4000:]
    assert "starting again" in log, log[-4000:]
    assert worker.proc is not None
    assert worker.proc.pid == pid  # the same process, started again in place
    worker.check_alive()
