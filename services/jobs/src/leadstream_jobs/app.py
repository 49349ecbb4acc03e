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
"""A crash later than this after start is restarted in place; an earlier one exits."""
RESTART_DELAY_S = 2.0


def main() -> None:
    """Run the jobs service until SIGTERM/SIGINT; exit with its status.

    A crash after the service was up (faust ends its worker on a fenced producer, which a
    broker restart that outlasts a transaction causes) starts the process again in place
    (same pid, same instance id, so the new counter fences the old one's transaction): the
    table app cannot be restarted inside one process, and nothing else may be there to
    restart it (``leadstream services`` does not supervise). A failure at start-up exits.
    """
    began = time.monotonic()
    try:
        run(JobsSettings())
        status = 0
    except SystemExit as exc:  # how faust's worker ends, normally or after a crash
        status = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except Exception:
        log.exception("leadstream-jobs failed")
        status = 1
    up_s = time.monotonic() - began
    if status != 0 and up_s > RESTART_AFTER_S:
        restart_in_place(f"crashed after {up_s:.0f}s up")
    _exit(status)


def restart_in_place(reason: str) -> NoReturn:
    """Start this program again in this process (same pid, same instance id): what is
    committed in Kafka is all the state there is, so nothing is lost or counted twice."""
    log.warning("leadstream-jobs %s; starting again", reason)
    logging.shutdown()
    time.sleep(RESTART_DELAY_S)
    os.execv(sys.executable, [sys.executable, *sys.argv])  # noqa: S606 - this very program


def run(settings: JobsSettings) -> None:
    """Wire the counter and the table app and run them (faust's worker exits by SystemExit)."""
    topics = TopicSettings.of(settings)
    partitions = ensure_topics(topics)
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
        )
        stall.start(restart_in_place)
        worker = faust.Worker(
            app, CounterService(runner), loglevel=_level(settings.log_level), quiet=True
        )
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
