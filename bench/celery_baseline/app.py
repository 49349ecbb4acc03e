"""The pipeline as a Celery + Redis application: the architecture LeadStream replaces.

A list is split into task batches of rows; each task runs the filter and then the verify
decisions over its rows in the worker; a chord callback gathers every task's result from the
Redis result backend and places the deliverable contacts into batches. Workers take one task
at a time (``worker_prefetch_multiplier=1``) and acknowledge after the task
(``task_acks_late=True``), the usual settings for long tasks that must not be lost.

The work per contact is the services' own: :class:`~leadstream_filter.logic.FilterLogic`
(normalization, policy, suppressions, the contact claim in PostgreSQL),
:class:`~leadstream_verify.logic.VerifyLogic` (syntax, MX look-ups through the same cached
resolver and Redis cache, the verdict upsert in PostgreSQL) and
:class:`~leadstream_batch.handler.BatchHandler` (routing, caps, placement in PostgreSQL). What
differs is only how they are run: Celery messages and results in Redis instead of Kafka topics.

Configuration is the services' environment (``LEADSTREAM_DATABASE_URL``,
``LEADSTREAM_DNS_NAMESERVERS``, ``LEADSTREAM_REDIS_URL`` ...) plus ``BENCH_CELERY_BROKER``,
``BENCH_CELERY_QUEUE`` and ``BENCH_CELERY_KEY_PREFIX`` (every Redis key of a run starts with
it). Celery is not a dependency of the product: run it with
``uv run --frozen --with 'celery[redis]==5.7.0'`` (see ``bench/celery_baseline/run.py``).
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

from celery import Celery
from celery.signals import worker_process_shutdown

from leadstream.db import make_engine
from leadstream.db.batches import BatchStore
from leadstream.db.campaigns import CampaignStore
from leadstream.runtime import Record, RetryLater
from leadstream_batch.config import BatchSettings
from leadstream_batch.handler import BatchHandler
from leadstream_batch.placement import Policy
from leadstream_filter.app import build_stage
from leadstream_filter.config import FilterSettings
from leadstream_filter.ports import NewContact
from leadstream_verify.app import verify_stage
from leadstream_verify.config import VerifySettings

BROKER = os.environ.get("BENCH_CELERY_BROKER", "redis://127.0.0.1:6379/11")
QUEUE = os.environ.get("BENCH_CELERY_QUEUE", "leadstream-bench")
KEY_PREFIX = os.environ.get("BENCH_CELERY_KEY_PREFIX", "leadstream-bench:")
PLACE_CHUNK = 1000

app = Celery("leadstream_bench", broker=BROKER, backend=BROKER)
app.conf.update(
    task_default_queue=QUEUE,
    broker_transport_options={"global_keyprefix": KEY_PREFIX},
    result_backend_transport_options={"global_keyprefix": KEY_PREFIX},
    worker_prefetch_multiplier=1,
    task_acks_late=True,
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    result_expires=3600,
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
)


@dataclass
class Pipeline:
    """The stages' handlers in one worker process (built after the fork, once)."""

    filter: Any
    verify: Any
    batch: BatchHandler
    closing: ExitStack


_pipeline: Pipeline | None = None


class OrderedClaims:
    """The filter's contact registry, claiming in email order.

    The filter service never needs this: contacts.raw is keyed by email, so one email is only
    ever claimed by one instance. Celery tasks get arbitrary rows, and two tasks inserting the
    same emails in different orders deadlock in PostgreSQL; one lock order avoids that."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def claim(self, contacts: Sequence[NewContact]) -> Mapping[str, str]:
        return self.inner.claim(sorted(contacts, key=lambda c: c.email_normalized))  # type: ignore[no-any-return]


def pipeline() -> Pipeline:
    global _pipeline
    if _pipeline is None:
        closing = ExitStack()
        fs = FilterSettings()
        engine = make_engine(fs, pool_size=2)
        closing.callback(engine.dispose)
        vs = VerifySettings()
        verify = closing.enter_context(verify_stage(vs, engine))
        bs = BatchSettings()
        campaigns = CampaignStore(engine)
        policy = Policy(
            max_size=bs.batch_max_size,
            zone=bs.cap_zone,
            default_cap=bs.batch_daily_cap,
            caps=campaigns.daily_caps(),
        )
        rules = list(campaigns.rules(enabled_only=True))
        batch = BatchHandler(
            BatchStore(engine),
            verdicts=bs.allowed_verdicts,
            rules=lambda: rules,
            policy=lambda: policy,
        )
        filter_logic = build_stage(fs, engine).handler
        filter_logic.registry = OrderedClaims(filter_logic.registry)
        _pipeline = Pipeline(filter_logic, verify.handler, batch, closing)
    return _pipeline


@worker_process_shutdown.connect
def _close(**_: Any) -> None:
    if _pipeline is not None:
        _pipeline.closing.close()


def _records(topic: str, values: list[dict[str, Any]], base: int = 0) -> list[Record]:
    return [Record(topic, 0, base + i, None, v, {}, 0) for i, v in enumerate(values)]


@app.task(
    name="bench.filter_verify",
    autoretry_for=(RetryLater,),
    retry_backoff=0.5,
    retry_jitter=True,
    max_retries=5,
)
def filter_verify(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """One task batch of ContactSubmitted rows → rejection reasons, verdicts and the contacts
    the batch stage takes (ContactVerified values)."""
    t0 = time.perf_counter()
    p = pipeline()
    t1 = time.perf_counter()
    rejected: Counter[str] = Counter()
    passed: list[dict[str, Any]] = []
    for outs in p.filter(_records("contacts.raw", rows)):
        for out in outs:
            if out.topic == "contacts.filtered":
                passed.append(out.value)
            else:
                rejected[out.value["reason"]] += 1
    t2 = time.perf_counter()
    verdicts: Counter[str] = Counter()
    batchable: list[dict[str, Any]] = []
    if passed:
        for outs in p.verify(_records("contacts.filtered", passed)):
            for out in outs:
                verdicts[out.value["verdict"]] += 1
                if out.value["verdict"] in p.batch.verdicts:
                    batchable.append(out.value)
    return {
        "rows": len(rows),
        "rejected": dict(rejected),
        "verdicts": dict(verdicts),
        "batchable": batchable,
        "seconds": {"setup": t1 - t0, "filter": t2 - t1, "verify": time.perf_counter() - t2},
    }


@app.task(name="bench.place")
def place(results: list[dict[str, Any]]) -> dict[str, Any]:
    """The chord's callback: every task's result → the totals, and the batchable contacts
    placed into batches (in chunks, one database unit of work each)."""
    started = time.time()
    p = pipeline()
    rejected: Counter[str] = Counter()
    verdicts: Counter[str] = Counter()
    batchable: list[dict[str, Any]] = []
    rows = 0
    seconds: Counter[str] = Counter()
    for r in results:
        rows += r["rows"]
        seconds.update(r["seconds"])
        rejected.update(r["rejected"])
        verdicts.update(r["verdicts"])
        batchable.extend(r["batchable"])
    closed = 0
    for start in range(0, len(batchable), PLACE_CHUNK):
        chunk = batchable[start : start + PLACE_CHUNK]
        for outs in p.batch(_records("contacts.verified", chunk, start)):
            closed += len(outs)
    return {
        "rows": rows,
        "rejected": dict(rejected),
        "verdicts": dict(verdicts),
        "placed": len(batchable),
        "task_seconds": dict(seconds),
        "batches_closed": closed,
        "callback_started": started,
        "callback_ended": time.time(),
    }
