"""Entrypoint of the jobs service: it only wires settings to the service's parts.

``leadstream-jobs`` runs the job-state tracker: the counter (stage runtime, in a thread) and
the faust table app with its web server (``/healthz``, ``/metrics``). SIGTERM/SIGINT stop it
gracefully (the counter commits its batch in hand, the app commits its transactions).
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from typing import NoReturn

import faust

from leadstream.events import Serde
from leadstream.runtime import RuntimeConfig, StageRunner
from leadstream.topics import TopicSettings
from leadstream_jobs.codec import JobStateCodec
from leadstream_jobs.config import JobsSettings
from leadstream_jobs.counter import EVENTS_TOPIC, CounterCodec, counter_stage
from leadstream_jobs.service import CounterService
from leadstream_jobs.table import build_app
from leadstream_jobs.topology import STATE_TOPIC, ensure_topics
from leadstream_jobs.watch import StallWatch

log = logging.getLogger("leadstream_jobs")
STALE_AFTER_S = 60.0
EXIT_GRACE_S = 10.0
RESTART_AFTER_S = 30.0
"""A crash later than this after start is restarted in place; an earlier one is a start-up
failure (restarted only while a crash's outage is within ``restart_patience_s``)."""
RESTART_DELAY_S = 2.0
RETRY_DELAY_S = 5.0
"""Pause before another start while the outage after a crash lasts."""
DOWN_SINCE_ENV = "LEADSTREAM_JOBS_DOWN_SINCE"
"""Set across a restart in place: when (epoch seconds) the crash that began it happened."""
_worker_began: list[float] = []
"""When the faust worker was started (monotonic): the steps before it are start-up."""


def main() -> None:
    """Run the jobs service until SIGTERM/SIGINT; exit with its status.

    A crash after the service was up (faust ends its worker on a fenced producer, which a
    broker restart that outlasts a transaction causes) starts the process again in place
    (same pid, same instance id, so the new counter fences the old one's transaction): the
    table app cannot be restarted inside one process, and nothing else may be there to
    restart it (``leadstream services`` does not supervise). A start that then fails (Kafka
    still down) is tried again every few seconds for ``restart_patience_s`` after the crash;
    a failure at the first start exits.
    """
    settings: JobsSettings | None = None
    try:
        settings = JobsSettings()
        run(settings)
        status = 0
    except SystemExit as exc:  # how faust's worker ends, normally or after a crash
        status = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except Exception:
        log.exception("leadstream-jobs failed")
        status = 1
    up_s = time.monotonic() - _worker_began[0] if _worker_began else 0.0
    patience_s = settings.restart_patience_s if settings is not None else 0.0
    down_since = restart_from(status, up_s, _down_since(), time.time(), patience_s)
    if down_since is not None:
        delay = RESTART_DELAY_S if up_s > RESTART_AFTER_S else RETRY_DELAY_S
        restart_in_place(f"exited with {status} after {up_s:.0f}s up", down_since, delay)
    _exit(status)


def restart_from(
    status: int, up_s: float, down_since: float | None, now: float, patience_s: float
) -> float | None:
    """Whether to start again in place after an exit, as the time the outage began (kept
    across the restarts it takes), or None to exit.

    ``up_s`` counts from the start of the worker (0 when start-up failed before it). A clean
    exit ends the process. A crash after ``RESTART_AFTER_S`` up begins an outage now.
    A quicker failure is a start-up failure: retried while the outage it belongs to is within
    ``patience_s``, else (or at the very first start) the process exits.
    """
    if status == 0:
        return None
    if up_s > RESTART_AFTER_S:
        return now
    if down_since is not None and now - down_since < patience_s:
        return down_since
    return None


def restart_in_place(reason: str, down_since: float, delay_s: float = RESTART_DELAY_S) -> NoReturn:
    """Start this program again in this process (same pid, same instance id): what is
    committed in Kafka is all the state there is, so nothing is lost or counted twice."""
    log.warning("leadstream-jobs %s; starting again in %gs", reason, delay_s)
    logging.shutdown()
    time.sleep(delay_s)
    os.environ[DOWN_SINCE_ENV] = repr(down_since)
    os.execv(sys.executable, [sys.executable, *sys.argv])  # noqa: S606 - this very program


def _down_since() -> float | None:
    try:
        return float(os.environ[DOWN_SINCE_ENV])
    except (KeyError, ValueError):
        return None


def run(settings: JobsSettings) -> None:
    """Wire the counter and the table app and run them (faust's worker exits by SystemExit)."""
    topics = TopicSettings.of(settings)
    partitions = ensure_topics(topics, timeout_s=settings.startup_timeout_s)
    serde = Serde(settings)
    try:
        serde.codec(EVENTS_TOPIC).prepare()  # fail fast when the schemas are not registered
        state_codec = serde.codec(STATE_TOPIC)
        state_codec.prepare()
        stall = StallWatch(settings.stall_limit_s)
        runner = StageRunner(
            counter_stage(settings, on_deltas=stall.counted),
            settings,
            CounterCodec(settings, serde),
            RuntimeConfig(),
        )

        def health() -> tuple[bool, dict[str, object]]:
            age = time.monotonic() - runner.last_loop
            return age < STALE_AFTER_S, {"counter_loop_age_s": round(age, 3)}

        app = build_app(
            settings,
            partitions=partitions,
            replication=topics.topic_replication_factor,
            codec=JobStateCodec(codec=state_codec),
            health=health,
            on_applied=stall.applied,
            on_positions=stall.positions,
        )
        stall.start(lambda reason: restart_in_place(reason, time.time()))
        worker = faust.Worker(
            app, CounterService(runner), loglevel=_level(settings.log_level), quiet=True
        )
        _worker_began.append(time.monotonic())
        worker.execute_from_commandline()
    finally:
        serde.close()


def _exit(status: int) -> NoReturn:
    """Exit, even if a client thread did not stop: everything that matters is committed."""
    deadline = time.monotonic() + EXIT_GRACE_S
    for thread in threading.enumerate():
        if thread is not threading.main_thread() and not thread.daemon:
            thread.join(max(0.0, deadline - time.monotonic()))
    stuck = [t.name for t in threading.enumerate() if t.is_alive() and not t.daemon]
    if len(stuck) > 1:  # the main thread is always alive
        log.warning("threads still running at exit: %s; exiting anyway", ", ".join(stuck))
        logging.shutdown()
        os._exit(status)
    sys.exit(status)


def _level(name: str) -> int:
    level = logging.getLevelName(name.upper())
    return level if isinstance(level, int) else logging.INFO


if __name__ == "__main__":
    main()
