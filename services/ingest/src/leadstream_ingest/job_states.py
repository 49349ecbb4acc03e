"""The job-state port: what the job endpoints need from the job tracker's ``jobs.state``.

The adapter is ``leadstream.jobs.JobStateView`` (tails the compacted topic), wrapped by
:class:`TrackedJobStates`. The port is kept this small so a process without the tracker can
hand in something else (:class:`NoJobStates`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from typing import Protocol

from leadstream.events import Serde
from leadstream.jobs import JobStateView
from leadstream.settings import Settings

log = logging.getLogger(__name__)


class JobStateLike(Protocol):
    """The fields of a job's state the API shows."""

    @property
    def status(self) -> str: ...
    @property
    def expected_total(self) -> int | None: ...
    @property
    def counts(self) -> Mapping[str, int]: ...
    @property
    def rejected_by_reason(self) -> Mapping[str, int]: ...
    @property
    def verdicts(self) -> Mapping[str, int]: ...
    @property
    def batched(self) -> int: ...
    @property
    def synced(self) -> int: ...
    @property
    def started_at(self) -> int: ...
    @property
    def updated_at(self) -> int: ...
    @property
    def completed_at(self) -> int | None: ...
    @property
    def rate_per_s(self) -> float: ...
    @property
    def eta_s(self) -> float | None: ...
    @property
    def error(self) -> str | None: ...


class JobStates(Protocol):
    def get(self, job_id: str) -> JobStateLike | None: ...

    def running(self, limit: int) -> list[str]:
        """Ids of jobs neither completed nor failed, most recently updated first."""
        ...

    def close(self) -> None: ...


class NoJobStates:
    """No tracker view (e.g. the view is disabled): the API answers from Postgres alone."""

    def get(self, job_id: str) -> JobStateLike | None:
        return None

    def running(self, limit: int) -> list[str]:
        return []

    def close(self) -> None:
        return None


class TrackedJobStates:
    """The tracker's ``jobs.state`` through :class:`leadstream.jobs.JobStateView`, opened in
    the background (retried every ``retry_s`` until the topic answers), so an API started
    while Kafka is away still serves, from PostgreSQL alone, until the view is up."""

    def __init__(self, settings: Settings, serde: Serde, *, retry_s: float = 5.0) -> None:
        self._settings = settings
        self._serde = serde
        self._retry_s = retry_s
        self._view: JobStateView | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._open, name="job-states-open", daemon=True)
        self._thread.start()

    def _open(self) -> None:
        while not self._stop.is_set():
            try:
                view = JobStateView(self._settings, serde=self._serde)
            except Exception as exc:  # the topic or the broker is not there yet
                log.warning("job states not available yet (retrying): %s", exc)
                self._stop.wait(self._retry_s)
                continue
            if self._stop.is_set():
                view.close()
            else:
                self._view = view
            return

    @property
    def ready(self) -> bool:
        view = self._view
        return view is not None and view.ready

    def wait_ready(self, timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        while self._view is None:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)
        return self._view.wait_ready(max(0.0, deadline - time.monotonic()))

    def get(self, job_id: str) -> JobStateLike | None:
        view = self._view
        return None if view is None else view.get(job_id)

    def running(self, limit: int) -> list[str]:
        view = self._view
        if view is None:
            return []
        states = [s for s in view.all().values() if not s.done]
        states.sort(key=lambda s: s.updated_at, reverse=True)
        return [s.job_id for s in states[:limit]]

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=15)
        if self._view is not None:
            self._view.close()
            self._view = None
