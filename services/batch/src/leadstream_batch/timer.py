"""The batch service's timer: what must happen even when no record arrives.

Every ``batch_tick_s``, in its own thread:

1. close open batches older than ``batch_max_age_s`` (reason ``age``);
2. place held contacts that are due: capped ones on their next day, and those an operator
   asked to re-route (``leadstream campaigns held reroute``);
3. emit every batch closed outside the handler (age, flush, releases) — the *outbox* — in one
   Kafka transaction, then mark them emitted.

The database rows are taken with ``SKIP LOCKED`` and stay locked until the emission is
marked, so two instances never emit the same batch. Kafka and PostgreSQL cannot commit
together, so before the Kafka transaction the timer notes (committed on its own connection)
where ``batches.ready`` ends. If it dies after the Kafka commit and before the mark, the next
tick finds the note, reads the committed records from there (waiting for open transactions to
be decided) and marks the batches it finds as emitted instead of emitting them again: each
batch is emitted once, and job state counts it once.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from leadstream.db.batches import BatchStore
from leadstream_batch import metrics
from leadstream_batch.candidate import Candidate
from leadstream_batch.closing import local_day
from leadstream_batch.emitter import Emitter
from leadstream_batch.placement import Policy, place
from leadstream_batch.ready import TOPIC, batch_ready_output
from leadstream_batch.routing import NoRoute, Route, RuleLike, route

log = logging.getLogger(__name__)
OUTBOX_CHUNK = 50


@dataclass(frozen=True, slots=True)
class TickReport:
    closed_by_age: int
    released: int
    emitted: int


class BatchTimer:
    def __init__(
        self,
        store: BatchStore,
        emitter: Emitter,
        *,
        max_age_s: float,
        rules: Callable[[], Sequence[RuleLike]],
        policy: Callable[[], Policy],
        clock: Callable[[], datetime],
    ) -> None:
        self.store = store
        self.emitter = emitter
        self.max_age = timedelta(seconds=max_age_s)
        self.rules = rules
        self.policy = policy
        self.clock = clock

    def tick(self) -> TickReport:
        now = self.clock()
        aged = self._close_aged(now)
        released = self._release(now)
        emitted = 0
        while True:
            n = self._emit_outbox()
            emitted += n
            if n < OUTBOX_CHUNK:
                break
        metrics.CLOSED_BY_AGE.inc(aged)
        metrics.RELEASED.inc(released)
        metrics.EMITTED.inc(emitted)
        if aged or released or emitted:
            log.info(
                "batch timer: %d closed by age, %d released, %d emitted", aged, released, emitted
            )
        return TickReport(aged, released, emitted)

    def _close_aged(self, now: datetime) -> int:
        with self.store.unit() as unit:
            batches = unit.aged_open_batches(now - self.max_age)
            for b in batches:
                unit.close_batch(b.batch_id, reason="age", closed_at=now, emit_via="outbox")
            return len(batches)

    def _release(self, now: datetime) -> int:
        policy = self.policy()
        with self.store.unit() as unit:
            due = unit.due_holds(local_day(now, policy.zone))
            if not due:
                return 0
            rules = self.rules()
            routed: list[tuple[Candidate, Route | NoRoute]] = []
            for h in due:
                cand = Candidate.from_hold(h.contact)
                decision: Route | NoRoute
                if h.reroute_campaign_id:
                    decision = Route(h.reroute_campaign_id, None)
                elif h.reason == "daily_cap" and h.reroute_requested_at is None and h.campaign_id:
                    decision = Route(h.campaign_id, h.rule_id)
                else:
                    decision = route(cand.routable, rules)
                routed.append((cand, decision))
            done = place(unit, routed, now=now, policy=policy, emit_via="outbox")
            released = 0
            for batch_id, contact_ids in done.batched.items():
                unit.release(contact_ids, batch_id)
                released += len(contact_ids)
            return released

    def _emit_outbox(self) -> int:
        with self.store.unit() as unit:
            batches = unit.outbox(OUTBOX_CHUNK)
            if not batches:
                return 0
            taken = len(batches)
            attempts = unit.emit_attempts([b.batch_id for b in batches])
            if attempts:
                since: dict[int, int] = {}
                for offsets in attempts.values():
                    for p, o in offsets.items():
                        since[p] = min(o, since.get(p, o))
                done = self.emitter.committed_keys(TOPIC, since, attempts.keys())
                if done:
                    log.info("batch timer: %d batches were emitted before a restart", len(done))
                    metrics.RECOVERED.inc(len(done))
                    unit.mark_emitted(sorted(done))
                batches = [b for b in batches if b.batch_id not in done]
            if batches:
                ids = [b.batch_id for b in batches]
                outputs = [batch_ready_output(b, unit.members(b.batch_id)) for b in batches]
                self.store.note_emit_attempt(ids, self.emitter.end_offsets(TOPIC))
                self.emitter.emit(outputs)
                unit.mark_emitted(ids)
            return taken  # emitted now or found emitted before


class TimerThread:
    """Runs :meth:`BatchTimer.tick` every ``interval_s`` until stopped; a failing tick is
    logged and retried on the next one (nothing is lost: the outbox is in PostgreSQL)."""

    def __init__(self, timer: BatchTimer, interval_s: float) -> None:
        self.timer = timer
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="batch-timer", daemon=True)
        self.failures = 0

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._thread.join(timeout)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            began = time.perf_counter()
            try:
                self.timer.tick()
            except Exception:
                self.failures += 1
                metrics.TICKS.labels("error").inc()
                log.exception("batch timer tick failed; retrying on the next tick")
            else:
                metrics.TICKS.labels("ok").inc()
                metrics.LAST_TICK.set(time.time())
            finally:
                metrics.TICK_SECONDS.observe(time.perf_counter() - began)
