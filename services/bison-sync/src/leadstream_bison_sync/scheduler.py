"""Scheduled work, run by one instance at a time under a Redis lock.

Every ``bison_scheduler_tick_s`` each instance asks for the lock (``SET NX PX``; the holder
renews it with a compare-and-expire script). The holder runs the jobs that are due — when a
job last started is kept in PostgreSQL (``bison_sync_runs``), so a new holder knows — and
renews the lock between pages of work; a holder that dies loses it after
``bison_lock_ttl_s``.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from redis import Redis

from leadstream.db.contact_events import SyncRunStore
from leadstream_bison_sync import metrics

log = logging.getLogger(__name__)

_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""

Heartbeat = Callable[[], bool]
"""Called by a job between pages: renews the lock; False means it was lost (stop)."""


class RedisLock:
    def __init__(self, redis: Redis, key: str, ttl_s: float) -> None:
        self.redis = redis
        self.key = key
        self.ttl_ms = int(ttl_s * 1000)
        self.token = uuid.uuid4().hex
        self._renew = redis.register_script(_RENEW)
        self._release = redis.register_script(_RELEASE)

    def hold(self) -> bool:
        """Keep the lock if this instance has it, else try to take it."""
        if self._renew(keys=[self.key], args=[self.token, self.ttl_ms]) == 1:
            return True
        return bool(self.redis.set(self.key, self.token, nx=True, px=self.ttl_ms))

    def release(self) -> None:
        self._release(keys=[self.key], args=[self.token])


@dataclass(frozen=True)
class Job:
    name: str
    interval_s: float
    run: Callable[[Heartbeat], str | None]  # returns a problem report, or None when all went well


class Scheduler:
    def __init__(
        self,
        lock: RedisLock,
        runs: SyncRunStore,
        jobs: list[Job],
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.lock = lock
        self.runs = runs
        self.jobs = jobs
        self.clock = clock

    def tick(self) -> list[str]:
        """Run the due jobs if this instance holds the lock; the names of those it ran."""
        held = self.lock.hold()
        metrics.LOCK_HELD.set(1 if held else 0)
        if not held:
            return []
        last = self.runs.last_started()
        ran: list[str] = []
        for job in self.jobs:
            at = last.get(job.name)
            if at is not None and (self.clock() - at).total_seconds() < job.interval_s:
                continue
            if not self.lock.hold():
                break
            self.runs.started(job.name)
            began = time.perf_counter()
            try:
                problem = job.run(self.lock.hold)
            except Exception as exc:
                log.exception("scheduled job %s failed", job.name)
                outcome = "error"
                self.runs.finished(job.name, outcome, f"{type(exc).__name__}: {exc}")
            else:
                outcome = "partial" if problem else "ok"
                self.runs.finished(job.name, outcome, problem)
                if problem:
                    log.warning("scheduled job %s: %s", job.name, problem)
            metrics.JOB_SECONDS.labels(job.name).observe(time.perf_counter() - began)
            metrics.JOB_RUNS.labels(job.name, outcome).inc()
            if outcome == "ok":
                metrics.JOB_LAST_SUCCESS.labels(job.name).set(time.time())
            ran.append(job.name)
        return ran


class SchedulerThread:
    def __init__(self, scheduler: Scheduler, interval_s: float) -> None:
        self.scheduler = scheduler
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="bison-scheduler", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        self._thread.join(timeout)
        try:
            self.scheduler.lock.release()
        except Exception:
            log.warning("could not release the scheduler lock", exc_info=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.scheduler.tick()
            except Exception:
                log.exception("scheduler tick failed")
            self._stop.wait(self.interval_s)
